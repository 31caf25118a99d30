"""CloudTrail ingestion and the alerting rules: real log-file layout in an S3 bucket (moto), every
shipped rule fires on its incident and not on normal traffic, files are read once, a crash mid-file
leaves nothing and is re-read in full, a bad file is an evidence gap. The bucket is the `trail` fixture
(tests/conftest.py), the files come from tests/cloudtrail_files.py; tests/integration/test_cloudtrail.py
(an HTTP receiver, PostgreSQL) and tests/e2e/test_cloudtrail.py (`auditbook watch` as a process) hold the rest."""
import datetime as dt
import gzip
import json

import pytest

from auditbook.demo import trail as trailgen
from auditbook.errors import UserError
from auditbook.monitor import alerts
from auditbook.monitor.cloudtrail import normalise
from auditbook.monitor.rules import load_rules
from auditbook.monitor.watch import cycle
from auditbook.store.db import open_engine
from tests.cloudtrail_files import (
    ACCOUNT,
    PARAMETER,
    PASSWORD,
    REGION,
    firing_alerts,
    gzipped,
    log_key,
    read_a_hostile_file_between_two_good_ones,
    root_call,
    secret_records,
    stored_matches,
)

SHIPPED = {"UnauthorizedDataAccess", "RootAccountUsage", "ConsoleLoginWithoutMFA", "SecurityGroupOpenedToWorld",
           "CloudTrailStoppedOrChanged", "KMSKeyScheduledForDeletion", "IAMPolicyChanged",
           "EncryptionKeyRotationOverdue", "CheckRegressed"}
APP_RULES = {"AppRepeatedDeniedDataAccess", "AppBulkDataAccess", "AppSystemChangeBurst", "AppAdminActionAtWeekend",
             "AppAdminActionOutsideChangeWindow"}  # application audit events: tests/*/test_app_audit*.py


def _run(t, now=None):
    return cycle(t["engine"], lambda b: t["s3"], ["org-trail"], now=now)


def test_shipped_rules_load():
    assert {r.name for r in load_rules()} == SHIPPED | APP_RULES


def test_every_event_rule_fires_on_its_incident_and_never_on_normal_traffic(trail):
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"], 6, 300, with_incidents=False))
    result = _run(trail)
    assert result.ingest["org-trail"].records == 1800 and result.ingest["org-trail"].files == 6
    assert alerts.list_alerts(trail["engine"]) == []
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"] + dt.timedelta(minutes=31),
                                                              2, 300, seed=2))
    _run(trail)
    firing = firing_alerts(trail["engine"])
    assert set(firing) == SHIPPED - {"EncryptionKeyRotationOverdue", "CheckRegressed"}
    denied = firing["UnauthorizedDataAccess"]
    assert denied["labels"] == {"principal": f"arn:aws:iam::{ACCOUNT}:user/intruder"}
    assert denied["count"] == 3  # 8 denials 20 s apart: the 6th, 7th and 8th are "more than 5 in 5 minutes"
    assert denied["severity"] == "high" and denied["soc2_control"] == "CC6.1,CC7.2"
    assert firing["RootAccountUsage"]["labels"] == {"account": ACCOUNT}
    assert firing["ConsoleLoginWithoutMFA"]["labels"]["principal"].endswith("user/dev-console")


def test_five_denials_are_not_an_alert_but_six_are(trail):
    at = trail["start"]
    rows = [trailgen.record(at + dt.timedelta(seconds=30 * i), ACCOUNT, REGION, "s3.amazonaws.com", "GetObject",
                            user="probe", error="AccessDenied") for i in range(5)]
    key = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{at:%Y/%m/%d}/{ACCOUNT}_CloudTrail_{REGION}_{at:%Y%m%dT%H%MZ}_a.json.gz"
    trail["s3"].put_object(Bucket="org-trail", Key=key, Body=gzip.compress(json.dumps({"Records": rows}).encode()))
    _run(trail)
    assert "UnauthorizedDataAccess" not in firing_alerts(trail["engine"])
    # the sixth arrives in a later file, inside the window: the window is remembered across cycles
    sixth = [trailgen.record(at + dt.timedelta(seconds=200), ACCOUNT, REGION, "s3.amazonaws.com", "GetObject",
                             user="probe", error="AccessDenied")]
    trail["s3"].put_object(Bucket="org-trail", Key=key.replace("_a.json", "_b.json"),
                           Body=gzip.compress(json.dumps({"Records": sixth}).encode()))
    _run(trail)
    assert firing_alerts(trail["engine"])["UnauthorizedDataAccess"]["labels"]["principal"].endswith("user/probe")


def test_files_are_read_once_and_a_crash_mid_file_leaves_nothing(trail, monkeypatch):
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"], 4, 200))
    import auditbook.monitor.cloudtrail as ct
    real = ct.normalise
    calls = {"n": 0}

    def crash_midway(record):
        calls["n"] += 1
        if calls["n"] == 5:  # inside the file with the incidents, after some matches were added
            raise RuntimeError("killed")
        return real(record)
    monkeypatch.setattr(ct, "normalise", crash_midway)
    with pytest.raises(RuntimeError):
        _run(trail)
    monkeypatch.setattr(ct, "normalise", real)
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from auditbook.store.models import CloudTrailMatch, CloudTrailObject
    with Session(trail["engine"]) as s:
        read_before = s.scalar(select(func.count()).select_from(CloudTrailObject))
        assert s.scalar(select(func.count()).select_from(CloudTrailMatch)) == 0  # nothing of the crashed file
    assert read_before == 2  # the two files before it were committed
    again = _run(trail)
    assert again.ingest["org-trail"].files == 2 and again.ingest["org-trail"].skipped == 2
    once = firing_alerts(trail["engine"])["UnauthorizedDataAccess"]["count"]
    third = _run(trail)
    assert third.ingest["org-trail"].files == 0 and third.ingest["org-trail"].skipped == 4
    assert firing_alerts(trail["engine"])["UnauthorizedDataAccess"]["count"] == once == 3
    with Session(trail["engine"]) as s:
        assert s.scalar(select(func.count()).select_from(CloudTrailMatch)) == 14  # 8 denials + 6 incidents


