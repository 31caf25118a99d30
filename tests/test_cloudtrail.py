"""CloudTrail ingestion and the alerting rules: real log-file layout in an S3 bucket (moto), every
shipped rule fires on its incident and not on normal traffic, files are read once, a crash mid-file
leaves nothing and is re-read in full, a bad file is an evidence gap, bad rules files get one line."""
import datetime as dt
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from auditbook import alerts, trailgen
from auditbook.cloudtrail import normalise
from auditbook.errors import UserError
from auditbook.rules import load_rules
from auditbook.store.db import open_engine
from auditbook.watch import cycle

ACCOUNT, REGION = "111122223333", "us-east-1"
SHIPPED = {"UnauthorizedDataAccess", "RootAccountUsage", "ConsoleLoginWithoutMFA", "SecurityGroupOpenedToWorld",
           "CloudTrailStoppedOrChanged", "KMSKeyScheduledForDeletion", "IAMPolicyChanged",
           "EncryptionKeyRotationOverdue", "CheckRegressed"}


@pytest.fixture
def trail(aws, tmp_path):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="org-trail")
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=1)
    return {"s3": s3, "start": start, "engine": open_engine(f"sqlite:///{tmp_path}/s.db"), "tmp": tmp_path}


def _run(t, now=None):
    return cycle(t["engine"], lambda b: t["s3"], ["org-trail"], now=now)


def _firing(engine):
    return {a["rule"]: a for a in alerts.list_alerts(engine, ("firing",))}


def test_shipped_rules_load():
    assert {r.name for r in load_rules()} == SHIPPED


def test_every_event_rule_fires_on_its_incident_and_never_on_normal_traffic(trail):
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"], 6, 300, with_incidents=False))
    result = _run(trail)
    assert result.ingest["org-trail"].records == 1800 and result.ingest["org-trail"].files == 6
    assert alerts.list_alerts(trail["engine"]) == []
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"] + dt.timedelta(minutes=31),
                                                              2, 300, seed=2))
    _run(trail)
    firing = _firing(trail["engine"])
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
    assert "UnauthorizedDataAccess" not in _firing(trail["engine"])
    # the sixth arrives in a later file, inside the window: the window is remembered across cycles
    sixth = [trailgen.record(at + dt.timedelta(seconds=200), ACCOUNT, REGION, "s3.amazonaws.com", "GetObject",
                             user="probe", error="AccessDenied")]
    trail["s3"].put_object(Bucket="org-trail", Key=key.replace("_a.json", "_b.json"),
                           Body=gzip.compress(json.dumps({"Records": sixth}).encode()))
    _run(trail)
    assert _firing(trail["engine"])["UnauthorizedDataAccess"]["labels"]["principal"].endswith("user/probe")


def test_files_are_read_once_and_a_crash_mid_file_leaves_nothing(trail, monkeypatch):
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"], 4, 200))
    import auditbook.cloudtrail as ct
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
    once = _firing(trail["engine"])["UnauthorizedDataAccess"]["count"]
    third = _run(trail)
    assert third.ingest["org-trail"].files == 0 and third.ingest["org-trail"].skipped == 4
    assert _firing(trail["engine"])["UnauthorizedDataAccess"]["count"] == once == 3
    with Session(trail["engine"]) as s:
        assert s.scalar(select(func.count()).select_from(CloudTrailMatch)) == 14  # 8 denials + 6 incidents


def test_a_bad_log_file_is_an_evidence_gap_and_is_not_marked_read(trail):
    key = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/2026/11/01/{ACCOUNT}_CloudTrail_{REGION}_20261101T0000Z_x.json.gz"
    trail["s3"].put_object(Bucket="org-trail", Key=key, Body=b"not gzip at all")
    trail["s3"].put_object(Bucket="org-trail", Key="AWSLogs/unrelated/readme.txt", Body=b"ignored")
    result = _run(trail).ingest["org-trail"]
    assert result.files == 0 and [k for k, _ in result.bad_files] == [key]
    assert _run(trail).ingest["org-trail"].bad_files  # still reported next cycle: never silently skipped


def test_acknowledged_event_alert_resolves_once_quiet_unacknowledged_stays(trail):
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"], 2, 50))
    _run(trail)
    from auditbook.auth import Actor
    firing = _firing(trail["engine"])
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
    from auditbook.watch import evaluate_posture
    rules = load_rules()
    assert evaluate_posture(engine, rules, dt.datetime.now(dt.timezone.utc)) == (0, 0)  # created today
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=91)
    fired, _ = evaluate_posture(engine, rules, later)
    overdue = [a for a in alerts.list_alerts(engine, ("firing",)) if a["rule"] == "EncryptionKeyRotationOverdue"]
    assert fired == 1 and [a["labels"]["resource"].split("/")[-1] for a in overdue] == [stale]


