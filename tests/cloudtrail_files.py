"""CloudTrail log files for the tests of every tier: keys as CloudTrail names them, gzipped record
files, a root call, a file of hostile records, records carrying secrets, and what the store holds after
ingestion (the `trail` fixture of tests/conftest.py is the bucket they go into)."""
from __future__ import annotations

import datetime as dt
import gzip
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook.demo import trail as trailgen
from auditbook.monitor import alerts
from auditbook.monitor.watch import cycle
from auditbook.store.models import CloudTrailMatch, CloudTrailObject

ACCOUNT, REGION = "111122223333", "us-east-1"
PASSWORD, PARAMETER = "Pw-0f-the-n3w-l0gin!", "ssm-SecureString-v4lue-77"


def log_key(at: dt.datetime, tag: str) -> str:
    return (f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{at:%Y/%m/%d}/"
            f"{ACCOUNT}_CloudTrail_{REGION}_{at:%Y%m%dT%H%MZ}_{tag}.json.gz")


def gzipped(records) -> bytes:
    return gzip.compress(json.dumps({"Records": records}).encode())


def root_call(at: dt.datetime, name: str = "ListUsers", **kw) -> dict:
    return trailgen.record(at, ACCOUNT, REGION, "iam.amazonaws.com", name, user_type="Root", user="root", **kw)


def hostile_records(at: dt.datetime) -> tuple[list, dict]:
    """A file's records: one good root call (index 5) among records of every wrong shape. -> (records, the
    indices that must be gaps with a word their reason names)."""
    good = root_call(at)
    bad = lambda **kw: {**root_call(at), **kw}  # noqa: E731
    no_time = root_call(at)
    del no_time["eventTime"]
    no_id_1, no_id_2 = root_call(at), root_call(at)
    del no_id_1["eventID"], no_id_2["eventID"]
    records = [1, "x", None, [], no_time, good,
               bad(eventTime=None), bad(eventTime=12345), bad(eventTime="garbage"), bad(eventTime="2026-02-30T00:00:00Z"),
               bad(eventTime="2026-01-01T00:00:00"), bad(eventTime="2999-01-01T00:00:00Z"),
               bad(eventName=["ListUsers"]), bad(errorCode={"code": "AccessDenied"}), bad(userIdentity=["Root"]),
               bad(userIdentity={"type": "Root", "arn": 7}), no_id_1, no_id_2, bad(eventID="e" * 101),
               bad(userIdentity={"type": "Root", "arn": "arn:aws:iam::1:root\x1b[2J"}),
               bad(requestParameters=_nested(200))]
    expect = {0: "object", 1: "object", 2: "object", 3: "object", 4: "eventTime", 6: "eventTime", 7: "eventTime",
              8: "eventTime", 9: "eventTime", 10: "eventTime", 11: "eventTime", 12: "eventName", 13: "errorCode",
              14: "userIdentity", 15: "userIdentity.arn", 16: "eventID", 17: "eventID", 18: "eventID",
              19: "userIdentity.arn", 20: "nested"}
    return records, expect


def _nested(depth: int):
    value: object = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


def secret_records(at: dt.datetime) -> list[dict]:
    return [root_call(at, "CreateLoginProfile", request={"userName": "bob", "password": PASSWORD,
                                                          "passwordResetRequired": True}),
            trailgen.record(at + dt.timedelta(seconds=1), ACCOUNT, REGION, "ssm.amazonaws.com", "PutParameter",
                            user_type="Root", user="root",
                            request={"name": "/prod/db", "type": "SecureString", "value": PARAMETER, "overwrite": True})]


def read_a_hostile_file_between_two_good_ones(trail, parse_workers: int) -> None:
    """Three files, the middle one of hostile records (parsed in `parse_workers` processes, 0: in this
    one): each bad record is a gap naming its reason, the rest of the file and every later file are read,
    and the next cycle goes on with the next file. Asserts; tests of two tiers call it."""
    at = trail["start"]
    records, expect = hostile_records(at + dt.timedelta(minutes=5))
    s3 = trail["s3"]
    s3.put_object(Bucket="org-trail", Key=log_key(at, "a"), Body=gzipped([root_call(at)]))
    hostile = log_key(at + dt.timedelta(minutes=5), "b")
    s3.put_object(Bucket="org-trail", Key=hostile, Body=gzipped(records))
    s3.put_object(Bucket="org-trail", Key=log_key(at + dt.timedelta(minutes=10), "c"),
                  Body=gzipped([root_call(at + dt.timedelta(minutes=10))]))
    result = cycle(trail["engine"], lambda b: s3, ["org-trail"], parse_workers=parse_workers).ingest["org-trail"]
    assert result.files == 3 and result.records == 2 + len(records)
    gaps = {g.index: g.reason for g in result.gaps}
    assert all(g.source == hostile for g in result.gaps) and sorted(gaps) == sorted(expect)
    for index, word in expect.items():
        assert word in gaps[index], (index, gaps[index])
        assert "\n" not in gaps[index] and "\x1b" not in gaps[index] and len(gaps[index]) < 300
    assert [m.event_id for m in stored_matches(trail["engine"])].count(records[5]["eventID"]) == 1
    assert len(stored_matches(trail["engine"])) == 3  # a, the good record of b, c
    assert firing_alerts(trail["engine"])["RootAccountUsage"]["count"] == 3
    # the file is read: its gaps are kept with it, and the next cycle goes on with the next file
    with Session(trail["engine"]) as s:
        kept = s.scalar(select(CloudTrailObject.gaps).where(CloudTrailObject.key == hostile))
    assert sorted(g["index"] for g in kept) == sorted(expect)
    s3.put_object(Bucket="org-trail", Key=log_key(at + dt.timedelta(minutes=15), "d"),
                  Body=gzipped([root_call(at + dt.timedelta(minutes=15))]))
    again = cycle(trail["engine"], lambda b: s3, ["org-trail"]).ingest["org-trail"]
    assert (again.files, again.skipped, again.gaps) == (1, 3, [])
    assert firing_alerts(trail["engine"])["RootAccountUsage"]["count"] == 4


def firing_alerts(engine) -> dict:
    """The firing alerts by rule name."""
    return {a["rule"]: a for a in alerts.list_alerts(engine, ("firing",))}


def stored_matches(engine) -> list:
    """The stored CloudTrail matches (ORM rows: the tests read what was written)."""
    with Session(engine) as s:
        return list(s.scalars(select(CloudTrailMatch).order_by(CloudTrailMatch.id)))