def test_a_bad_log_file_is_an_evidence_gap_and_is_not_marked_read(trail):
    key = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/11/01/{ACCOUNT}_CloudTrail_{REGION}_20261101T0000Z_x.json.gz"
    trail["s3"].put_object(Bucket="org-trail", Key=key, Body=b"not gzip at all")
    trail["s3"].put_object(Bucket="org-trail", Key="AWSLogs/unrelated/readme.txt", Body=b"ignored")
    trail["s3"].put_object(Bucket="org-trail", Key=key.replace("_x.json", "_\x1b[2J.json"), Body=b"not written by CloudTrail")
    result = _run(trail).ingest["org-trail"]
    assert result.files == 0 and [k for k, _ in result.bad_files] == [key]
    assert _run(trail).ingest["org-trail"].bad_files  # still reported next cycle: never silently skipped


def test_acknowledged_event_alert_resolves_once_quiet_unacknowledged_stays(trail):
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"], 2, 50))
    _run(trail)
    from auditbook.auth import Actor
    firing = firing_alerts(trail["engine"])
    root = firing["RootAccountUsage"]
    alerts.acknowledge(trail["engine"], Actor("ana", "analyst"), root["id"], root["version"])
    _run(trail, now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2))
    assert alerts.get(trail["engine"], root["id"])["state"] == "resolved"
    assert alerts.get(trail["engine"], firing["IAMPolicyChanged"]["id"])["state"] == "firing"


def test_normalise_reads_the_real_record_shape():
    at = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    login = trailgen.record(at, ACCOUNT, REGION, "signin.amazonaws.com", "ConsoleLogin", user="kim",
                            response={"ConsoleLogin": "Success"}, extra={"MFAUsed": "No"})
    event = normalise(login)
    assert (event["eventName"], event["mfa"], event["loginResult"], event["userType"]) == ("ConsoleLogin", "No", "Success", "IAMUser")
    opened = trailgen.incidents(at, ACCOUNT, REGION)[10]
    assert opened["eventName"] == "AuthorizeSecurityGroupIngress" and normalise(opened)["worldOpen"] == "true"
    narrow = dict(opened, requestParameters={"ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}}]}})
    assert normalise(narrow)["worldOpen"] == "false"


def test_posture_rule_key_rotation_overdue(aws, tmp_path):
    from auditbook.scan import run_scan
    kms = aws.client("kms")
    stale = kms.create_key(Description="never-rotated")["KeyMetadata"]["KeyId"]
    db = f"sqlite:///{tmp_path}/p.db"
    run_scan(regions="us-east-1", db=db, criterion="CC6.1")
    engine = open_engine(db)
    from auditbook.monitor.watch import evaluate_posture
    rules = load_rules()
    assert evaluate_posture(engine, rules, dt.datetime.now(dt.timezone.utc)) == (0, 0)  # created today
    # the catalog's kms_rotation_max_days (365, the rotation check's threshold too): not overdue at 91 days
    assert evaluate_posture(engine, rules, dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=91)) == (0, 0)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=366)
    fired, _ = evaluate_posture(engine, rules, later)
    overdue = [a for a in alerts.list_alerts(engine, ("firing",)) if a["rule"] == "EncryptionKeyRotationOverdue"]
    assert fired == 1 and [a["labels"]["resource"].split("/")[-1] for a in overdue] == [stale]




def test_alerts_command_json_carries_the_cloudtrail_records(trail):
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"], 2, 50))
    _run(trail)
    from typer.testing import CliRunner

    from auditbook.cli.main import registered_app
    app = registered_app()
    db = str(trail["engine"].url)
    r = CliRunner().invoke(app, ["alerts", "--state", "firing", "--format", "json", "--db", db])
    assert r.exit_code == 0, r.output
    docs = {d["rule"]: d for d in json.loads(r.output)}
    denied = docs["UnauthorizedDataAccess"]
    assert {"rule", "state", "severity", "soc2_control", "labels", "first_seen", "last_seen", "count", "evidence"} <= set(denied)
    assert len(denied["evidence"]) == 8 and all(e["errorCode"] == "AccessDenied" for e in denied["evidence"])
    assert all(e["userIdentity"]["arn"].endswith("user/intruder") for e in denied["evidence"])
    r = CliRunner().invoke(app, ["alerts", "--state", "exploded", "--db", db])
    assert r.exit_code != 0


def _lookup_page(records):
    return {"Events": [{"EventId": r["eventID"], "EventName": r["eventName"], "CloudTrailEvent": json.dumps(r)}
                       for r in records]}