@pytest.mark.parametrize("rule, message", [
    ({"alert": "X1x", "expr": "count_over_time(events{colour=\"red\"}[5m]) > 1",
      "labels": {"severity": "high", "soc2_control": "CC7.2"}, "annotations": {"summary": "s s s"}},
     "rule X1x: expr: field 'colour' is not one of"),
    ({"alert": "Y1y", "expr": "count_over_time(events{eventName=\"A\"}[5m]) > 1",
      "labels": {"severity": "urgent", "soc2_control": "CC7.2"}, "annotations": {"summary": "s s s"}},
     "rule Y1y: labels.severity: 'urgent' is not one of"),
    ({"alert": "Z1z", "expr": "count_over_time(events{eventName=\"A\"}[5m]) > 1",
      "labels": {"severity": "high"}, "annotations": {"summary": "s s s"}},
     "rule Z1z: labels.soc2_control: Field required"),
    ({"alert": "W1w", "expr": "rate(x[5m]) > 1", "labels": {"severity": "high", "soc2_control": "CC7.2"},
      "annotations": {"summary": "s s s"}}, "rule W1w: expr: 'rate(x[5m]) > 1' is not"),
    ({"alert": "V1v", "expr": "count_over_time(events{eventName=~\"(\"}[5m]) > 1",
      "labels": {"severity": "high", "soc2_control": "CC7.2"}, "annotations": {"summary": "s s s"}},
     "rule V1v: expr: regex '(' of eventName is invalid"),
    ({"alert": "U1u", "expr": "count_over_time(events{eventName=\"A\"}[5q]) > 1",
      "labels": {"severity": "high", "soc2_control": "CC7.2"}, "annotations": {"summary": "s s s"}},
     "rule U1u: expr: window '5q' is not a duration"),
])
def test_bad_rules_file_is_one_line_naming_rule_and_field(tmp_path, rule, message):
    import yaml
    path = tmp_path / "alerts.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [rule]}]}))
    with pytest.raises(UserError) as info:
        load_rules(path)
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)
    exe = str(Path(sys.executable).with_name("auditbook"))
    r = subprocess.run([exe, "watch", "--once", "--rules", str(path), "--db", f"sqlite:///{tmp_path}/x.db"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_alerts_command_json_carries_the_cloudtrail_records(trail):
    trailgen.upload(trail["s3"], "org-trail", trailgen.files(ACCOUNT, REGION, trail["start"], 2, 50))
    _run(trail)
    from typer.testing import CliRunner
    from auditbook.cli import app
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
    from auditbook.cloudtrail import ingest_lookup
    engine = open_engine(f"sqlite:///{tmp_path}/l.db")
    client = boto3.client("cloudtrail", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    rows = trailgen.incidents(now - dt.timedelta(minutes=10), ACCOUNT, REGION)
    with Stubber(client) as stub:
        stub.add_response("lookup_events", _lookup_page(rows[:9]), {"StartTime": ANY, "EndTime": ANY})
        result = ingest_lookup(engine, client, load_rules(), now=now)
        assert result.records == 9 and result.bad_files == []
        assert {"UnauthorizedDataAccess", "RootAccountUsage"} <= set(_firing(engine))
        # the next page overlaps the last: the root sign-in is not counted twice
        stub.add_response("lookup_events", _lookup_page(rows[8:]), {"StartTime": ANY, "EndTime": ANY})
        ingest_lookup(engine, client, load_rules(), now=now + dt.timedelta(minutes=1))
        stub.add_client_error("lookup_events", service_error_code="UnknownOperationException", http_status_code=400)
        gap = ingest_lookup(engine, client, load_rules(), now=now + dt.timedelta(minutes=2))
    firing = _firing(engine)
    assert firing["RootAccountUsage"]["count"] == 1
    assert set(firing) == SHIPPED - {"EncryptionKeyRotationOverdue", "CheckRegressed"}
    assert gap.bad_files and gap.bad_files[0][1].startswith("UnknownOperationException")


def test_posture_rule_for_keeps_it_pending_until_it_has_held(aws, tmp_path):
    import yaml
    from auditbook.scan import run_scan
    from auditbook.watch import evaluate_posture
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
