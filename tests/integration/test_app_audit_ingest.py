"""Application audit events read from CloudWatch Logs under in-process moto (and botocore's Stubber
where a page must fail): checkpointed reads that never lose or double-count an event, hostile events
as gaps, a failed read as a coverage gap, the app_events alerts, the CC6.3 / CC8.1 populations."""
import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber

from auditbook.demo.estate_applogs import LOG_GROUP, audit_group, simulated_events
from auditbook.history.app_events import app_completeness, list_events
from auditbook.history.period import Period
from auditbook.monitor.alerts import list_alerts
from auditbook.monitor.app_audit import ingest, ingest_source, source_key
from auditbook.monitor.app_audit_config import AppAuditConfig
from auditbook.monitor.cloudtrail import evidence_records
from auditbook.monitor.rules import load_rules
from auditbook.store import app_audit as stored
from auditbook.store.db import open_engine
from auditbook.store.session import reading

ACCOUNT = "123456789012"

def app_population(engine, period, criterion=None, now=None):  # noqa: ARG001 (population() reads to now)
    from auditbook.catalog.model import load_catalog
    from auditbook.history.populations import population
    return population(engine, load_catalog(), "app_events", period, criterion)


CONFIG = AppAuditConfig.model_validate({"sources": [{"log_group": LOG_GROUP, "region": "us-east-1"}]})
SOURCE = source_key(ACCOUNT, "us-east-1", LOG_GROUP)


def audit(at: dt.datetime, kind="data_access", user="alice", outcome="success", **extra) -> dict:
    return {"timestamp": int(at.timestamp() * 1000),
            "message": json.dumps({"event_type": kind, "user": user, "source_ip": "10.0.0.9", "user_agent": "app/1",
                                   "timestamp": at.isoformat(), "action": "GET /x", "outcome": outcome, **extra})}


@pytest.fixture
def logs(aws, tmp_path):
    client = aws.client("logs")
    client.create_log_group(logGroupName=LOG_GROUP)
    client.create_log_stream(logGroupName=LOG_GROUP, logStreamName="s1")
    return client


@pytest.fixture
def engine(tmp_path):
    return open_engine(f"sqlite:///{tmp_path}/s.db")


def put(logs, events, stream="s1"):
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=sorted(events, key=lambda e: e["timestamp"]))


def test_reads_are_checkpointed_and_never_double_count(logs, engine):
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    put(logs, [audit(now - dt.timedelta(minutes=m)) for m in (50, 40, 5)])  # the last one: inside the lag
    first = ingest(engine, CONFIG, load_rules(), now=now)[SOURCE]
    assert (first.kept, first.unread, first.source_error) == (3, 0, None)
    assert first.covered[1] == now - dt.timedelta(minutes=15)  # the checkpoint stays `lag` behind
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName="s2")
    put(logs, [audit(now - dt.timedelta(minutes=10), user="late"), audit(now + dt.timedelta(minutes=1), user="new")],
        stream="s2")
    second = ingest(engine, CONFIG, load_rules(), now=now + dt.timedelta(minutes=2))[SOURCE]
    assert (second.kept, second.records) == (2, 2)  # the stretch read again: only the new events kept
    third = ingest(engine, CONFIG, load_rules(), now=now + dt.timedelta(minutes=3))[SOURCE]
    assert third.records == 0
    rows, total = list_events(engine, None, None)
    assert total == 5 and sorted(r["user"] for r in rows) == ["alice", "alice", "alice", "late", "new"]