def test_lookup_events_where_the_endpoint_has_it(tmp_path):
    """moto has no LookupEvents: botocore's Stubber answers with the AWS API reference's shapes."""
    import boto3
    from botocore.stub import ANY, Stubber

    from auditbook.monitor.cloudtrail_lookup import ingest_lookup
    engine = open_engine(f"sqlite:///{tmp_path}/l.db")
    client = boto3.client("cloudtrail", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    rows = trailgen.incidents(now - dt.timedelta(minutes=10), ACCOUNT, REGION)
    with Stubber(client) as stub:
        stub.add_response("lookup_events", _lookup_page(rows[:9]), {"StartTime": ANY, "EndTime": ANY})
        result = ingest_lookup(engine, client, load_rules(), now=now)
        assert result.records == 9 and result.bad_files == []
        assert {"UnauthorizedDataAccess", "RootAccountUsage"} <= set(firing_alerts(engine))
        # the next page overlaps the last: the root sign-in is not counted twice
        stub.add_response("lookup_events", _lookup_page(rows[8:]), {"StartTime": ANY, "EndTime": ANY})
        ingest_lookup(engine, client, load_rules(), now=now + dt.timedelta(minutes=1))
        stub.add_client_error("lookup_events", service_error_code="UnknownOperationException", http_status_code=400)
        gap = ingest_lookup(engine, client, load_rules(), now=now + dt.timedelta(minutes=2))
    firing = firing_alerts(engine)
    assert firing["RootAccountUsage"]["count"] == 1
    assert set(firing) == SHIPPED - {"EncryptionKeyRotationOverdue", "CheckRegressed"}
    assert gap.bad_files and gap.bad_files[0][1].startswith("UnknownOperationException")


def test_posture_rule_for_keeps_it_pending_until_it_has_held(aws, tmp_path):
    import yaml

    from auditbook.monitor.watch import evaluate_posture
    from auditbook.scan import run_scan
    aws.client("kms").create_key(Description="k")
    db = f"sqlite:///{tmp_path}/f.db"
    run_scan(regions="us-east-1", db=db, criterion="CC6.1")
    engine = open_engine(db)
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "p", "rules": [{
        "alert": "KeyNotRotating", "expr": 'posture("aws.kms.key", "customer_symmetric && !rotation_enabled")',
        "for": "1d", "labels": {"severity": "low", "soc2_control": "CC6.1"}, "annotations": {"summary": "no rotation"}}]}]}))
    rules = load_rules(path)
    t0 = dt.datetime.now(dt.timezone.utc)
    assert evaluate_posture(engine, rules, t0) == (0, 0)
    assert [a["state"] for a in alerts.list_alerts(engine)] == ["pending"]
    assert evaluate_posture(engine, rules, t0 + dt.timedelta(hours=12))[0] == 0
    assert evaluate_posture(engine, rules, t0 + dt.timedelta(days=1, minutes=1))[0] == 1
    assert [a["state"] for a in alerts.list_alerts(engine)] == ["firing"]


# --- hostile log files: a bad record, a bomb, a file that is not CloudTrail is an evidence gap ---------------

def test_a_bad_record_is_a_gap_and_the_rest_of_the_file_and_every_later_file_are_read(trail):
    read_a_hostile_file_between_two_good_ones(trail, parse_workers=0)


def _bomb(inflated: int) -> bytes:
    """Valid JSON (a Records list, then spaces) that inflates to `inflated` bytes from a few KB."""
    import zlib
    head = json.dumps({"Records": [root_call(dt.datetime.now(dt.timezone.utc))]}).encode()[:-1]
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [z.compress(head)]
    block = b" " * 2**20
    for _ in range(inflated // len(block)):
        parts.append(z.compress(block))
    parts.append(z.compress(b"}") + z.flush())
    return b"".join(parts)


def _corrupt_deflate() -> bytes:
    body = bytearray(gzipped([root_call(dt.datetime.now(dt.timezone.utc)) for _ in range(50)]))
    for i in range(40, 60):
        body[i] ^= 0xFF
    return bytes(body)


@pytest.mark.parametrize("body, reason", [
    (_bomb(4 * 2**20), "more than"),
    (gzip.compress(b'{"Records": [' + b"{}," * 300_000 + b"{}]}"), "too dense"),  # under the cap, GBs once parsed
    (b"not gzip at all", "not gzip"),
    (gzip.compress(b"{nope"), "not JSON"),
    (gzip.compress(b'[{"Records": []}]'), "Records"),
    (gzip.compress(b'{"Records": {"a": 1}}'), "Records"),
    (gzip.compress(b'{"records": []}'), "Records"),
    (gzip.compress(b'{"Records": []}')[:-9], "truncated"),
    (_corrupt_deflate(), "not gzip"),
    (gzip.compress(b'{"Records": []}') + b"trailing junk", "not gzip"),
    (gzip.compress('{"Records": []}'.encode("utf-16")), "not JSON"),
    (gzip.compress(b'{"Records": [' + b"[" * 5000 + b"]" * 5000 + b"]}"), "not JSON"),
], ids=["bomb", "dict-bomb", "not-gzip", "not-json", "top-list", "records-object", "no-records", "truncated", "corrupt-deflate",
        "trailing-junk", "utf16", "deep"])
def test_a_hostile_file_is_a_gap_between_two_good_ones(trail, monkeypatch, body, reason):
    monkeypatch.setenv("AUDITBOOK_CLOUDTRAIL_MAX_MB", "1")
    at = trail["start"]
    s3 = trail["s3"]
    s3.put_object(Bucket="org-trail", Key=log_key(at, "a"), Body=gzipped([root_call(at)]))
    hostile = log_key(at + dt.timedelta(minutes=5), "b")
    s3.put_object(Bucket="org-trail", Key=hostile, Body=body)
    s3.put_object(Bucket="org-trail", Key=log_key(at + dt.timedelta(minutes=10), "c"),
                  Body=gzipped([root_call(at + dt.timedelta(minutes=10))]))
    result = _run(trail).ingest["org-trail"]
    assert result.files == 2 and result.records == 2 and len(stored_matches(trail["engine"])) == 2
    assert [(g.source, g.index) for g in result.gaps] == [(hostile, None)]
    assert reason in result.gaps[0].reason and "\n" not in result.gaps[0].reason
    s3.put_object(Bucket="org-trail", Key=log_key(at + dt.timedelta(minutes=15), "d"),
                  Body=gzipped([root_call(at + dt.timedelta(minutes=15))]))
    again = _run(trail).ingest["org-trail"]
    assert again.files == 1 and [g.source for g in again.gaps] == [hostile]  # reported again, blocks nothing


def test_the_inflated_size_cap_is_configurable_and_checked(trail, monkeypatch):
    from auditbook.monitor.cloudtrail import DEFAULT_MAX_INFLATED, max_inflated
    monkeypatch.delenv("AUDITBOOK_CLOUDTRAIL_MAX_MB", raising=False)
    assert max_inflated() == DEFAULT_MAX_INFLATED >= 200 * 2**20  # well above a real file (~50 MB)
    monkeypatch.setenv("AUDITBOOK_CLOUDTRAIL_MAX_MB", "8")
    assert max_inflated() == 8 * 2**20
    for bad in ("0", "-1", "lots", "1e9", "99999999"):
        monkeypatch.setenv("AUDITBOOK_CLOUDTRAIL_MAX_MB", bad)
        with pytest.raises(UserError, match="AUDITBOOK_CLOUDTRAIL_MAX_MB"):
            max_inflated()
    # a compressed file already larger than the cap is a gap without being downloaded and inflated
    monkeypatch.setenv("AUDITBOOK_CLOUDTRAIL_MAX_MB", "1")
    import os
    key = log_key(trail["start"], "big")
    trail["s3"].put_object(Bucket="org-trail", Key=key, Body=os.urandom(2**20 + 10))
    gaps = _run(trail).ingest["org-trail"].gaps
    assert [(g.source, g.index) for g in gaps] == [(key, None)] and "compressed" in gaps[0].reason


def test_an_object_that_cannot_be_fetched_is_a_gap_and_blocks_nothing(trail):
    from botocore.exceptions import ClientError
    at = trail["start"]
    s3 = trail["s3"]
    for tag, minutes in (("a", 0), ("b", 5), ("c", 10)):
        s3.put_object(Bucket="org-trail", Key=log_key(at + dt.timedelta(minutes=minutes), tag),
                      Body=gzipped([root_call(at + dt.timedelta(minutes=minutes))]))
    denied = log_key(at + dt.timedelta(minutes=5), "b")
    real = s3.get_object

    def get_object(**kw):  # a log file encrypted with a KMS key this reader may not use
        if kw["Key"] == denied:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "kms:Decrypt denied"}}, "GetObject")
        return real(**kw)
    s3.get_object = get_object
    result = _run(trail).ingest["org-trail"]
    assert result.files == 2 and [(g.source, g.index) for g in result.gaps] == [(denied, None)]
    assert result.gaps[0].reason.startswith("AccessDenied")
    s3.get_object = real
    assert _run(trail).ingest["org-trail"].files == 1  # read once it can be


