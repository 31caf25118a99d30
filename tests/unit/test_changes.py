"""CloudTrail write events kept at ingestion for the change behind a finding: every write event that names
a resource (not only those a rule matched), under the ARNs the collectors give the resources it touched,
redacted like every stored record, each once; what each log file (and LookupEvents call) covers; hostile
write events are evidence gaps and the rest of the file is read."""
import datetime as dt
import gzip
import json

from auditbook.collect.evidence import REDACTED
from auditbook.demo import trail as trailgen
from auditbook.history.resource_timeline import coverage_gaps
from auditbook.monitor.cloudtrail_changes import change_of
from auditbook.monitor.cloudtrail_records import latest_event_time
from auditbook.monitor.watch import cycle
from auditbook.store import changes as stored
from auditbook.store.changes import resource_key
from auditbook.store.session import reading
from tests.cloudtrail_files import (
    ACCOUNT,
    PASSWORD,
    REGION,
    gzipped,
    log_key,
    secret_records,
)

SG = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0123456789abcdef0"
USER = f"arn:aws:iam::{ACCOUNT}:user/dev-console"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deploy"
LATER = dt.timedelta(days=1)


def _write(at, source, name, request=None, **kw):
    return trailgen.record(at, ACCOUNT, REGION, source, name, user="ops", request=request, **kw)


def _events(engine, arn, since=None, until=None):
    with reading(engine) as s:
        return stored.for_resources(s, [resource_key(arn)], since, until)[0]


def _coverage(engine, since, until):
    with reading(engine) as s:
        return stored.coverage(s, ACCOUNT, REGION, since, until)


def _read(trail, *files, now=None):
    for key, records in files:
        trail["s3"].put_object(Bucket="org-trail", Key=key, Body=gzipped(records))
    return cycle(trail["engine"], lambda b: trail["s3"], ["org-trail"], now=now).ingest["org-trail"]


