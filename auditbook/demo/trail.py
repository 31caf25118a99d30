"""Realistic CloudTrail log files for the demo, the tests and the benchmark: normal read traffic from
a few principals, plus the incidents the rules exist for (a burst of denied calls, root usage, a
console sign-in without MFA, a security group opened to the world, CloudTrail stopped, a KMS key
scheduled for deletion, an IAM policy changed). Files are gzipped `{"Records": [...]}` written where
CloudTrail writes them. SIMULATED data: every record carries `"auditbookSimulated": true`."""
from __future__ import annotations

import datetime as dt
import gzip
import random
import uuid
from typing import Iterator, Optional

import orjson

READS = [("ec2.amazonaws.com", "DescribeInstances"), ("ec2.amazonaws.com", "DescribeSecurityGroups"),
         ("s3.amazonaws.com", "ListBuckets"), ("s3.amazonaws.com", "GetBucketAcl"), ("iam.amazonaws.com", "ListUsers"),
         ("kms.amazonaws.com", "Decrypt"), ("sts.amazonaws.com", "AssumeRole"), ("logs.amazonaws.com", "PutLogEvents"),
         ("dynamodb.amazonaws.com", "GetItem"), ("cloudtrail.amazonaws.com", "LookupEvents")]


def _time(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(at: dt.datetime, account: str, region: str, source: str, name: str, *, user: Optional[str] = None,
           user_type: str = "IAMUser", error: Optional[str] = None, request: Optional[dict] = None,
           response: Optional[dict] = None, extra: Optional[dict] = None, ip: str = "198.51.100.7",
           read_only: bool = False) -> dict:
    user = user or "app-reader"
    arn = f"arn:aws:iam::{account}:root" if user_type == "Root" else f"arn:aws:iam::{account}:user/{user}"
    out = {"eventVersion": "1.09", "eventTime": _time(at), "eventSource": source, "eventName": name,
           "awsRegion": region, "sourceIPAddress": ip, "userAgent": "aws-cli/2.15.0",
           "userIdentity": {"type": user_type, "principalId": f"AIDA{abs(hash(user)) % 10**12:012d}", "arn": arn,
                            "accountId": account, **({} if user_type == "Root" else {"userName": user})},
           "requestParameters": request, "responseElements": response, "eventID": str(uuid.uuid4()),
           "readOnly": read_only, "eventType": "AwsConsoleSignIn" if name == "ConsoleLogin" else "AwsApiCall",
           "managementEvent": True, "recipientAccountId": account, "eventCategory": "Management",
           "auditbookSimulated": True}
    if error:
        out["errorCode"] = error
        out["errorMessage"] = f"User: {arn} is not authorized to perform: {source.split('.')[0]}:{name}"
    if extra:
        out["additionalEventData"] = extra
    return out


def normal(rng: random.Random, at: dt.datetime, account: str, region: str) -> dict:
    source, name = rng.choice(READS)
    return record(at, account, region, source, name, user=rng.choice(["app-reader", "ci-deployer", "ops-oncall"]),
                  read_only=True)


def incidents(at: dt.datetime, account: str, region: str) -> list[dict]:
    """One of each incident the rules catch, starting at `at` (all within a few minutes)."""
    s = dt.timedelta(seconds=1)
    burst = [record(at + 20 * i * s, account, region, "s3.amazonaws.com", "GetObject", user="intruder",
                    error="AccessDenied", ip="203.0.113.66") for i in range(8)]
    return burst + [
        record(at + 200 * s, account, region, "signin.amazonaws.com", "ConsoleLogin", user_type="Root", user="root",
               response={"ConsoleLogin": "Success"}, extra={"MFAUsed": "Yes"}),
        record(at + 210 * s, account, region, "signin.amazonaws.com", "ConsoleLogin", user="dev-console",
               response={"ConsoleLogin": "Success"}, extra={"MFAUsed": "No"}),
        record(at + 220 * s, account, region, "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", user="dev-console",
               request={"groupId": "sg-0123456789abcdef0", "ipPermissions": {"items": [
                   {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}),
        record(at + 230 * s, account, region, "cloudtrail.amazonaws.com", "StopLogging", user="dev-console",
               request={"name": f"arn:aws:cloudtrail:{region}:{account}:trail/main"}),
        record(at + 240 * s, account, region, "kms.amazonaws.com", "ScheduleKeyDeletion", user="dev-console",
               request={"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab", "pendingWindowInDays": 7}),
        record(at + 250 * s, account, region, "iam.amazonaws.com", "PutUserPolicy", user="dev-console",
               request={"userName": "dev-console", "policyName": "debug-s3"}),
    ]


def files(account: str, region: str, start: dt.datetime, count: int, per_file: int, *, seed: int = 1,
          with_incidents: bool = True) -> Iterator[tuple[str, bytes]]:
    """(key, gzipped body) for `count` files of `per_file` records, five minutes apart."""
    rng = random.Random(seed)
    for i in range(count):
        at = start + dt.timedelta(minutes=5 * i)
        rows = [normal(rng, at + dt.timedelta(seconds=rng.randrange(300)), account, region) for _ in range(per_file)]
        if with_incidents and i == count // 2:
            rows += incidents(at, account, region)
        rows.sort(key=lambda r: r["eventTime"])
        stamp = at.strftime("%Y%m%dT%H%MZ")
        key = (f"AWSLogs/{account}/CloudTrail/{region}/{at:%Y/%m/%d}/"
               f"{account}_CloudTrail_{region}_{stamp}_{rng.getrandbits(64):016x}.json.gz")
        yield key, gzip.compress(orjson.dumps({"Records": rows}), 5)


def upload(s3, bucket: str, items) -> int:
    n = 0
    for key, body in items:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        n += 1
    return n