def test_a_long_principal_keeps_the_dedup_key_within_its_column():
    from auditbook.monitor.alerts import MAX_KEY, dedup_key
    long = "arn:aws:iam::111122223333:user/" + "p/" * 300 + "someone"
    key = dedup_key("UnauthorizedDataAccess", {"principal": long})
    assert len(key) <= MAX_KEY == 600
    assert key != dedup_key("UnauthorizedDataAccess", {"principal": long + "x"})
    assert dedup_key("R", {"a": "1"}) == "R|a=1"  # short keys unchanged


# --- secrets in CloudTrail records: redacted before they are stored, shown, exported or sent ---------------



def test_lookup_events_hostile_records_are_gaps_and_secrets_are_redacted(tmp_path):
    import boto3
    from botocore.stub import ANY, Stubber

    from auditbook.collect.evidence import REDACTED
    from auditbook.monitor.cloudtrail_lookup import ingest_lookup
    engine = open_engine(f"sqlite:///{tmp_path}/l.db")
    client = boto3.client("cloudtrail", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    good = secret_records(now - dt.timedelta(minutes=5))
    bad_time = {**root_call(now), "eventTime": "yesterday"}
    page = {"Events": [{"EventId": "e1", "CloudTrailEvent": "[1, 2]"}, {"EventId": "e2", "CloudTrailEvent": "{nope"},
                       {"EventId": "e3", "CloudTrailEvent": json.dumps(bad_time)},
                       {"EventId": "e4", "CloudTrailEvent": json.dumps({**root_call(now), "eventName": {"x": 1}})},
                       {"EventId": "e5"}]
            + _lookup_page(good)["Events"]}
    with Stubber(client) as stub:
        stub.add_response("lookup_events", page, {"StartTime": ANY, "EndTime": ANY})
        result = ingest_lookup(engine, client, load_rules(), now=now)
    assert result.records == 7 and result.matches == 2
    reasons = {g.index: g.reason for g in result.gaps}
    assert sorted(reasons) == [0, 1, 2, 3, 4]
    assert "object" in reasons[0] and "not JSON" in reasons[1] and "eventTime" in reasons[2]
    assert "eventName" in reasons[3] and "CloudTrailEvent" in reasons[4]
    records = [m.record for m in stored_matches(engine)]
    assert [r["requestParameters"].get("password") or r["requestParameters"].get("value") for r in records] == [REDACTED] * 2


def test_a_posture_condition_that_cannot_be_evaluated_on_a_resource_is_a_gap_not_silence(aws, tmp_path):
    import yaml

    from auditbook.monitor.watch import evaluate_posture
    from auditbook.scan import run_scan
    aws.client("kms").create_key(Description="not a date")
    db = f"sqlite:///{tmp_path}/g.db"
    run_scan(regions="us-east-1", db=db, criterion="CC6.1")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "p", "rules": [{
        "alert": "OddRule", "expr": 'posture("aws.kms.key", "days_since(Description) > `1`")',
        "labels": {"severity": "low", "soc2_control": "CC6.1"}, "annotations": {"summary": "odd"}}]}]}))
    gaps: list = []
    engine = open_engine(db)
    assert evaluate_posture(engine, load_rules(path), gaps=gaps) == (1, 0)  # the gap alert, not silence
    assert [(rule, reason.split(":")[0]) for rule, _resource, reason in gaps] == [("OddRule", "ValueError")]
    key_arn = gaps[0][1]
    assert key_arn.startswith("arn:aws:kms:")
    [gap] = alerts.list_alerts(engine, ("firing",))
    assert gap["rule"] == "PostureRuleUnevaluated" and gap["severity"] == "warning" and gap["soc2_control"] == "CC6.1"
    assert gap["labels"]["rule"] == "OddRule" and gap["labels"]["resource_type"] == "aws.kms.key"
    assert gap["labels"]["resource"] == key_arn and "ValueError" in gap["summary"]
    # the same rule made sound: the resource is judged again, and the gap alert resolves
    path.write_text(path.read_text().replace("days_since(Description)", "days_since(CreationDate)"))
    assert evaluate_posture(engine, load_rules(path)) == (0, 1)
    assert alerts.list_alerts(engine, ("firing",)) == []