def test_every_write_event_naming_a_resource_is_kept_under_the_collectors_arns(trail):
    at = trail["start"]
    records = [
        _write(at, "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", {"groupId": "sg-0123456789abcdef0"}),
        _write(at, "ec2.amazonaws.com", "CreateTags", {"resourcesSet": {"items": [
            {"resourceId": "vol-0aa"}, {"resourceId": "i-0bb"}, {"resourceId": "weird-1"}]}, "tagSet": {"items": [
                {"key": "change", "value": "CHG-77"}]}}),
        _write(at, "iam.amazonaws.com", "PutUserPolicy", {"userName": "dev-console", "policyName": "p"}),
        _write(at, "s3.amazonaws.com", "PutBucketPolicy", {"bucketName": "prod-data", "bucketPolicy": {"Version": "1"}}),
        _write(at, "rds.amazonaws.com", "ModifyDBInstance", {"dBInstanceIdentifier": "db1", "masterUserPassword": PASSWORD}),
        _write(at, "kms.amazonaws.com", "ScheduleKeyDeletion", {"keyId": "alias/old"},
               ) | {"resources": [{"ARN": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1", "accountId": ACCOUNT}]},
        _write(at, "config.amazonaws.com", "StopConfigurationRecorder", {"configurationRecorderName": "default"}),
        _write(at, "ec2.amazonaws.com", "DescribeSecurityGroups", {"groupId": "sg-0123456789abcdef0"}, read_only=True),
        _write(at, "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", {"groupId": "sg-0123456789abcdef0"},
               read_only=True),  # readOnly true: never a write, whatever its name
        _write(at, "signin.amazonaws.com", "ConsoleLogin"),  # a write that names no resource
        # data events change data, not the bucket or table: never a change of the resource
        _write(at, "s3.amazonaws.com", "PutObject", {"bucketName": "prod-data", "key": "a.csv"})
        | {"eventCategory": "Data", "managementEvent": False},
        _write(at, "dynamodb.amazonaws.com", "PutItem", {"tableName": "orders"}) | {"managementEvent": False},
        # a role assumed, a key used: the resource is named, not changed
        _write(at, "sts.amazonaws.com", "AssumeRole", {"roleArn": ROLE, "roleSessionName": "ci"})
        | {"resources": [{"ARN": ROLE, "type": "AWS::IAM::Role"}]},
        _write(at, "kms.amazonaws.com", "Decrypt", {"keyId": "k-2"}),
    ]
    result = _read(trail, (log_key(at, "a"), records))
    assert result.changes == 7 and result.gaps == []
    assert [e["event_name"] for e in _events(trail["engine"], SG)] == ["AuthorizeSecurityGroupIngress"]
    tags = _events(trail["engine"], f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-0aa")
    assert [e["tags"] for e in tags] == [{"change": "CHG-77"}]
    assert _events(trail["engine"], f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0bb")
    assert _events(trail["engine"], f"arn:aws:iam::{ACCOUNT}:user/team/dev-console")  # an IAM path: the same user
    assert [e["event_name"] for e in _events(trail["engine"], "arn:aws:s3:::prod-data")] == ["PutBucketPolicy"]
    assert _events(trail["engine"], f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders") == []
    assert _events(trail["engine"], ROLE) == [] and _events(trail["engine"], f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-2") == []
    db = _events(trail["engine"], f"arn:aws:rds:{REGION}:{ACCOUNT}:db:db1")
    assert db[0]["request"]["masterUserPassword"] == REDACTED
    assert _events(trail["engine"], f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k-1")
    assert _events(trail["engine"], f"{ACCOUNT}/{REGION}")[0]["event_name"] == "StopConfigurationRecorder"
    event = _events(trail["engine"], USER)[0]
    assert (event["principal"], event["principal_type"], event["source_ip"], event["user_agent"], event["error_code"]) == \
        (f"arn:aws:iam::{ACCOUNT}:user/ops", "IAMUser", "198.51.100.7", "aws-cli/2.15.0", "")
    assert event["simulated"] is True and event["source"] == f"org-trail/{log_key(at, 'a')}"


def test_secrets_in_write_events_never_reach_the_store(trail):
    at = trail["start"]
    _read(trail, (log_key(at, "s"), secret_records(at)))
    kept = _events(trail["engine"], f"arn:aws:iam::{ACCOUNT}:user/bob")
    assert kept[0]["request"]["password"] == REDACTED
    store = trail["tmp"] / "s.db"
    raw = b"".join(p.read_bytes() for p in store.parent.glob("s.db*"))
    assert PASSWORD.encode() not in raw


def test_a_write_event_read_twice_is_kept_once(trail):
    at = trail["start"]
    record = _write(at, "ec2.amazonaws.com", "RevokeSecurityGroupIngress", {"groupId": "sg-0123456789abcdef0"})
    _read(trail, (log_key(at, "a"), [record]))
    _read(trail, (log_key(at + dt.timedelta(minutes=5), "b"), [record]))  # delivered again in a later file
    assert len(_events(trail["engine"], SG)) == 1


def test_hostile_write_events_are_gaps_and_the_rest_of_the_file_is_read(trail):
    at = trail["start"]
    good = _write(at, "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", {"groupId": "sg-0123456789abcdef0"})
    agent = dict(good, eventID="agent", userAgent="curl \x1b[2J\u202e" + "x" * 5000)
    bad = [dict(good, eventID="r1", awsRegion="r" * 40), dict(good, eventID="r2", recipientAccountId=["x"]),
           dict(good, eventID="r3", sourceIPAddress="\x1b[31m1.2.3.4"), dict(good, eventID="r4", eventTime="soon"),
           dict(good, eventID="r5", errorCode="E" * 101), dict(good, eventID="r6", userIdentity={"arn": 5}),
           dict(good, eventID="r7", requestParameters={"groupId": "sg-0123456789abcdef0", "x": _nested(70)})]
    result = _read(trail, (log_key(at, "h"), [good, agent] + bad))
    reasons = {g.index: g.reason for g in result.gaps}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8], reasons
    for index, word in {2: "awsRegion", 3: "recipientAccountId", 4: "sourceIPAddress", 5: "eventTime",
                        6: "errorCode", 7: "userIdentity.arn", 8: "nested"}.items():
        assert word in reasons[index]
    kept = {e["event_id"]: e for e in _events(trail["engine"], SG)}
    assert set(kept) == {good["eventID"], "agent"}
    assert kept["agent"]["user_agent"].isprintable() and len(kept["agent"]["user_agent"]) < 2100


def _nested(depth):
    value = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


def test_each_log_file_read_records_what_it_covers(trail):
    at = trail["start"]
    a = [_write(at + dt.timedelta(minutes=m), "ec2.amazonaws.com", "DescribeVpcs", read_only=True) for m in (0, 4)]
    b = [_write(at + dt.timedelta(minutes=m), "ec2.amazonaws.com", "DescribeVpcs", read_only=True) for m in (5, 9)]
    late = [_write(at + dt.timedelta(hours=2), "ec2.amazonaws.com", "DescribeVpcs", read_only=True)]
    long_region = (log_key(at, "r").replace(f"/{REGION}/", "/" + "x" * 40 + "/"), a)  # no column holds it
    _read(trail, (log_key(at, "a"), a), (log_key(at + dt.timedelta(minutes=5), "b"), b),
          (log_key(at + dt.timedelta(hours=2), "c"), late), long_region, now=at + dt.timedelta(hours=3))
    rows = _coverage(trail["engine"], at - LATER, at + LATER)
    assert [(r["first_at"] - at, r["last_at"] - at) for r in rows] == [
        (dt.timedelta(0), dt.timedelta(minutes=4)), (dt.timedelta(minutes=5), dt.timedelta(minutes=9)),
        (dt.timedelta(hours=2), dt.timedelta(hours=2))]
    # the hour and more between the second and third files is a gap; a minute between files is not
    assert coverage_gaps(rows, at, at + dt.timedelta(hours=2)) == [(at + dt.timedelta(minutes=9), at + dt.timedelta(hours=2))]
    assert coverage_gaps(rows, at, at + dt.timedelta(minutes=9)) == []
    assert coverage_gaps([], at, at + dt.timedelta(hours=1)) == [(at, at + dt.timedelta(hours=1))]


def test_a_file_claims_at_most_a_day_and_never_times_it_does_not_believe(trail):
    at = trail["start"]
    old = _write(at - dt.timedelta(days=30), "ec2.amazonaws.com", "DescribeVpcs", read_only=True)
    now_ = _write(at, "ec2.amazonaws.com", "DescribeVpcs", read_only=True)
    future = dict(now_, eventID="f", eventTime="2999-01-01T00:00:00Z")
    _read(trail, (log_key(at, "a"), [old, now_]), (log_key(at + dt.timedelta(minutes=5), "b"), [now_, future]))
    rows = _coverage(trail["engine"], at - dt.timedelta(days=40), at + LATER)
    assert [(r["first_at"], r["last_at"]) for r in rows] == [(at - dt.timedelta(days=1), at)]  # b: a bad time, no claim


def test_lookup_events_keep_write_events_and_cover_the_time_read(tmp_path):
    import boto3
    from botocore.stub import ANY, Stubber

    from auditbook.monitor.cloudtrail_lookup import ingest_lookup
    from auditbook.monitor.rules import load_rules
    from auditbook.store.db import open_engine
    engine = open_engine(f"sqlite:///{tmp_path}/l.db")
    client = boto3.client("cloudtrail", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    rows = [_write(now - dt.timedelta(minutes=10), "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
                   {"groupId": "sg-0123456789abcdef0"}),
            _write(now - dt.timedelta(minutes=9), "ec2.amazonaws.com", "DescribeVpcs", read_only=True)]
    page = {"Events": [{"EventId": r["eventID"], "CloudTrailEvent": json.dumps(r)} for r in rows]}
    with Stubber(client) as stub:
        stub.add_response("lookup_events", page, {"StartTime": ANY, "EndTime": ANY})
        result = ingest_lookup(engine, client, load_rules(), now=now)
        stub.add_response("lookup_events", page, {"StartTime": ANY, "EndTime": ANY})  # the same events again
        ingest_lookup(engine, client, load_rules(), now=now + dt.timedelta(minutes=1))
    assert result.changes == 1 and len(_events(engine, SG)) == 1
    assert _events(engine, SG)[0]["source"] == f"lookup_events {REGION}"
    rows = _coverage(engine, now - dt.timedelta(hours=2), now + dt.timedelta(minutes=1))
    assert coverage_gaps(rows, now - dt.timedelta(hours=1), now + dt.timedelta(minutes=1)) == []
    assert coverage_gaps(rows, now - dt.timedelta(hours=2), now) == [(now - dt.timedelta(hours=2),
                                                                       now - dt.timedelta(hours=1))]


def test_resource_keys_leave_iam_paths_out_and_keep_every_other_arn():
    assert resource_key(f"arn:aws:iam::{ACCOUNT}:user/a/b/dev-console") == USER
    assert resource_key(f"arn:aws:iam::{ACCOUNT}:role/service-role/r") == f"arn:aws:iam::{ACCOUNT}:role/r"
    assert resource_key(SG) == SG and resource_key("arn:aws:s3:::a/b") == "arn:aws:s3:::a/b"


def test_a_write_event_whose_ids_are_hostile_names_no_resource():
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1)
    latest = latest_event_time(dt.datetime.now(dt.timezone.utc))
    for value in ["", "sg-\x1b[2J", "x" * 2000, 7, None, ["sg-1"], {"a": 1}]:
        rec = _write(at, "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", {"groupId": value})
        assert change_of(rec, latest, "f") is None, value


def test_the_demo_quarters_changes_are_in_its_simulated_cloudtrail_with_their_authors(trail):
    """demo/trail.py story_files: each change the demo quarter makes (demo/quarter.py storyline) is a write
    event on the resource, by its author, in log files that cover the whole day before that day's scan."""
    ids = {"prod-us-east": "111111111111", "staging": "222222222222"}
    first_day = (trail["start"] - dt.timedelta(days=100)).date()
    found = {"web_sg": "sg-0feedfacecafe0001", "prod_key": "1234abcd-12ab-34cd-56ef-1234567890ab"}
    files = list(trailgen.story_files(ids, first_day, found))
    assert len(files) == 4 * len(trailgen.STORY)
    result = _read(trail, *[(key, json.loads(gzip.decompress(body))["Records"]) for key, body in files])
    assert result.gaps == [] and result.changes == len(trailgen.STORY)
    sg = f"arn:aws:ec2:us-east-1:{ids['prod-us-east']}:security-group/{found['web_sg']}"
    with reading(trail["engine"]) as s:
        events = stored.for_resources(s, [sg], None, None)[0]
    assert [(e["event_name"], e["session_name"], e["source_ip"]) for e in events] == [
        ("AuthorizeSecurityGroupIngress", "alex@example.test", "198.51.100.23"),
        ("RevokeSecurityGroupIngress", "priya-INC-2041", "192.0.2.14")]
    assert events[0]["principal"].endswith(":assumed-role/AWSReservedSSO_Developer_5f1c/alex@example.test")
    assert all(e["simulated"] for e in events)
    scan = dt.datetime.combine(first_day + dt.timedelta(days=17), dt.time(6, 0), dt.timezone.utc)
    assert scan - dt.timedelta(days=1) < events[0]["at"] < scan
    with reading(trail["engine"]) as s:
        rows = stored.coverage(s, ids["prod-us-east"], "us-east-1", scan - 2 * LATER, scan)
    assert coverage_gaps(rows, scan - LATER, scan) == []  # the interval between the two scans is covered
    key = f"arn:aws:kms:us-east-1:{ids['prod-us-east']}:key/{found['prod_key']}"
    with reading(trail["engine"]) as s:
        rotation = stored.for_resources(s, [key], None, None)[0]
    assert [e["session_name"] for e in rotation] == ["deploy-CHG-1187", "priya-CHG-1190"]
    with reading(trail["engine"]) as s:
        assert stored.for_resources(s, ["arn:aws:s3:::prod-customer-data"], None, None)[1] == 2
        assert stored.for_resources(s, [f"arn:aws:iam::{ids['staging']}:user/dev-console"], None, None)[1] == 1


def test_the_demo_finds_the_ids_its_story_names_in_the_simulated_organisation(aws, monkeypatch):
    """storyline_files looks the web-https group and the prod-data key up through the account's role (here:
    the in-process moto account), and writes the story's files with them."""
    import auditbook.demo.quarter as quarter
    ec2, kms = aws.client("ec2"), aws.client("kms")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    web = ec2.create_security_group(GroupName="web-https", Description="web", VpcId=vpc)["GroupId"]
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/prod-data", TargetKeyId=key)
    monkeypatch.setattr(quarter, "assumed_session", lambda account: aws)
    files = trailgen.storyline_files({"prod-us-east": ACCOUNT, "staging": "222222222222"}, dt.date(2026, 1, 1))
    records = [r for _key, body in files for r in json.loads(gzip.decompress(body))["Records"] if not r["readOnly"]]
    assert [r["requestParameters"].get("groupId") or r["requestParameters"].get("keyId") for r in records
            if r["eventSource"] in ("ec2.amazonaws.com", "kms.amazonaws.com")] == [web, web, key, key]


class _DelayedTrail:
    """LookupEvents as AWS answers it: events whose eventTime is in [StartTime, EndTime] and that have
    been delivered (CloudTrail shows an event minutes after the call) by the time of the call."""

    class meta:
        region_name = REGION

    def __init__(self):
        self.events, self.now = [], None

    def get_paginator(self, _name):
        trail = self

        class Pages:
            def paginate(self, StartTime, EndTime):
                yield {"Events": [{"EventId": r["eventID"], "CloudTrailEvent": json.dumps(r)}
                                  for r, delivered in trail.events if delivered <= trail.now
                                  and StartTime <= dt.datetime.fromisoformat(r["eventTime"].replace("Z", "+00:00"))
                                  <= EndTime]}
        return Pages()


def test_lookup_events_read_again_what_cloudtrail_delivers_late_and_claim_only_the_settled_time(tmp_path):
    from auditbook.monitor.cloudtrail_lookup import LOOKUP_LAG, ingest_lookup
    from auditbook.monitor.rules import load_rules
    from auditbook.store import alerts as stored_alerts
    from auditbook.store.cloudtrail import match_counts
    from auditbook.store.db import open_engine
    engine = open_engine(f"sqlite:///{tmp_path}/l.db")
    t0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)
    trail = _DelayedTrail()
    trail.events.append((_write(t0 + dt.timedelta(minutes=1), "ec2.amazonaws.com", "CreateTags",
                                {"resourcesSet": {"items": [{"resourceId": "sg-0123456789abcdef0"}]}}),
                         t0 + dt.timedelta(minutes=2)))
    opened = _write(t0 + dt.timedelta(minutes=58), "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
                    {"groupId": "sg-0123456789abcdef0", "ipPermissions": {"items": [
                        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                         "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}})
    trail.events.append((opened, t0 + dt.timedelta(minutes=63)))  # shown 5 minutes after the call
    results = []
    for minutes in (60, 70, 80, 90):  # four watch cycles: the 12:58 call is read in the second and third
        trail.now = t0 + dt.timedelta(minutes=minutes)
        results.append(ingest_lookup(engine, trail, load_rules(), now=trail.now))
    assert [e["event_name"] for e in _events(engine, SG)] == ["CreateTags", "AuthorizeSecurityGroupIngress"]
    assert [r.changes for r in results] == [1, 1, 0, 0]  # read again, kept and counted once
    with reading(engine) as s:
        assert match_counts(s, "SecurityGroupOpenedToWorld") and sum(
            n for _k, n in match_counts(s, "SecurityGroupOpenedToWorld")) == 1
        assert len([a for a in stored_alerts.listing(s) if a["rule"] == "SecurityGroupOpenedToWorld"]) == 1
    assert [r.fired for r in results] == [0, 1, 0, 0]
    first = _coverage(engine, t0 - dt.timedelta(hours=1), t0 + dt.timedelta(hours=2))
    assert first[0]["last_at"] == t0 + dt.timedelta(minutes=60) - LOOKUP_LAG  # not the call's time
    assert max(r["last_at"] for r in first) == t0 + dt.timedelta(minutes=80) - LOOKUP_LAG  # 13:30 read no record