def test_hostile_events_are_gaps_and_the_rest_is_read(logs, engine):
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    at = int((now - dt.timedelta(minutes=30)).timestamp() * 1000)
    put(logs, [audit(now - dt.timedelta(minutes=31)), {"timestamp": at, "message": "plain text, not JSON"},
               {"timestamp": at + 1, "message": json.dumps({"event_type": "data_access", "user": "x\x1b[2J",
                                                            "timestamp": now.isoformat()})},
               {"timestamp": at + 2, "message": "[" * 100 + "]" * 100},
               audit(now - dt.timedelta(minutes=29), user="bob")])
    result = ingest(engine, CONFIG, load_rules(), now=now)[SOURCE]
    assert (result.kept, result.unread) == (2, 3)
    reasons = [g.reason for g in result.gaps]
    assert any("not JSON" in r for r in reasons) and any("user:" in r and "control" in r for r in reasons)
    unread, _ = list_events(engine, None, None, unread=True)
    assert len(unread) == 3 and all(u["record_sha256"] == "" and u["unread"] for u in unread)
    again = ingest(engine, CONFIG, load_rules(), now=now + dt.timedelta(minutes=1))[SOURCE]
    assert again.records == 0  # a bad event is noted once, not counted again every cycle
    period = Period(now.date() - dt.timedelta(days=1), now.date(), "test")
    completeness = app_completeness(engine, period, now=now - dt.timedelta(minutes=15))
    assert completeness["accounts_regions"][0]["unread_records"] == 3 and not completeness["complete"]
    assert any("3 event(s) could not be read" in x["reason"] for x in completeness["limits"])