def test_migration_0007_redacts_records_stored_before_and_hashes_them(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, text

    from auditbook.collect.evidence import REDACTED, canonical, digest
    from auditbook.store.db import alembic_config
    url = f"sqlite:///{tmp_path}/old.db"
    old = create_engine(url)
    with old.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
    at = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
    with old.begin() as conn:
        for n, record in enumerate(secret_records(at)):
            conn.execute(text("INSERT INTO cloudtrail_matches (rule, labels_key, at, event_id, record) "
                              "VALUES ('RootAccountUsage', 'k', :at, :id, :record)"),
                         {"at": at, "id": f"e{n}", "record": json.dumps(record)})
    old.dispose()
    engine = open_engine(url)  # migrates to head
    rows = stored_matches(engine)
    assert [r.record["requestParameters"].get("password") or r.record["requestParameters"].get("value")
            for r in rows] == [REDACTED, REDACTED]
    assert all(r.record_sha256 == digest(canonical(r.record)) for r in rows)
    engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("old.db*"))
    assert b"CreateLoginProfile" in raw and PASSWORD.encode() not in raw and PARAMETER.encode() not in raw






def test_with_a_pool_files_are_fetched_as_the_workers_need_them_not_all_at_once(trail, monkeypatch):
    """Executor.map submits every call up front: a backlog's bodies would all sit in memory at once."""
    from concurrent.futures import ThreadPoolExecutor

    import auditbook.monitor.cloudtrail as ct
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"], 12, 20))
    fetched, seen_at_commit = [], []
    real_fetch, real_process = ct.fetch, ct.process_records
    monkeypatch.setattr(ct, "fetch", lambda *a: fetched.append(a[2]) or real_fetch(*a))
    monkeypatch.setattr(ct, "process_records", lambda *a, **k: seen_at_commit.append(len(fetched)) or real_process(*a, **k))
    with ThreadPoolExecutor(1) as pool:
        result = ct.ingest_bucket(trail["engine"], trail["s3"], "org-trail", load_rules(), pool=pool, window=2)
    assert result.files == 12 and len(fetched) == 12
    assert seen_at_commit[0] <= 3 and all(n <= i + 3 for i, n in enumerate(seen_at_commit))


# --- attack pass: records dated ahead, many-member gzip, unlisted buckets, secrets in name/value pairs ------

def _denied(at: dt.datetime, user: str = "intruder") -> dict:
    return trailgen.record(at, ACCOUNT, REGION, "s3.amazonaws.com", "GetObject", user=user, error="AccessDenied")


def test_a_record_dated_after_its_file_was_delivered_is_a_gap_and_silences_no_rule(trail):
    """One planted record dated 23 h ahead used to make every genuine record fall out of the window."""
    now = trail["start"] + dt.timedelta(hours=1)
    s3 = trail["s3"]
    planted = _denied(now + dt.timedelta(hours=23))
    s3.put_object(Bucket="org-trail", Key=log_key(now - dt.timedelta(hours=2), "planted"), Body=gzipped([planted]))
    burst = [_denied(now - dt.timedelta(minutes=30) + dt.timedelta(seconds=20 * i)) for i in range(8)]
    s3.put_object(Bucket="org-trail", Key=log_key(now - dt.timedelta(minutes=25), "genuine"), Body=gzipped(burst))
    result = _run(trail, now=now).ingest["org-trail"]
    assert [(g.source, g.index) for g in result.gaps] == [(log_key(now - dt.timedelta(hours=2), "planted"), 0)]
    assert "eventTime" in result.gaps[0].reason and "delivery" in result.gaps[0].reason
    denied = firing_alerts(trail["engine"])["UnauthorizedDataAccess"]
    assert denied["count"] == 3 and planted["eventID"] not in denied["evidence"]
    # LookupEvents has no delivery time: now (plus the slack) bounds it
    from auditbook.monitor.cloudtrail_records import FUTURE_SLACK, latest_event_time
    assert latest_event_time(now) == now + FUTURE_SLACK <= now + dt.timedelta(minutes=15)
    assert latest_event_time(now, now + dt.timedelta(days=1)) == now + FUTURE_SLACK  # a key dated ahead: now


