"""CloudTrail ingestion with real processes and servers: a hostile file parsed in a pool of processes;
secrets in records never reach the store, alerts or the notifications an HTTP receiver gets; PostgreSQL
keeps hostile records as gaps and long principals and criteria within their columns (the rest is tested
in-process in tests/unit/test_cloudtrail.py)."""
import datetime as dt
import sys
import types

from auditbook.demo import trail as trailgen
from auditbook.monitor import alerts
from auditbook.monitor.watch import cycle
from auditbook.store.db import open_engine
from tests.cloudtrail_files import (
    ACCOUNT,
    PARAMETER,
    PASSWORD,
    REGION,
    firing_alerts,
    gzipped,
    hostile_records,
    log_key,
    read_a_hostile_file_between_two_good_ones,
    root_call,
    secret_records,
    stored_matches,
)


def test_a_bad_record_is_a_gap_and_the_rest_is_read_when_files_are_parsed_in_processes(trail):
    read_a_hostile_file_between_two_good_ones(trail, parse_workers=1)


def test_files_are_parsed_in_processes_whatever_the_parents_main_module_is(trail, tmp_path, monkeypatch):
    """Under Streamlit (or its AppTest) __main__ is a page, whose `import ui` fails in a spawned child:
    the pool breaks (BrokenProcessPool) instead of parsing. tests/integration/test_packet.py holds the
    same rule for the packet's workers."""
    script = tmp_path / "control_room.py"
    script.write_text("import ui_module_that_only_the_parent_can_import\n")
    page = types.ModuleType("__main__")
    page.__file__, page.__spec__ = str(script), None
    monkeypatch.setitem(sys.modules, "__main__", page)
    at = trail["start"]
    trail["s3"].put_object(Bucket="org-trail", Key=log_key(at, "a"), Body=gzipped([root_call(at)]))
    result = cycle(trail["engine"], lambda b: trail["s3"], ["org-trail"], parse_workers=1).ingest["org-trail"]
    assert (result.files, result.gaps) == (1, [])


def test_secrets_in_cloudtrail_records_never_reach_the_store_alerts_or_notifications(trail, httpserver, monkeypatch):
    from auditbook.collect.evidence import REDACTED, canonical, digest
    from auditbook.monitor.notify import Channel
    monkeypatch.setenv("PD_KEY", "k")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    httpserver.expect_request("/pd", method="POST").respond_with_json({"status": "success"}, status=202)
    at = trail["start"]
    trail["s3"].put_object(Bucket="org-trail", Key=log_key(at, "s"), Body=gzipped(secret_records(at)))
    channels = [Channel(name="soc", kind="slack", url=httpserver.url_for("/hook")),
                Channel(name="pd", kind="pagerduty", url=httpserver.url_for("/pd"), routing_key_env="PD_KEY")]
    result = cycle(trail["engine"], lambda b: trail["s3"], ["org-trail"], channels=channels)
    assert result.ingest["org-trail"].matches == 2 and result.notifications["sent"] == 2
    stored = stored_matches(trail["engine"])
    assert [m.record["requestParameters"].get("password") or m.record["requestParameters"].get("value")
            for m in stored] == [REDACTED, REDACTED]
    assert all(m.record_sha256 == digest(canonical(m.record)) for m in stored)  # the hash of what was stored
    assert stored[1].record["requestParameters"]["name"] == "/prod/db"  # only the secret goes
    from typer.testing import CliRunner

    from auditbook.cli.main import registered_app

    app = registered_app()
    r = CliRunner().invoke(app, ["alerts", "--format", "json", "--db", str(trail["engine"].url)])
    assert r.exit_code == 0 and "CreateLoginProfile" in r.output and REDACTED in r.output
    sent = " ".join(req.get_data(as_text=True) for req, _ in httpserver.log)
    trail["engine"].dispose()
    stored_bytes = b"".join(p.read_bytes() for p in trail["tmp"].glob("s.db*"))
    assert b"PutParameter" in stored_bytes  # the records are in these bytes ...
    for secret in (PASSWORD, PARAMETER):  # ... and the secrets are not
        assert secret.encode() not in stored_bytes and secret not in r.output and secret not in sent


def test_hostile_records_and_a_long_principal_on_postgres(postgres, aws):
    """PostgreSQL enforces what SQLite does not (column lengths, no NUL in text): a hostile file must
    still be gaps and data there, and a 600-character principal an alert."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="org-trail")
    engine = open_engine(postgres.database())
    at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=1)
    records, expect = hostile_records(at)
    long_user = "/".join(["p" * 60] * 10) + "/intruder"  # an IAM path may be 512 characters, a name 64
    denied = [trailgen.record(at + dt.timedelta(seconds=i), ACCOUNT, REGION, "s3.amazonaws.com", "GetObject",
                              user=long_user, error="AccessDenied") for i in range(6)]
    nul = {**root_call(at), "userAgent": "agent\x00with a NUL", "eventID": "e" * 100}
    s3.put_object(Bucket="org-trail", Key=log_key(at, "b"), Body=gzipped(records + denied + [nul]))
    result = cycle(engine, lambda b: s3, ["org-trail"]).ingest["org-trail"]
    assert result.files == 1 and sorted(g.index for g in result.gaps) == sorted(expect)
    firing = firing_alerts(engine)
    principal = firing["UnauthorizedDataAccess"]["labels"]["principal"]
    assert principal.endswith("/intruder") and len(principal) > 600
    assert len(firing["UnauthorizedDataAccess"]["dedup_key"]) <= 600
    assert firing["RootAccountUsage"]["count"] == 2


def test_a_long_soc2_control_of_a_check_regression_is_stored_on_postgres(postgres):
    from sqlalchemy.orm import Session

    from auditbook.monitor.alerts import REGRESSED, fire, fit_controls
    engine = open_engine(postgres.database())
    controls, note = fit_controls([f"CC{n}.{m}" for n in range(1, 10) for m in range(1, 3)])
    with Session(engine) as s, s.begin():
        fire(s, rule=REGRESSED, labels={"check": "c"}, severity="high", soc2_control=controls,
             summary="regressed" + note, at=dt.datetime.now(dt.timezone.utc))
    stored = alerts.list_alerts(engine)[0]
    assert stored["soc2_control"] == controls and "CC9.2" in stored["summary"]
