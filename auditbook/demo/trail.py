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


# write calls of everyday operations, none of them watched by a rule (bench/cloudtrail.py mixes a share
# of them into the normal traffic: what keeping write events for the resource timeline costs)
WRITES = [("ec2.amazonaws.com", "CreateTags", lambda r: {"resourcesSet": {"items": [
              {"resourceId": f"i-{r.getrandbits(60):015x}"}]}, "tagSet": {"items": [{"key": "env", "value": "prod"}]}}),
          ("ec2.amazonaws.com", "ModifyInstanceAttribute", lambda r: {"instanceId": f"i-{r.getrandbits(60):015x}",
                                                                      "disableApiTermination": {"value": True}}),
          ("s3.amazonaws.com", "PutBucketTagging", lambda r: {"bucketName": f"app-data-{r.randrange(50)}",
                                                              "Tagging": {"TagSet": {"Tag": {"Key": "env", "Value": "prod"}}}}),
          ("iam.amazonaws.com", "UpdateAssumeRolePolicy", lambda r: {"roleName": f"svc-{r.randrange(200)}",
                                                                     "policyDocument": "{}"}),
          ("kms.amazonaws.com", "TagResource", lambda r: {"keyId": f"k-{r.randrange(100)}",
                                                          "tags": [{"tagKey": "env", "tagValue": "prod"}]}),
          ("sts.amazonaws.com", "AssumeRole", lambda r: {"roleSessionName": "ci", "durationSeconds": 3600})]


def normal(rng: random.Random, at: dt.datetime, account: str, region: str, write_share: float = 0.0) -> dict:
    """Everyday traffic: reads, and with `write_share` > 0 that share of everyday writes."""
    if write_share and rng.random() < write_share:
        source, name, request = rng.choice(WRITES)
        return record(at, account, region, source, name, user=rng.choice(["ci-deployer", "ops-oncall"]),
                      request=request(rng))
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
          with_incidents: bool = True, write_share: float = 0.0) -> Iterator[tuple[str, bytes]]:
    """(key, gzipped body) for `count` files of `per_file` records, five minutes apart (`write_share`:
    the share of everyday writes in the normal traffic)."""
    rng = random.Random(seed)
    for i in range(count):
        at = start + dt.timedelta(minutes=5 * i)
        rows = [normal(rng, at + dt.timedelta(seconds=rng.randrange(300)), account, region, write_share)
                for _ in range(per_file)]
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