def test_a_record_dated_a_little_ahead_does_not_hide_the_genuine_ones_after_it(trail):
    """Within the slack a record may be dated ahead of its file, but it must not push the window
    memory past the genuine records — in the cycle it arrives in, or the cycles after."""
    now = trail["start"] + dt.timedelta(hours=1)
    s3 = trail["s3"]
    earlier = [_denied(now - dt.timedelta(minutes=4) + dt.timedelta(seconds=20 * i)) for i in range(5)]
    ahead = [root_call(now + dt.timedelta(minutes=4)), _denied(now + dt.timedelta(minutes=4), user="decoy")]
    s3.put_object(Bucket="org-trail", Key=log_key(now - dt.timedelta(minutes=2), "a"), Body=gzipped(earlier))
    s3.put_object(Bucket="org-trail", Key=log_key(now, "b"), Body=gzipped(ahead))
    assert _run(trail, now=now).ingest["org-trail"].gaps == []
    assert "UnauthorizedDataAccess" not in firing_alerts(trail["engine"])  # five denials: not yet
    root_login = trailgen.record(now - dt.timedelta(seconds=30), ACCOUNT, REGION, "signin.amazonaws.com",
                                 "ConsoleLogin", user_type="Root", response={"ConsoleLogin": "Success"},
                                 extra={"MFAUsed": "Yes"})
    sixth = _denied(now - dt.timedelta(seconds=20))
    s3.put_object(Bucket="org-trail", Key=log_key(now + dt.timedelta(minutes=1), "c"), Body=gzipped([root_login, sixth]))
    _run(trail, now=now + dt.timedelta(minutes=1))
    firing = firing_alerts(trail["engine"])
    root = firing["RootAccountUsage"]  # the genuine sign-in after the record dated ahead updates the open alert
    assert root["count"] == 2 and root_login["eventID"] in root["evidence"]
    denied = firing["UnauthorizedDataAccess"]  # the sixth denial counts the five stored before it
    assert denied["labels"]["principal"].endswith("user/intruder") and denied["evidence"] == [sixth["eventID"]]


def test_the_delivery_time_is_read_from_the_key_and_a_file_of_five_minutes_stamped_at_its_start_is_believed():
    from auditbook.monitor.cloudtrail_records import (
        delivered_at,
        event_time,
        latest_event_time,
    )
    at = dt.datetime(2026, 12, 1, 13, 20, 59, tzinfo=dt.timezone.utc)
    assert delivered_at(log_key(at, "x")) == at.replace(second=0)
    assert delivered_at(log_key(at, "x").replace("20261201T1320Z", "20261399T2599Z")) is None
    assert delivered_at("AWSLogs/111122223333/CloudTrail/us-east-1/2026/12/01/odd-name.json.gz") is None
    # the name says the minute only, and trailgen stamps a file with the start of its five minutes
    latest = latest_event_time(at + dt.timedelta(days=1), delivered_at(log_key(at, "x")))
    assert event_time("2026-12-01T13:25:58Z", latest) and event_time("2026-12-01T13:29:59Z", latest)
    with pytest.raises(ValueError, match="eventTime: '2026-12-01T13:30:01Z' is after 2026-12-01T13:30Z"):
        event_time("2026-12-01T13:30:01Z", latest)


def test_the_window_counts_the_record_s_own_window_whatever_came_before():
    from auditbook.monitor.cloudtrail import Windows
    rule = next(r for r in load_rules() if r.name == "UnauthorizedDataAccess")  # 5 minutes
    windows, t = Windows(), 1_800_000_000.0
    assert windows.add(rule, "k", t + 3600) == 1  # a record an hour ahead ...
    assert [windows.add(rule, "k", t + i) for i in range(3)] == [1, 2, 3]  # ... takes nothing from these
    assert windows.add(rule, "k", t + 400) == 1  # the first three have left its window: forgotten
    assert windows.times[(rule.name, "k")] == [t + 400, t + 3600]