def test_a_missing_log_group_is_a_gap_not_an_empty_read(aws, engine):
    result = ingest(engine, CONFIG, load_rules())[SOURCE]
    assert result.source_error and "ResourceNotFoundException" in result.source_error
    assert result.covered is None and result.gaps[0].reason == result.source_error
    with reading(engine) as session:
        assert stored.checkpoint(session, SOURCE) is None
        [read] = stored.reads(session, dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
                              dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
    assert read["error"] == result.source_error


def test_a_page_that_fails_is_a_gap_and_the_range_is_read_again(aws, engine):
    """FilterLogEvents' second page fails (Stubber): the first page's events are kept, the read is a gap
    with its reason and the checkpoint does not move; the next read covers the range without duplicates."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    since = now - dt.timedelta(hours=1)
    with reading(engine) as session:
        assert stored.checkpoint(session, SOURCE) is None
    client = boto3.client("logs", region_name="us-east-1")
    stub = Stubber(client)
    group = {"logGroupName": LOG_GROUP, "creationTime": int((since + dt.timedelta(days=14)).timestamp() * 1000)}
    page1 = [{"eventId": f"e{i}", "timestamp": audit(since + dt.timedelta(minutes=i))["timestamp"],
              "ingestionTime": int(now.timestamp() * 1000), "logStreamName": "s1",
              "message": audit(since + dt.timedelta(minutes=i))["message"]} for i in range(3)]
    stub.add_response("describe_log_groups", {"logGroups": [group]})
    stub.add_response("filter_log_events", {"events": page1, "nextToken": "t2"})
    stub.add_client_error("filter_log_events", "ThrottlingException", "Rate exceeded")
    stub.add_response("describe_log_groups", {"logGroups": [group]})  # still no checkpoint: from the start
    stub.add_response("filter_log_events", {"events": page1[1:] + [{**page1[0], "eventId": "e3"}]})
    with stub:
        failed = ingest_source(engine, client, ACCOUNT, CONFIG.sources[0], CONFIG, load_rules(), now=now)
        assert failed.kept == 3 and "ThrottlingException" in failed.source_error and failed.covered is None
        completeness = app_completeness(engine, Period(since.date(), now.date(), "test"), now=now)
        assert any("the read failed: ThrottlingException" in x["reason"] for x in completeness["limits"])
        ok = ingest_source(engine, client, ACCOUNT, CONFIG.sources[0], CONFIG, load_rules(),
                           now=now + dt.timedelta(minutes=1))
    assert ok.source_error is None and ok.kept == 1  # e3 only: e0-e2 were kept by the failed read
    assert ok.covered[0] == since  # read again from where the failed read started
    assert list_events(engine, None, None)[1] == 4


def test_the_demo_events_raise_the_application_alerts_with_redacted_evidence(aws, engine):
    from auditbook.demo.estate import Account
    now = dt.datetime.now(dt.timezone.utc)
    events = simulated_events(now)
    events[0]["session_token"] = "live-session-token-value"
    audit_group(Account(aws, ACCOUNT, "prod-us-east"), compliant=True, events=events)
    result = ingest(engine, CONFIG, load_rules(), now=now + dt.timedelta(minutes=1))[SOURCE]
    assert result.kept == len(events) and result.unread == 0
    alerts = {a["rule"]: a for a in list_alerts(engine, ("firing",))}
    assert "AppRepeatedDeniedDataAccess" in alerts and "AppAdminActionOutsideChangeWindow" in alerts
    denied = alerts["AppRepeatedDeniedDataAccess"]
    assert denied["labels"] == {"user": "mallory@example.com"} and denied["soc2_control"] == "CC6.3,CC7.2"
    assert "AppSystemChangeBurst" not in alerts and "AppBulkDataAccess" not in alerts
    again = ingest(engine, CONFIG, load_rules(), now=now + dt.timedelta(minutes=2))[SOURCE]
    assert again.fired == 0 and len(list_alerts(engine, ("firing",))) == len(alerts)
    records = evidence_records(engine, denied)
    assert records and all(r["outcome"] == "denied" for r in records)
    with reading(engine) as session:
        kept = [stored.event_record(session, SOURCE, e["event_id"]) for e in list_events(engine, None, None, limit=99)[0]]
    assert "live-session-token-value" not in json.dumps(kept)


def test_populations_per_criterion_and_completeness(aws, engine, tmp_path):
    from auditbook.demo.estate import Account
    now = dt.datetime.now(dt.timezone.utc)
    audit_group(Account(aws, ACCOUNT, "prod-us-east"), compliant=True, events=simulated_events(now))
    ingest(engine, CONFIG, load_rules(), now=now)
    period = Period((now - dt.timedelta(days=2)).date(), now.date(), "test")
    changes = app_population(engine, period, "CC8.1", now=now - dt.timedelta(minutes=15))
    access = app_population(engine, period, "CC6.3", now=now - dt.timedelta(minutes=15))
    assert changes.count == 3 and {r["kind"] for r in changes.rows} == {"system_change"}
    assert {r["kind"] for r in access.rows} == {"data_access", "admin_action"} and access.count == 49
    assert changes.completeness["accounts_regions"][0]["log_group"] == LOG_GROUP
    assert app_completeness(engine, period, now=now - dt.timedelta(minutes=15))["complete"]
    assert len(set(changes.ids)) == changes.count and changes.sha256 == app_population(
        engine, period, "CC8.1", now=now - dt.timedelta(minutes=15)).sha256
    from auditbook.history.populations import read_csv, rows_sha256, write_csv
    write_csv(changes, tmp_path / "population-app_events-CC8.1.csv")
    assert rows_sha256(read_csv(tmp_path / "population-app_events-CC8.1.csv")) == changes.sha256
    assert "# completeness: application audit" in (tmp_path / "population-app_events-CC8.1.csv").read_text().splitlines()[0]
    with pytest.raises(Exception, match="evidence CC6.3, CC8.1, not 'CC7.2'"):
        app_population(engine, period, "CC7.2")
    later = Period(now.date() + dt.timedelta(days=1), now.date() + dt.timedelta(days=1), "later")
    gaps = app_completeness(engine, later, now=now + dt.timedelta(days=2))
    assert not gaps["complete"] and gaps["limits"][0]["reason"] == f"log group {LOG_GROUP}: never read in the period"


def test_windows_span_cycles(logs, engine):
    """Five denied reads in one cycle and a sixth in the next make six in the window: the alert fires."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    put(logs, [audit(now - dt.timedelta(minutes=10, seconds=-10 * i), user="eve", outcome="denied") for i in range(5)])
    assert ingest(engine, CONFIG, load_rules(), now=now)[SOURCE].fired == 0
    put(logs, [audit(now - dt.timedelta(minutes=8), user="eve", outcome="Forbidden")])  # late, inside the lag
    assert ingest(engine, CONFIG, load_rules(), now=now + dt.timedelta(minutes=1))[SOURCE].fired == 1
    [alert] = list_alerts(engine, ("firing",))
    assert alert["rule"] == "AppRepeatedDeniedDataAccess" and alert["labels"] == {"user": "eve"}


def test_a_source_that_cannot_be_reached_is_a_gap_and_the_others_are_read(logs, engine):
    from botocore.exceptions import ClientError
    config = AppAuditConfig.model_validate({"sources": [
        {"log_group": "/other", "region": "eu-west-1", "role": "arn:aws:iam::210987654321:role/Reader"},
        {"log_group": LOG_GROUP, "region": "us-east-1"}]})
    put(logs, [audit(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20))])

    def connect_to(source):
        if source.role:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "AssumeRole")
        return boto3.client("logs", region_name=source.region), ACCOUNT
    results = ingest(engine, config, load_rules(), connect_to=connect_to)
    assert results["eu-west-1//other"].source_error == "cannot connect: AccessDenied: not allowed"
    assert results[SOURCE].kept == 1


