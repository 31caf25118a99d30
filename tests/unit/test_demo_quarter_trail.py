"""The demo quarter's CloudTrail and alerts land in the period (issue 14: the change population of the
demo quarter was empty and its alerts fired when the packet was built): each story day's log files are
read on the simulated clock, so the change is kept at its own time, with its author and ticket, and the
alert it raises fired minutes after CloudTrail delivered it — in the period. In-process moto."""
import datetime as dt
import gzip
import json

import pytest

from auditbook.demo import trail as trailgen
from auditbook.demo.clock import alert_clock
from auditbook.history.period import quarter
from auditbook.history.populations import population
from auditbook.monitor import alerts
from auditbook.monitor.cloudtrail_records import delivered_at
from auditbook.store import alerts as stored_alerts
from auditbook.store.session import writing

Q = quarter(2026, 3)
IDS = {"master": "123456789012", "audit-logs": "222222222222", "prod-us-east": "333333333333",
       "staging": "444444444444"}


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_the_alert_clock_stamps_an_alert_with_the_simulated_moment_and_is_restored(tmp_path):
    from auditbook.store.db import open_engine
    engine = open_engine(f"sqlite:///{tmp_path}/c.db")
    moment = dt.datetime(2026, 7, 18, 6, 0, tzinfo=dt.timezone.utc)
    real = stored_alerts.now
    with alert_clock(moment), writing(engine) as session:
        fired = alerts.fire(session, rule="CheckRegressed", labels={"check": "x"}, severity="high",
                            soc2_control="CC7.2", summary="s", at=moment)
    assert moment <= alerts.get(engine, fired["id"])["fired_at"] < moment + dt.timedelta(seconds=5)
    assert stored_alerts.now is real and abs(real() - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(seconds=5)
    with pytest.raises(RuntimeError), alert_clock(moment):
        raise RuntimeError("a failed simulated day")
    assert stored_alerts.now is real  # restored however the block is left


def test_each_story_change_is_the_last_record_of_its_file_so_it_is_delivered_minutes_after():
    found = {"web_sg": "sg-0feedfacecafe0001", "prod_key": "1234abcd-12ab-34cd-56ef-1234567890ab"}
    files = list(trailgen.story_files_by_day(IDS, Q.start, found))
    assert [k for _d, k, _b in files] == [k for k, _b in trailgen.story_files(IDS, Q.start, found)]  # one story
    assert sorted({d for d, _k, _b in files}) == sorted(day for day, *_ in trailgen.STORY)
    for day in {d for d, _k, _b in files}:
        scan = dt.datetime.combine(Q.start + dt.timedelta(days=day), dt.time(6, 0), dt.timezone.utc)
        holding = [(k, json.loads(gzip.decompress(b))["Records"]) for d, k, b in files
                   if d == day and any(not r["readOnly"] for r in json.loads(gzip.decompress(b))["Records"])]
        assert len(holding) == 1
        key, records = holding[0]
        change = records[-1]
        assert not change["readOnly"] and trailgen.change_time(change) == delivered_at(key)
        assert scan - dt.timedelta(days=1) < delivered_at(key) < scan


@pytest.fixture
def organisation(aws):
    """The accounts' story resources the trail names (web-https, alias/prod-data) in prod-us-east."""
    from auditbook.demo.quarter import assumed_session
    prod = assumed_session(IDS["prod-us-east"])
    ec2 = prod.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    web = ec2.create_security_group(GroupName="web-https", Description="web", VpcId=vpc)["GroupId"]
    kms = prod.client("kms")
    kms.create_alias(AliasName="alias/prod-data", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    return {"web_sg": web}


def test_a_story_day_is_read_in_the_period_with_its_author_ticket_and_alert(organisation, tmp_path):
    from auditbook.catalog.model import load_catalog
    from auditbook.demo.quarter_trail import (
        DEMO_TRAIL_BUCKET,
        QuarterTrail,
        trail_bucket,
    )
    from auditbook.store.db import open_engine
    engine = open_engine(f"sqlite:///{tmp_path}/t.db")
    trail = QuarterTrail(IDS, Q.start, engine)
    for day in (17, 20):  # the security group opened (an SSO user, no ticket), then closed (INC-2041)
        trail.read_day(day)
    assert (trail.files, trail.changes) == (8, 2)
    assert trail_bucket(IDS).get_bucket_versioning(Bucket=DEMO_TRAIL_BUCKET)["Status"] == "Enabled"  # made once
    changes = population(engine, load_catalog(), "changes", Q)
    rows = sorted(changes.rows, key=lambda r: r["at"])
    assert [(r["at"], r["event_name"], r["session_name"], r["ticket"], r["linked"]) for r in rows] == [
        ("2026-07-17T17:53:00+00:00", "AuthorizeSecurityGroupIngress", "alex@example.test", "", "false"),
        ("2026-07-20T17:53:00+00:00", "RevokeSecurityGroupIngress", "priya-INC-2041", "INC-2041", "true")]
    assert all(organisation["web_sg"] in r["resources"] for r in rows)
    opened = next(a for a in alerts.list_alerts(engine) if a["rule"] == "SecurityGroupOpenedToWorld")
    assert opened["first_seen"] == _at("2026-07-17T17:53:00+00:00")
    fired = _at("2026-07-17T17:58:00+00:00")  # five minutes after the file holding it was delivered
    assert fired <= opened["fired_at"] < fired + dt.timedelta(minutes=1)
    in_period = population(engine, load_catalog(), "alerts", Q)
    row = next(r for r in in_period.rows if r["rule"] == "SecurityGroupOpenedToWorld")
    assert row["fired_at"].startswith("2026-07-17T17:58")