def test_a_file_of_many_gzip_members_is_a_gap_in_linear_time(trail):
    """Inflating used to copy the rest of the body at each member: 4 MiB of empty members took minutes."""
    import time

    from auditbook.monitor.cloudtrail_records import MAX_MEMBERS, BadFile, read_log
    empty, tail = gzip.compress(b"", mtime=0), gzip.compress(b'{"Records": []}', mtime=0)
    body = empty * (4 * 2**20 // len(empty)) + tail
    t0 = time.perf_counter()
    with pytest.raises(BadFile, match=f"more than {MAX_MEMBERS} gzip members"):
        read_log(body)
    assert time.perf_counter() - t0 < 0.5
    # up to MAX_MEMBERS members are gzip as the format allows: read whole, whatever the member boundaries
    text = json.dumps({"Records": [root_call(trail["start"])] * 3}).encode()
    step = -(-len(text) // MAX_MEMBERS)
    members = [gzip.compress(text[i:i + step]) for i in range(0, len(text), step)]
    assert len(members) == MAX_MEMBERS and read_log(b"".join(members)) == json.loads(text)["Records"]
    with pytest.raises(BadFile, match="members"):
        read_log(b"".join(members) + gzip.compress(b" "))
    big = gzip.compress(b'{"Records": [' + b" " * (3 * 2**20) + b"]}")  # more than one step of input to zlib
    t0 = time.perf_counter()
    assert read_log(empty * (MAX_MEMBERS - 1) + big) == [] and time.perf_counter() - t0 < 0.5


def test_an_unchanged_unreadable_file_is_reported_from_the_store_not_fetched_again(trail, monkeypatch):
    import auditbook.monitor.cloudtrail as ct
    s3, key = trail["s3"], log_key(trail["start"], "bad")
    s3.put_object(Bucket="org-trail", Key=key, Body=gzip.compress(b"", mtime=0) * 200_000)
    fetched = []
    real = ct.fetch
    monkeypatch.setattr(ct, "fetch", lambda *a: fetched.append(a[2]) or real(*a))
    first = _run(trail).ingest["org-trail"]
    assert fetched == [key] and [(g.source, g.index) for g in first.gaps] == [(key, None)]
    again = _run(trail).ingest["org-trail"]
    assert fetched == [key] and again.files == 0 and again.skipped == 0  # not fetched, not counted as read
    assert [g.source for g in again.gaps] == [key] and "not fetched again" in again.gaps[0].reason
    assert first.gaps[0].reason in again.gaps[0].reason
    monkeypatch.setenv("AUDITBOOK_CLOUDTRAIL_MAX_MB", "512")  # a larger cap may read it: fetched again
    _run(trail)
    assert fetched == [key, key]
    s3.put_object(Bucket="org-trail", Key=key, Body=gzipped([root_call(trail["start"])]))  # replaced: a new ETag
    fixed = _run(trail).ingest["org-trail"]
    assert fetched == [key] * 3 and (fixed.files, fixed.gaps, fixed.matches) == (1, [], 1)
    assert _run(trail).ingest["org-trail"].skipped == 1 and fetched == [key] * 3


def test_a_bucket_that_cannot_be_listed_is_a_gap_and_the_other_buckets_are_read(trail):
    trail["s3"].put_object(Bucket="org-trail", Key=log_key(trail["start"], "a"), Body=gzipped([root_call(trail["start"])]))
    result = cycle(trail["engine"], lambda b: trail["s3"], ["no-such-bucket", "org-trail"])
    gone = result.ingest["no-such-bucket"]
    assert [(g.source, g.index) for g in gone.gaps] == [("no-such-bucket", None)]
    assert "NoSuchBucket" in gone.gaps[0].reason and "\n" not in gone.gaps[0].reason
    assert result.ingest["org-trail"].files == 1 and "RootAccountUsage" in firing_alerts(trail["engine"])
    assert [name for name, _why in result.unread_sources] == ["no-such-bucket"]




SECRETS = ("ecs-env-secret-1", "ghp_codebuild_secret_2", "cfn-secret-3", "ssm-case-secret-4", "string-secret-5",
           "apprunner-secret-6", "sagemaker-secret-7", "beanstalk-secret-8", "tag-secret-9")


def _name_value_secret_records(at: dt.datetime) -> list[dict]:
    def root(source, name, request):
        return trailgen.record(at, ACCOUNT, REGION, source, name, user_type="Root", user="root", request=request)
    login = root("iam.amazonaws.com", "CreateLoginProfile", {})
    login["requestParameters"] = json.dumps({"userName": "bob", "password": SECRETS[4]})
    return [
        root("ecs.amazonaws.com", "RegisterTaskDefinition", {"family": "api", "containerDefinitions": [
            {"name": "api", "image": "api:1", "environment": [{"name": "DB_PASSWORD", "value": SECRETS[0]}]}]}),
        root("codebuild.amazonaws.com", "CreateProject", {"name": "build", "environment": {"environmentVariables": [
            {"name": "GITHUB_TOKEN", "value": SECRETS[1], "type": "PLAINTEXT"}]}}),
        root("cloudformation.amazonaws.com", "CreateStack", {"stackName": "db", "parameters": [
            {"parameterKey": "DbPassword", "parameterValue": SECRETS[2]}]}),
        root("SSM.amazonaws.com", "PutParameter", {"name": "/x", "value": SECRETS[3]}),
        login,
        root("apprunner.amazonaws.com", "CreateService", {"sourceConfiguration": {"imageRepository": {
            "imageConfiguration": {"runtimeEnvironmentVariables": {"NAME": SECRETS[5]}}}}}),
        root("sagemaker.amazonaws.com", "CreateModel", {"primaryContainer": {"environment": {"API_KEY": SECRETS[6]}}}),
        root("elasticbeanstalk.amazonaws.com", "CreateEnvironment", {"optionSettings": [
            {"namespace": "aws:elasticbeanstalk:application:environment", "optionName": "SECRET", "value": SECRETS[7]}]}),
        root("ec2.amazonaws.com", "CreateTags", {"tagSet": {"items": [{"key": "api-token", "value": SECRETS[8]},
                                                                      {"key": "team", "value": "payments"}]}}),
    ]


def test_secrets_kept_as_name_value_pairs_never_reach_the_store(trail):
    from auditbook.collect.evidence import REDACTED, canonical, digest
    at = trail["start"]
    trail["s3"].put_object(Bucket="org-trail", Key=log_key(at, "s"), Body=gzipped(_name_value_secret_records(at)))
    assert _run(trail).ingest["org-trail"].matches == len(SECRETS)
    stored = {m.record["eventName"]: m.record for m in stored_matches(trail["engine"])}
    assert all(digest(canonical(r)) == m.record_sha256 for m in stored_matches(trail["engine"]) for r in [m.record])
    ecs = stored["RegisterTaskDefinition"]["requestParameters"]["containerDefinitions"][0]
    assert ecs["environment"] == [{"name": "DB_PASSWORD", "value": REDACTED}] and ecs["image"] == "api:1"
    assert stored["CreateStack"]["requestParameters"]["parameters"] == [{"parameterKey": "DbPassword",
                                                                          "parameterValue": REDACTED}]
    assert stored["CreateLoginProfile"]["requestParameters"] == REDACTED
    assert stored["CreateTags"]["requestParameters"]["tagSet"]["items"][1] == {"key": "team", "value": "payments"}
    trail["engine"].dispose()
    raw = b"".join(p.read_bytes() for p in trail["tmp"].glob("s.db*"))
    assert b"RegisterTaskDefinition" in raw and b"DB_PASSWORD" in raw
    for secret in SECRETS:
        assert secret.encode() not in raw, secret


def test_migration_0008_redacts_name_value_secrets_stored_before(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, text

    from auditbook.collect.evidence import canonical, digest
    from auditbook.store.db import alembic_config
    url = f"sqlite:///{tmp_path}/old.db"
    old = create_engine(url)
    with old.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
    at = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
    with old.begin() as conn:
        for n, record in enumerate(_name_value_secret_records(at)):
            conn.execute(text("INSERT INTO cloudtrail_matches (rule, labels_key, at, event_id, record, record_sha256) "
                              "VALUES ('RootAccountUsage', 'k', :at, :id, :record, 'x')"),
                         {"at": at, "id": f"e{n}", "record": json.dumps(record)})
    old.dispose()
    engine = open_engine(url)  # migrates to head
    rows = stored_matches(engine)
    assert len(rows) == len(SECRETS) and all(r.record_sha256 == digest(canonical(r.record)) for r in rows)
    engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("old.db*"))
    assert b"RegisterTaskDefinition" in raw and not [s for s in SECRETS if s.encode() in raw]


def test_a_rule_s_soc2_control_must_fit_its_column_and_a_check_s_criteria_are_fitted(tmp_path):
    import yaml

    from auditbook.monitor.alerts import MAX_CONTROLS, fit_controls
    path = tmp_path / "alerts.yml"
    seven = "CC6.1,CC6.2,CC6.3,CC6.6,CC6.7,CC7.1,CC7.2"
    rule = {"alert": "LongOne", "expr": 'count_over_time(events{userType="Root"}[1m]) by (account) > 0',
            "labels": {"severity": "critical", "soc2_control": seven}, "annotations": {"summary": "root used"}}
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    with pytest.raises(UserError) as info:
        load_rules(path)
    assert f"rule LongOne: labels.soc2_control: String should have at most {MAX_CONTROLS} characters" in str(info.value)
    assert MAX_CONTROLS == 40 and len(seven) == 41
    rule["labels"]["soc2_control"] = seven[:35]
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    assert load_rules(path)[0].soc2_control == seven[:35]
    # CheckRegressed takes a check's criteria from the catalog: as many whole ids as fit, all in the summary
    assert fit_controls(["CC6.1", "CC7.2"]) == ("CC6.1,CC7.2", "")
    kept, note = fit_controls(seven.split(",") + ["C1.1"])
    assert kept == "CC6.1,CC6.2,CC6.3,CC6.6,CC6.7,CC7.1" and note == f" (SOC 2 criteria: {seven.replace(',', ', ')}, C1.1)"




def test_watch_prepare_checks_every_input_before_a_cycle_and_run_cycle_reads_the_buckets(trail, tmp_path):
    """What `auditbook watch` calls: prepare() refuses a bad notify.yml, rules file or region in one
    line before anything is read; run_cycle() runs one cycle of what it prepared."""
    from auditbook.monitor.watch import prepare, run_cycle
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"], 2, 50, with_incidents=False))
    notify = tmp_path / "notify.yml"
    notify.write_text("channels:\n  - name: x\n    kind: teams\n")
    with pytest.raises(UserError, match="not a channel kind: one of email, jira, pagerduty, slack"):
        prepare(["org-trail"], notify_path=notify)
    with pytest.raises(UserError, match="--region: 'us east'"):
        prepare(["org-trail"], lookup_regions=["us east"])
    (tmp_path / "rules.yml").write_text("groups: []\n")
    with pytest.raises(UserError, match="rules.yml: groups"):
        prepare(["org-trail"], rules_path=tmp_path / "rules.yml")
    assert alerts.list_alerts(trail["engine"]) == []
    result = run_cycle(trail["engine"], prepare(["org-trail"]))
    assert result.ingest["org-trail"].files == 2 and result.ingest["org-trail"].records == 100
    assert not result.unread_sources and result.posture_gaps == []


def test_alert_documents_carry_the_cloudtrail_records_and_refuse_an_unknown_state(trail):
    """What `auditbook alerts --format json` prints, as one core function."""
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"], 2, 300, seed=2))
    _run(trail)
    docs = alerts.alert_documents(trail["engine"], ("firing",))
    root = next(d for d in docs if d["rule"] == "RootAccountUsage")
    assert root["evidence"] and all(r["userIdentity"]["type"] == "Root" for r in root["evidence"])
    assert isinstance(root["first_seen"], str) and root["state"] == "firing"
    with pytest.raises(UserError, match="--state: 'burning' is not one of pending, firing, acknowledged, resolved"):
        alerts.alert_documents(trail["engine"], ("burning",))


@pytest.mark.parametrize("source,request_parameters,secret", [
    ("events.amazonaws.com", {"rule": "r", "targets": [{"id": "1", "httpParameters": {
        "headerParameters": {"Authorization": "Bearer sk_live_123"}}}]}, "sk_live_123"),
    ("elasticmapreduce.amazonaws.com", {"configurations": [{"classification": "core-site", "properties": {
        "fs.s3a.secret.key": "wJalrXUtnFEMI/K7MDENG"}}]}, "wJalrXUtnFEMI"),
    ("firehose.amazonaws.com", {"httpEndpointDestinationConfiguration": {"endpointConfiguration": {
        "url": "https://x.example", "accessKey": "hec-0123456789"}}}, "hec-0123456789"),
    ("amplify.amazonaws.com", {"name": "a", "oauthToken": "gho_abcdef"}, "gho_abcdef"),
    ("glue.amazonaws.com", {"connectionInput": {"connectionProperties": {"dbPassword": "hunter2"}}}, "hunter2"),
])
def test_write_event_requests_redact_any_field_named_like_a_secret(source, request_parameters, secret):
    from auditbook.collect.evidence import REDACTED, redact_cloudtrail
    from auditbook.monitor.cloudtrail_changes import stored_request
    _redacted, kept = stored_request(source, request_parameters)
    assert secret not in json.dumps(kept) and REDACTED in json.dumps(kept)
    record = {"eventSource": source, "requestParameters": request_parameters}
    assert secret not in json.dumps(redact_cloudtrail(record))


def test_fields_that_only_point_at_a_secret_are_kept():
    from auditbook.collect.evidence import redact_cloudtrail
    request = {"secretId": "prod/db", "accessKeyId": "AKIAEXAMPLE", "passwordPolicy": "strict", "enableBasicAuth": True,
               "roleSessionName": "CHG-1", "groupId": "sg-1", "keyId": "k-1", "tokenValidityUnits": {"accessToken": 3}}
    kept = redact_cloudtrail({"eventSource": "x.amazonaws.com", "requestParameters": request})["requestParameters"]
    assert kept == dict(request, tokenValidityUnits={"accessToken": "***REDACTED***"})