# -- the demo quarter's changes, as CloudTrail recorded them (SIMULATED) ---------------------------------
# (day of the quarter, account, event source, event name, request parameters (from the ids found), who:
# (identity type, user or role/session, source IP, user agent)); auditbook.demo.quarter.storyline makes
# these changes to the simulated estate on the same days, before that day's 06:00 scan
SSO = "AWSReservedSSO_Developer_5f1c"
STORY = [
    (17, "prod-us-east", "ec2.amazonaws.com", "AuthorizeSecurityGroupIngress",
     lambda f: {"groupId": f["web_sg"], "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                                                                     "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}},
     ("AssumedRole", f"{SSO}/alex@example.test", "198.51.100.23", "console.ec2.amazonaws.com")),
    (20, "prod-us-east", "ec2.amazonaws.com", "RevokeSecurityGroupIngress",
     lambda f: {"groupId": f["web_sg"], "ipPermissions": {"items": [{"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                                                                     "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}},
     ("AssumedRole", "ops-oncall/priya-INC-2041", "192.0.2.14", "aws-cli/2.15.0 Python/3.11.6 Linux")),
    (38, "prod-us-east", "s3.amazonaws.com", "DeleteBucketPublicAccessBlock",
     lambda f: {"bucketName": "prod-customer-data", "publicAccessBlock": "", "Host": "prod-customer-data.s3.amazonaws.com"},
     ("IAMUser", "ci-deployer", "203.0.113.40", "APN/1.0 HashiCorp/1.0 Terraform/1.7.5")),
    (45, "prod-us-east", "s3.amazonaws.com", "PutBucketPublicAccessBlock",
     lambda f: {"bucketName": "prod-customer-data", "PublicAccessBlockConfiguration": {
         "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}},
     ("AssumedRole", "ops-oncall/priya-INC-2077", "192.0.2.14", "aws-cli/2.15.0 Python/3.11.6 Linux")),
    (66, "staging", "iam.amazonaws.com", "PutUserPolicy",
     lambda f: {"userName": "dev-console", "policyName": "debug-s3"},
     ("IAMUser", "dev-console", "198.51.100.77", "console.amazonaws.com")),
    (80, "prod-us-east", "kms.amazonaws.com", "DisableKeyRotation", lambda f: {"keyId": f["prod_key"]},
     ("AssumedRole", "deploy/deploy-CHG-1187", "203.0.113.41", "Boto3/1.34.0 Python/3.11.6")),
    (84, "prod-us-east", "kms.amazonaws.com", "EnableKeyRotation", lambda f: {"keyId": f["prod_key"]},
     ("AssumedRole", "ops-oncall/priya-CHG-1190", "192.0.2.14", "aws-cli/2.15.0 Python/3.11.6 Linux")),
]


def _story_record(at: dt.datetime, account: str, region: str, source: str, name: str, request: dict, who: tuple) -> dict:
    kind, principal, ip, agent = who
    rec = record(at, account, region, source, name, request=request, user=principal, ip=ip)
    if kind == "AssumedRole":
        role, session = principal.split("/", 1)
        rec["userIdentity"] = {"type": "AssumedRole", "principalId": f"AROA{abs(hash(role)) % 10**12:012d}:{session}",
                               "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}", "accountId": account,
                               "sessionContext": {"sessionIssuer": {"type": "Role", "userName": role,
                                                                    "arn": f"arn:aws:iam::{account}:role/{role}"}}}
    rec["userAgent"] = agent
    return rec


def story_files(ids: dict, first_day: dt.date, found: dict, region: str = "us-east-1",
                seed: int = 17) -> Iterator[tuple[str, bytes]]:
    """(key, gzipped body) of the CloudTrail log files of each day of the quarter's STORY: the 24 hours
    before that day's 06:00 scan, in four files of read traffic every five minutes, the change among
    them at 17:53 the day before, the last record of its file (so the logs read cover the whole interval
    between the two scans, and the file holding the change is delivered minutes after it).
    `found`: the ids the requests name ({"web_sg": …, "prod_key": …})."""
    for _day, key, body in story_files_by_day(ids, first_day, found, region, seed):
        yield key, body


def story_files_by_day(ids: dict, first_day: dt.date, found: dict, region: str = "us-east-1",
                       seed: int = 17) -> Iterator[tuple[int, str, bytes]]:
    """story_files, each with the day of the quarter (0-based) whose scan follows it."""
    rng = random.Random(seed)
    for day, account_name, source, name, request, who in STORY:
        account, scan = ids[account_name], dt.datetime.combine(first_day + dt.timedelta(days=day), dt.time(6, 0),
                                                               dt.timezone.utc)
        change = _story_record(scan - dt.timedelta(hours=12, minutes=7), account, region, source, name,
                               request(found), who)
        start = scan - dt.timedelta(hours=24, minutes=10)
        for part in range(4):
            begin = start + dt.timedelta(hours=6 * part, minutes=5 if part else 0)
            rows = [normal(rng, begin + dt.timedelta(minutes=5 * i), account, region) for i in range(73 if part == 3 else 72)]
            rows += [change] if begin <= change_time(change) < begin + dt.timedelta(hours=6, minutes=5) else []
            rows.sort(key=lambda r: r["eventTime"])
            last = change_time(rows[-1])
            yield (day, f"AWSLogs/{account}/CloudTrail/{region}/{begin:%Y/%m/%d}/"
                        f"{account}_CloudTrail_{region}_{last:%Y%m%dT%H%MZ}_{rng.getrandbits(64):016x}.json.gz",
                   gzip.compress(orjson.dumps({"Records": rows}), 5))


def change_time(rec: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(rec["eventTime"].replace("Z", "+00:00"))


def storyline_files(ids: dict, first_day: dt.date) -> list[tuple[str, bytes]]:
    """story_files for the demo's simulated organisation (its moto server must be running)."""
    return [(key, body) for _day, key, body in storyline_files_by_day(ids, first_day)]


def storyline_files_by_day(ids: dict, first_day: dt.date) -> list[tuple[int, str, bytes]]:
    """story_files_by_day for the demo's simulated organisation (its moto server must be running): the
    web-https security group and the prod-data key are looked up through the account's role."""
    from auditbook.demo.quarter import assumed_session
    prod = assumed_session(ids["prod-us-east"])
    web = prod.client("ec2").describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["web-https"]}])["SecurityGroups"][0]["GroupId"]
    key = prod.client("kms").describe_key(KeyId="alias/prod-data")["KeyMetadata"]["KeyId"]
    return list(story_files_by_day(ids, first_day, {"web_sg": web, "prod_key": key}))
