"""`auditbook scan --rate-limits FILE` and `--evidence s3://…` end to end in-process (moto): the run
records which (account, region, service) AWS throttled and says so; a bad rate-limits file or a bucket
without Object Lock is one line, exit 2, and no store is created; evidence kept in a locked bucket is
read back through the store and verifies."""
import json

from tests.conftest import run_main
from tests.unit.test_faults import ThrottleOnSend


class ThrottleFirst(ThrottleOnSend):
    """ThrottlingException for the first `times` requests of one JSON operation, then moto answers."""

    def __init__(self, target, times):
        super().__init__(target)
        self.times = times

    def __call__(self, request=None, **kwargs):
        if self.calls >= self.times:
            return None
        return super().__call__(request=request, **kwargs)


def _latest_parameters(db):
    from auditbook.store import runs
    from auditbook.store.db import open_engine
    from auditbook.store.session import reading
    with reading(open_engine(db, create=False)) as session:
        return runs.latest(session).parameters


def test_the_run_records_the_keys_aws_throttled_and_the_scan_says_so(aws, inject, capsys, monkeypatch, tmp_path):
    aws.client("kms").create_key()
    account = aws.client("sts").get_caller_identity()["Account"]
    limits = tmp_path / "limits.yaml"
    limits.write_text("throttle_attempts: 5\n")
    fault = ThrottleFirst("TrentService.ListKeys", times=2)
    inject(fault)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    code, out, err = run_main(capsys, monkeypatch, "scan", "--regions", "us-east-1", "--db", db,
                              "--rate-limits", str(limits))
    assert code == 0, err
    assert fault.calls == 2
    assert "AWS throttled 2 request(s) on 1 account/region/service key(s)" in err
    throttled = _latest_parameters(db)["throttled"]
    assert list(throttled) == [f"{account}/us-east-1/kms"]
    assert throttled[f"{account}/us-east-1/kms"]["throttled"] == 2
    assert "evidence gap" not in err  # retried, not a gap


def test_a_bad_rate_limits_file_is_one_line_and_no_store(aws, capsys, monkeypatch, tmp_path):
    limits = tmp_path / "limits.yaml"
    limits.write_text("max_rate: -3\n")
    store = tmp_path / "store.db"
    code, out, err = run_main(capsys, monkeypatch, "scan", "--db", f"sqlite:///{store}", "--rate-limits", str(limits))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "limits.yaml" in err and "max_rate" in err and "-3" in err
    assert not store.exists()


def test_a_bucket_without_object_lock_is_refused_before_anything_is_read(aws, capsys, monkeypatch, tmp_path):
    aws.client("s3").create_bucket(Bucket="plain-evidence")
    store = tmp_path / "store.db"
    code, out, err = run_main(capsys, monkeypatch, "scan", "--db", f"sqlite:///{store}",
                              "--evidence", "s3://plain-evidence/audit")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "plain-evidence" in err and "Object Lock" in err
    assert not store.exists()


def test_a_scan_keeps_its_evidence_in_the_locked_bucket_and_reads_it_back(aws, capsys, monkeypatch, tmp_path):
    from auditbook.history.findings import evidence_body
    from auditbook.store.db import open_engine
    from auditbook.store.evidence import object_refs
    from auditbook.store.session import reading
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="locked-evidence", ObjectLockEnabledForBucket=True)
    s3.create_bucket(Bucket="some-data")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    code, out, err = run_main(capsys, monkeypatch, "scan", "--regions", "us-east-1", "--db", db,
                              "--evidence", "s3://locked-evidence/audit", "--evidence-retention", "30")
    assert code == 0, err
    engine = open_engine(db, create=False)
    with reading(engine) as session:
        refs = list(object_refs(session))
    assert refs, "no evidence went to the bucket"
    first = refs[0]
    sha = first[0]
    body = evidence_body(engine, sha)
    assert body is not None and json.dumps(body)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="locked-evidence", Prefix="audit/")["Contents"]]
    assert any(sha in key for key in keys)
    head = s3.head_object(Bucket="locked-evidence", Key=next(k for k in keys if sha in k))
    assert head["ObjectLockMode"] == "COMPLIANCE"
    code, out, err = run_main(capsys, monkeypatch, "evidence", "verify-store", "--db", db, "--problems-only")
    assert code == 0, out + err


def test_the_summary_is_made_from_the_catalog_the_scan_read_once(aws, capsys, monkeypatch, tmp_path):
    """The posture printed is the catalog the run was evaluated with: the file is read once (a catalog
    edited or removed while the scan runs changes nothing the scan says)."""
    from auditbook.catalog import model
    source = tmp_path / "controls.yaml"
    for sibling in model.DEFAULT_PATH.parent.glob("company-*.yaml"):  # the files controls.yaml names
        (tmp_path / sibling.name).write_bytes(sibling.read_bytes())
    source.write_bytes(model.DEFAULT_PATH.read_bytes())
    reads = []
    real_load = model.load_catalog

    def load_then_remove(path=None, *args, **kwargs):
        reads.append(path)
        catalog = real_load(path, *args, **kwargs)
        source.unlink(missing_ok=True)  # gone before the summary is printed
        return catalog
    monkeypatch.setattr("auditbook.scan.load_catalog", load_then_remove)
    monkeypatch.setattr(model, "load_catalog", load_then_remove)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    code, out, err = run_main(capsys, monkeypatch, "scan", "--regions", "us-east-1", "--db", db,
                              "--catalog", str(source))
    assert code == 0, err
    assert reads == [source] and "criteria" in out.lower() and not source.exists()
