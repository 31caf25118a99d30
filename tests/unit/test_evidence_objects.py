"""Evidence on S3 with Object Lock (issue 16 §3, docs/evidence-store.md), under in-process moto, which
enforces WORM on COMPLIANCE-locked versions: the bucket is checked before anything is written, objects
are content-addressed and locked, the store keeps only where they are, readers read the recorded
version and check its SHA-256, and verify-store reports overwrites, deletes and changed bytes."""
import datetime as dt
import hashlib
import json
import zlib

import pytest
from botocore.exceptions import ClientError

from auditbook.errors import UserError
from auditbook.store import evidence, manual_evidence
from auditbook.store.db import open_engine
from auditbook.store.evidence_objects import (
    EvidenceObjectError,
    open_bucket,
    parse_retention,
    parse_url,
    read_object,
)
from auditbook.store.evidence_worm import (
    check_object,
    move_store_to_bucket,
    verify_store,
)
from auditbook.store.runs import save_run
from auditbook.store.session import reading, writing
from tests.conftest import collect_current, run_main

LOCKED = "evidence-locked"


@pytest.fixture
def s3(aws):
    client = aws.client("s3")
    client.create_bucket(Bucket=LOCKED, ObjectLockEnabledForBucket=True)
    return client


def _content(text: str) -> tuple[str, bytes]:
    data = text.encode()
    return hashlib.sha256(data).hexdigest(), data


def _key(url: str) -> str:
    return url.split("/", 3)[3]


@pytest.mark.parametrize("url", ["", "http://bucket/p", "s3://", "s3://UPPER/p", "s3://ab/p", "s3://a..b/p",
                                 "s3://192.168.1.1/p", "s3://bucket/../p", "s3://bucket/a//b", "s3://bucket/a/./b",
                                 "s3://bucket/a\nb", "s3://bucket/" + "x/" * 300, "s3://-bucket/p", "s3://xn--b/p",
                                 None, 42])
def test_a_hostile_url_is_one_line_naming_the_option(url):
    with pytest.raises(UserError) as caught:
        parse_url(url)
    message = str(caught.value)
    assert message.startswith("--evidence: ") and "\n" not in message
    assert repr(url)[:40] in message


def test_a_url_gives_its_bucket_and_prefix():
    assert parse_url("s3://audit-evidence/soc2/prod/") == ("audit-evidence", "soc2/prod")
    assert parse_url("s3://audit.evidence") == ("audit.evidence", "")


@pytest.mark.parametrize("text, days", [("7y", 2557), ("2557", 2557), ("30d", 30), (" 1Y ", 366), ("100y", 36525)])
def test_retention_in_days_or_years(text, days):
    if days > 36500:
        with pytest.raises(UserError, match="not between 1 and 36500"):
            parse_retention(text)
    else:
        assert parse_retention(text) == days


@pytest.mark.parametrize("text", ["0", "-1", "7 years", "1e3", "", "36501d"])
def test_a_bad_retention_is_refused(text):
    with pytest.raises(UserError, match="^--evidence-retention: "):
        parse_retention(text)


def test_a_bucket_without_object_lock_is_refused_and_nothing_is_written(aws, tmp_path, capsys, monkeypatch):
    plain = aws.client("s3")
    plain.create_bucket(Bucket="no-lock")
    with pytest.raises(UserError, match="does not have Object Lock enabled"):
        open_bucket("s3://no-lock/p", client=plain)
    doc = tmp_path / "charter.txt"
    doc.write_text("board charter v3")
    db = f"sqlite:///{tmp_path}/s.db"
    code, out, err = run_main(capsys, monkeypatch, "evidence", "add", "CC1.2", str(doc), "--item", "Board charter",
                              "--owner", "chair", "--effective-date", "2026-06-01", "--db", db,
                              "--evidence", "s3://no-lock/p")
    assert code == 2 and "Object Lock" in err and len(err.strip().splitlines()) == 1, err
    assert "Contents" not in plain.list_objects_v2(Bucket="no-lock")
    with reading(open_engine(db)) as session:
        assert manual_evidence.records(session) == []


