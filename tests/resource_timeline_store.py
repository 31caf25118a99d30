"""A store with the change behind a finding, built with real scans under in-process moto, for the
resource timeline's tests of every tier (one account, us-east-1, the checks of CC6.6):

  day 1  security group `web` (HTML in its Name tag) allows tcp/443 from the world only: PASS
  day 2  port 22 opened to the world by `alex` through an assumed role (session `alex-CHG-1042`), from
         203.0.113.9 — in a CloudTrail log file that covers the whole interval: FAIL, CheckRegressed
  day 3  port 22 closed again; no CloudTrail log read for that interval (an evidence gap)

The CloudTrail files are read by `watch`'s cycle, like any bucket."""
from __future__ import annotations

import datetime as dt
import gzip
import os

import orjson

from auditbook.demo import trail as trailgen

EVIL = "<b>web</b><img src=x onerror=alert(1)>"
ACCOUNT, REGION = "123456789012", "us-east-1"  # moto's account
SSH_WORLD = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
HTTPS_WORLD = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
SESSION = "alex-CHG-1042"
ROLE_ARN = f"arn:aws:sts::{ACCOUNT}:assumed-role/ops-admin/{SESSION}"
SOURCE_IP = "203.0.113.9"
USER_AGENT = "aws-cli/2.15.0 Python/3.11 \x1b[31mred"  # the caller chose it: a terminal escape is not kept


def day(n: int) -> dt.datetime:
    today = dt.datetime.now(dt.timezone.utc).replace(hour=6, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=4 - n)


def opened_port(at: dt.datetime, group_id: str) -> dict:
    """The AuthorizeSecurityGroupIngress record of day 2, as CloudTrail writes it."""
    rec = trailgen.record(at, ACCOUNT, REGION, "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
                          request={"groupId": group_id, "ipPermissions": {"items": [
                              {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                               "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}},
                          response={"_return": True}, ip=SOURCE_IP)
    rec["userIdentity"] = {"type": "AssumedRole", "principalId": f"AROAEXAMPLE:{SESSION}", "arn": ROLE_ARN,
                           "accountId": ACCOUNT, "sessionContext": {"sessionIssuer": {
                               "type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/ops-admin"}}}
    rec["userAgent"] = USER_AGENT
    return rec


def log_files(start: dt.datetime, end: dt.datetime, extra: list[dict]) -> list[tuple[str, bytes]]:
    """Hourly log files of read traffic every 5 minutes from `start` to `end`, with `extra` records
    in the file of their hour."""
    import random
    rng, files, at = random.Random(3), [], start
    while at < end:
        hour_end = min(at + dt.timedelta(hours=1), end)
        rows = [trailgen.normal(rng, at + dt.timedelta(minutes=5 * i), ACCOUNT, REGION)
                for i in range(12) if at + dt.timedelta(minutes=5 * i) <= hour_end]
        rows += [r for r in extra if at <= trailgen_time(r) < hour_end]
        rows.sort(key=lambda r: r["eventTime"])
        stamp = hour_end.strftime("%Y%m%dT%H%MZ")
        key = (f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{at:%Y/%m/%d}/"
               f"{ACCOUNT}_CloudTrail_{REGION}_{stamp}_{rng.getrandbits(32):08x}.json.gz")
        files.append((key, gzip.compress(orjson.dumps({"Records": rows}))))
        at = hour_end
    return files


def trailgen_time(record: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(record["eventTime"].replace("Z", "+00:00"))


def build_store(db: str) -> dict:
    """The store (see the module); -> {group_id, arn, runs, event_id}."""
    from moto import mock_aws

    from tests.conftest import FAKE_ENV
    old = {k: os.environ.get(k) for k in FAKE_ENV}
    os.environ.update(FAKE_ENV)
    try:
        with mock_aws():
            return _build(db)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _build(db: str) -> dict:
    import boto3

    from auditbook.monitor.watch import cycle
    from auditbook.scan import run_scan
    from auditbook.store.db import open_engine
    s = boto3.Session(region_name=REGION)
    ec2, s3 = s.client("ec2"), s.client("s3")
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="web", Description="web servers", VpcId=vpc, TagSpecifications=[
        {"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": EVIL}]}])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=HTTPS_WORLD)
    runs = {1: run_scan(regions=REGION, db=db, criterion="CC6.6", at=day(1)).run_id}
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=SSH_WORLD)
    runs[2] = run_scan(regions=REGION, db=db, criterion="CC6.6", at=day(2)).run_id
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=SSH_WORLD)
    runs[3] = run_scan(regions=REGION, db=db, criterion="CC6.6", at=day(3)).run_id
    opened = opened_port(day(1) + dt.timedelta(hours=9, minutes=41, seconds=7), group)
    s3.create_bucket(Bucket="org-trail")
    trailgen.upload(s3, "org-trail", log_files(day(1) - dt.timedelta(minutes=30), day(2) + dt.timedelta(minutes=30),
                                               [opened]))
    engine = open_engine(db)
    result = cycle(engine, lambda _b: s3, ["org-trail"], now=day(3) + dt.timedelta(hours=1))
    assert not result.ingest["org-trail"].gaps, result.ingest["org-trail"].gaps
    arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{group}"
    return {"group_id": group, "arn": arn, "runs": runs, "event_id": opened["eventID"], "db": db}


def build_busy_store(db: str, changes: int) -> dict:
    """A security group changed between every two of `changes` + 1 daily scans (its `rev` tag), under
    in-process moto: more changes than the resource page shows at a time. -> {arn, db}."""
    from moto import mock_aws

    from tests.conftest import FAKE_ENV
    old = {k: os.environ.get(k) for k in FAKE_ENV}
    os.environ.update(FAKE_ENV)
    try:
        with mock_aws():
            import boto3

            from auditbook.scan import run_scan
            ec2 = boto3.Session(region_name=REGION).client("ec2")
            vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
            group = ec2.create_security_group(GroupName="busy", Description="busy", VpcId=vpc)["GroupId"]
            first = day(1) - dt.timedelta(days=changes)
            for n in range(changes + 1):
                ec2.create_tags(Resources=[group], Tags=[{"Key": "rev", "Value": str(n)}])
                run_scan(regions=REGION, db=db, criterion="CC6.6", at=first + dt.timedelta(days=n))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return {"arn": f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{group}", "db": db}