def test_cli_ingest_and_list(logs, tmp_path, capsys, monkeypatch):
    from tests.conftest import run_main
    put(logs, [audit(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20), user="zed")])
    config = tmp_path / "app-audit.yml"
    config.write_text(f"sources:\n  - {{log_group: {LOG_GROUP}, region: us-east-1}}\n"
                      "  - {log_group: /missing, region: us-east-1}\n")
    db = f"sqlite:///{tmp_path}/cli.db"
    code, out, err = run_main(capsys, monkeypatch, "app-audit", "ingest", "--config", str(config), "--db", db)
    assert code == 1  # a log group could not be read: a recorded gap, and the exit code says so
    assert f"{SOURCE}: 1 new events, 0 unreadable" in out and "evidence gap" in err and "/missing" in err
    code, out, _err = run_main(capsys, monkeypatch, "app-audit", "list", "--format", "json", "--db", db)
    assert code == 0 and [e["user"] for e in json.loads(out)] == ["zed"]


def test_watch_reads_the_application_audit_log_groups(logs, tmp_path, capsys, monkeypatch):
    from tests.conftest import run_main
    put(logs, [audit(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20), user="wanda")])
    config = tmp_path / "app-audit.yml"
    config.write_text(f"sources:\n  - {{log_group: {LOG_GROUP}, region: us-east-1}}\n")
    db = f"sqlite:///{tmp_path}/w.db"
    code, out, _err = run_main(capsys, monkeypatch, "watch", "--once", "--app-audit", str(config), "--db", db)
    assert code == 0 and f"{SOURCE}: 1 new events, 0 unreadable" in out
    config.write_text("sources:\n  - {log_group: /missing, region: us-east-1}\n")
    code, _out, err = run_main(capsys, monkeypatch, "watch", "--once", "--app-audit", str(config), "--db", db)
    assert code == 1 and "evidence gap" in err and "/missing" in err  # a log group not read: exit 1
    config.write_text("sources: []\n")
    code, _out, err = run_main(capsys, monkeypatch, "watch", "--once", "--app-audit", str(config), "--db", db)
    assert code == 2 and "sources: List should have at least 1 item" in err  # checked before the first cycle
    code, out, _err = run_main(capsys, monkeypatch, "app-audit", "list", "--format", "json", "--db", db)
    assert code == 0 and [e["user"] for e in json.loads(out)] == ["wanda"]


def test_the_demo_reads_prods_audit_log_group_through_the_organisation_role(aws, engine):
    """The demo organisation (demo.estate.build): prod's /app/audit read through its role (STS), the
    staging group (no events) left alone; the demo's alerts raised."""
    from auditbook.demo.estate import ROLE, build
    from auditbook.demo.estate_applogs import ingest_demo
    ids = build(aws, log=lambda m: None)
    results = ingest_demo(ids, engine, ROLE)
    [(name, result)] = results.items()
    assert name == source_key(ids["prod-us-east"], "us-east-1", LOG_GROUP) and result.source_error is None
    assert result.kept == len(simulated_events(dt.datetime.now(dt.timezone.utc))) and result.unread == 0
    assert {"AppRepeatedDeniedDataAccess", "AppAdminActionOutsideChangeWindow"} <= {
        a["rule"] for a in list_alerts(engine, ("firing",))}