def test_content_is_stored_once_locked_in_compliance_mode(s3):
    bucket = open_bucket(f"s3://{LOCKED}/audit", retention_days=30, client=s3)
    sha, data = _content('{"a":1}')
    first = bucket.put_content(sha, data)
    again = bucket.put_content(sha, data)
    assert _key(first.url) == f"audit/sha256/{sha[:2]}/{sha}" and again.version == first.version
    versions = s3.list_object_versions(Bucket=LOCKED, Prefix=_key(first.url))["Versions"]
    assert len(versions) == 1  # not uploaded again
    head = s3.head_object(Bucket=LOCKED, Key=_key(first.url), VersionId=first.version)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert abs(head["ObjectLockRetainUntilDate"] - (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30))) \
        < dt.timedelta(minutes=1)
    with pytest.raises(EvidenceObjectError, match="do not have that SHA-256"):
        bucket.put_content(sha, b"other bytes")


def test_a_shorter_retention_is_extended_when_the_content_is_stored_again(s3):
    sha, data = _content("kept longer")
    short = open_bucket(f"s3://{LOCKED}/a", retention_days=1, client=s3).put_content(sha, data)
    longer = open_bucket(f"s3://{LOCKED}/a", retention_days=10, client=s3).put_content(sha, data)
    assert longer.version == short.version and longer.retain_until - short.retain_until >= dt.timedelta(days=9)
    head = s3.head_object(Bucket=LOCKED, Key=_key(short.url), VersionId=short.version)
    assert head["ObjectLockRetainUntilDate"] >= longer.retain_until


def _saved_run(engine, bucket):
    from auditbook.plugins import resource_types
    collection, findings = collect_current(types=[resource_types()["aws.s3.bucket"]])
    now = dt.datetime.now(dt.timezone.utc)
    with writing(engine) as session:
        save_run(session, catalog_sha256="c" * 64, tool_version="t", parameters={}, identities=[],
                 collection=collection, findings=findings, started_at=now, finished_at=now, evidence_bucket=bucket)
    return collection


def test_a_run_keeps_its_evidence_in_the_bucket_and_reads_it_back(s3, tmp_path):
    s3.create_bucket(Bucket="scanned")
    engine = open_engine(f"sqlite:///{tmp_path}/s.db")
    collection = _saved_run(engine, open_bucket(f"s3://{LOCKED}/ev", client=s3))
    wanted = {sha: zlib.decompress(body) for sha, body in collection.evidence.items()}
    assert wanted
    with reading(engine) as session:
        refs = list(evidence.object_refs(session))
        assert {r[0] for r in refs} == set(wanted)
        assert dict(evidence.raw_bodies(session, wanted)) == wanted
        sha = next(iter(wanted))
        assert evidence.body(session, sha) == json.loads(wanted[sha])
    assert all(found.ok for found in verify_store(engine))


def test_an_upload_failure_aborts_the_run_and_writes_nothing(s3, tmp_path):
    s3.create_bucket(Bucket="scanned")
    s3.create_bucket(Bucket="gone-lock", ObjectLockEnabledForBucket=True)
    bucket = open_bucket("s3://gone-lock/ev", client=s3)
    s3.delete_bucket(Bucket="gone-lock")  # the bucket vanishes between the check and the upload
    engine = open_engine(f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(EvidenceObjectError, match=r"^evidence object s3://gone-lock/ev/sha256/.*cannot store it: NoSuchBucket"):
        _saved_run(engine, bucket)
    with reading(engine) as session:
        assert list(evidence.raw_bodies(session, [])) == [] and not list(evidence.object_refs(session))
    from auditbook.history.findings import run_table
    assert run_table(engine) == []


def _stored_response(s3, tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path}/s.db")
    s3.create_bucket(Bucket="scanned")
    collection = _saved_run(engine, open_bucket(f"s3://{LOCKED}/ev", client=s3))
    sha = sorted(collection.evidence)[0]
    with reading(engine) as session:
        ref = next(r for r in evidence.object_refs(session) if r[0] == sha)
    return engine, sha, ref[1], ref[2], zlib.decompress(collection.evidence[sha])


def test_an_overwrite_is_a_new_version_that_readers_ignore_and_verify_reports(s3, tmp_path):
    engine, sha, url, version, body = _stored_response(s3, tmp_path)
    forged = s3.put_object(Bucket=LOCKED, Key=_key(url), Body=b'{"forged":true}')["VersionId"]
    assert read_object(sha, url, version) == body
    with reading(engine) as session:
        assert dict(evidence.raw_bodies(session, [sha]))[sha] == body
    (report,) = [c for c in verify_store(engine) if c.sha256 == sha]
    assert not report.ok and any(forged in p and "overwrite" in p for p in report.problems)


def test_deleting_a_locked_version_is_refused_and_a_delete_marker_is_reported(s3, tmp_path):
    engine, sha, url, version, body = _stored_response(s3, tmp_path)
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=LOCKED, Key=_key(url), VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    marker = s3.delete_object(Bucket=LOCKED, Key=_key(url))["VersionId"]  # no version: a delete marker
    assert read_object(sha, url, version) == body
    (report,) = [c for c in verify_store(engine) if c.sha256 == sha]
    assert report.problems == (next(p for p in report.problems if marker in p and "delete marker" in p),)


def _moto_key(url, version):
    from moto.s3.models import s3_backends
    bucket_name, key = url[len("s3://"):].split("/", 1)
    bucket = s3_backends["123456789012"]["aws"].buckets[bucket_name]
    return next(k for k in bucket.keys.getlist(key) if k.version_id == version)


def test_changed_bytes_are_an_error_naming_the_object_and_a_hash_mismatch(s3, tmp_path):
    engine, sha, url, version, body = _stored_response(s3, tmp_path)
    _moto_key(url, version).value = body.replace(b"}", b',"x":1}', 1)  # the stored bytes change under the lock
    with pytest.raises(EvidenceObjectError, match=f"evidence object '{url}' version '{version}': its bytes do not "
                                                  f"match their SHA-256 {sha}: the object was changed"):
        with reading(engine) as session:
            evidence.body(session, sha)
    with pytest.raises(EvidenceObjectError, match="the object was changed"):
        with reading(engine) as session:
            dict(evidence.raw_bodies(session, [sha]))
    (report,) = [c for c in verify_store(engine) if c.sha256 == sha]
    assert any(p.startswith("hash mismatch") for p in report.problems)


def test_a_governance_downgrade_then_bypass_delete_is_reported(s3, tmp_path):
    """moto (unlike S3) lets COMPLIANCE be changed to GOVERNANCE; the version can then be deleted with
    the bypass header: readers name the missing version, verify-store reports it."""
    engine, sha, url, version, body = _stored_response(s3, tmp_path)
    far = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3000)
    s3.put_object_retention(Bucket=LOCKED, Key=_key(url), VersionId=version,
                            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": far})
    (downgraded,) = [c for c in verify_store(engine) if c.sha256 == sha]
    assert "retention mode GOVERNANCE, not COMPLIANCE" in downgraded.problems
    s3.delete_object(Bucket=LOCKED, Key=_key(url), VersionId=version, BypassGovernanceRetention=True)
    with pytest.raises(EvidenceObjectError, match=f"{version}.*cannot read it"):
        read_object(sha, url, version)
    (gone,) = [c for c in verify_store(engine) if c.sha256 == sha]
    assert any(p.startswith("not readable at its version") for p in gone.problems)


def test_documents_in_the_bucket_through_the_cli(s3, tmp_path, capsys, monkeypatch):
    doc = tmp_path / "charter.txt"
    doc.write_text("board charter v3")
    db = f"sqlite:///{tmp_path}/s.db"
    code, out, err = run_main(capsys, monkeypatch, "evidence", "add", "CC1.2", str(doc), "--item", "Board charter",
                              "--owner", "chair", "--effective-date", "2026-06-01", "--db", db,
                              "--evidence", f"s3://{LOCKED}/docs", "--evidence-retention", "30d")
    assert code == 0, err
    sha = hashlib.sha256(b"board charter v3").hexdigest()
    assert f"s3://{LOCKED}/docs/sha256/{sha[:2]}/{sha}" in out
    engine = open_engine(db)
    with reading(engine) as session:
        assert manual_evidence.document(session, sha) == b"board charter v3"
        (ref,) = manual_evidence.object_refs(session)
        assert manual_evidence.held_documents(session) == []
    code, out, err = run_main(capsys, monkeypatch, "evidence", "verify-store", "--db", db)
    assert code == 0 and "1 objects checked, 0 with problems" in out and "ok document" in out, err
    s3.put_object(Bucket=LOCKED, Key=_key(ref[1]), Body=b"replaced\n\x1b[31m")
    code, out, err = run_main(capsys, monkeypatch, "evidence", "verify-store", "--db", db)
    assert code == 1 and "1 with problems" in out and err.startswith("PROBLEM document") and "\x1b" not in err


def test_an_existing_store_moves_to_the_bucket_and_reads_the_same(s3, tmp_path, capsys, monkeypatch):
    engine = open_engine(f"sqlite:///{tmp_path}/s.db")
    s3.create_bucket(Bucket="scanned")
    collection = _saved_run(engine, None)
    wanted = {sha: zlib.decompress(body) for sha, body in collection.evidence.items()}
    code, out, err = run_main(capsys, monkeypatch, "evidence", "move-to-bucket", "--db", f"sqlite:///{tmp_path}/s.db",
                              "--evidence", f"s3://{LOCKED}/moved")
    assert code == 0 and f"{len(wanted)} API responses, 0 documents" in out, err
    with reading(engine) as session:
        assert dict(evidence.raw_bodies(session, wanted)) == wanted
        assert len(list(evidence.object_refs(session))) == len(wanted)
    assert move_store_to_bucket(engine, open_bucket(f"s3://{LOCKED}/moved", client=s3)) == (0, 0)


def test_changed_bytes_with_a_matching_checksum_still_fail_the_sha256_check(s3, tmp_path):
    """Bytes and the checksum stored with them both replaced (botocore's check then passes): the
    reader's own SHA-256 check names the object."""
    import base64
    engine, sha, url, version, body = _stored_response(s3, tmp_path)
    other = body.replace(b"}", b',"x":1}', 1)
    key = _moto_key(url, version)
    key.value, key.checksum_value = other, base64.b64encode(hashlib.sha256(other).digest()).decode()
    with pytest.raises(EvidenceObjectError, match=f"its SHA-256 is {hashlib.sha256(other).hexdigest()}, not {sha}"):
        read_object(sha, url, version)
    (report,) = [c for c in verify_store(engine) if c.sha256 == sha]
    assert f"hash mismatch: its SHA-256 is {hashlib.sha256(other).hexdigest()}, not {sha}" in report.problems


# -- the attack pass (issue 16): a store row pointing somewhere else --------------------------------------------

def test_a_row_pointing_away_from_the_content_address_is_refused_and_reported(s3):
    sha, data = _content('{"attack": 1}')
    bucket = open_bucket(f"s3://{LOCKED}/p", 1, client=s3)
    bucket.put_content(sha, data)
    s3.create_bucket(Bucket="attacker-b")
    s3.put_bucket_versioning(Bucket="attacker-b", VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket="attacker-b", Key="anything", Body=data)["VersionId"]
    with pytest.raises(EvidenceObjectError, match="not at the content address"):
        read_object(sha, "s3://attacker-b/anything", version)
    found = check_object("evidence", (sha, "s3://attacker-b/anything", version, None))
    assert any(p.startswith("not at the content address") for p in found.problems)


def test_a_locked_copy_in_another_bucket_with_no_recorded_retention_is_reported(s3):
    sha, data = _content('{"attack": 2}')
    expected = open_bucket(f"s3://{LOCKED}/p", 1, client=s3)
    expected.put_content(sha, data)
    s3.create_bucket(Bucket="attacker-c", ObjectLockEnabledForBucket=True)
    key = f"x/sha256/{sha[:2]}/{sha}"
    version = s3.put_object(Bucket="attacker-c", Key=key, Body=data, ObjectLockMode="COMPLIANCE",
                            ObjectLockRetainUntilDate=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1),
                            ChecksumAlgorithm="SHA256")["VersionId"]
    ref = (sha, f"s3://attacker-c/{key}", version, None)
    assert "the store records no retention for it" in check_object("evidence", ref).problems
    assert f"not in the evidence bucket s3://{LOCKED}/p" in check_object("evidence", ref, expected).problems
