"""bench/org.py's organisation: the server process (bench/org_server.py), building N small accounts in two
regions, and moto's own call rate on this machine."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from org_server import BenchControl  # noqa: E402

from auditbook.demo.run import DEMO_ENV  # noqa: E402
from auditbook.web.server import stop_group  # noqa: E402

ROLE = "OrganizationAccountAccessRole"
REGIONS = ("us-east-1", "eu-west-1")
# moto can answer HTTP 500 now and then under load while building: retry those
BUILD_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10})


class OrgServer:
    """bench/org_server.py as a child process in its own process group; `control` talks to its middleware."""

    def __init__(self, log_path: Path):
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None
        self.url = ""

    def __enter__(self) -> "OrgServer":
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("org_server.py"))],
                                     stdout=subprocess.PIPE, stderr=log, env={**os.environ, **DEMO_ENV},
                                     start_new_session=True)
        line = self.proc.stdout.readline().decode().split()  # "port N" once it listens
        if len(line) != 2 or line[0] != "port":
            self.__exit__()
            raise RuntimeError(f"bench/org_server.py did not start (see {self.log_path})")
        self.url = f"http://127.0.0.1:{int(line[1])}"
        self.control = BenchControl(self.url)
        self.control.stats()
        return self

    def __exit__(self, *exc) -> None:
        if self.proc:
            stop_group(self.proc, grace=5)
            self.proc = None


def create_accounts(url: str, accounts: int) -> list[str]:
    """The organisation: the management account (the caller) and accounts - 1 members. Ids, management first."""
    session = boto3.Session(region_name="us-east-1")
    org = session.client("organizations", endpoint_url=url, config=BUILD_CONFIG)
    org.create_organization(FeatureSet="ALL")
    me = session.client("sts", endpoint_url=url, config=BUILD_CONFIG).get_caller_identity()["Account"]
    members = [org.create_account(Email=f"org{i}@example.test", AccountName=f"org-{i}")["CreateAccountStatus"]["AccountId"]
               for i in range(1, accounts)]
    return [me, *members]


def account_calls(i: int) -> list[tuple[str, str, str, dict]]:
    """What account number i holds — a few resources, varied with i: (service, region, method, kwargs)."""
    calls = [("s3", "us-east-1", "create_bucket", {"Bucket": f"org-{i}-logs"}),
             ("iam", "us-east-1", "create_user", {"UserName": f"deploy-{i}"})]
    if i % 2:
        calls.append(("iam", "us-east-1", "create_user", {"UserName": f"ops-{i}"}))
    if i % 3 == 0:
        calls.append(("s3", "eu-west-1", "create_bucket", {"Bucket": f"org-{i}-eu",
                      "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}}))
    for r, region in enumerate(REGIONS):
        for g in range(1 + (i + r) % 3):
            calls.append(("ec2", region, "create_security_group", {"GroupName": f"app-{g}", "Description": "bench"}))
        if (i + r) % 4 == 0:
            calls.append(("kms", region, "create_key", {"Description": f"org-{i}"}))
        if (i + r) % 5 == 0:
            calls.append(("ec2", region, "create_volume", {"AvailabilityZone": f"{region}a", "Size": 1}))
    return calls


def build(url: str, ids: list[str], threads: int = 8) -> int:
    """Every account's resources (each account serially — moto's collections are not safe for concurrent
    writes — and accounts in parallel). The number of resources created."""
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=url, config=BUILD_CONFIG)

    def one(indexed):
        i, account = indexed
        session = boto3.Session(region_name="us-east-1")
        if i:
            c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="build")["Credentials"]
            session = boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                                    aws_session_token=c["SessionToken"], region_name="us-east-1")
        clients = {}
        calls = account_calls(i)
        for service, region, method, kwargs in calls:
            key = (service, region)
            if key not in clients:
                clients[key] = session.client(service, region_name=region, endpoint_url=url, config=BUILD_CONFIG)
            getattr(clients[key], method)(**kwargs)
        return len(calls)
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(one, enumerate(ids)))


def denied_accounts(ids: list[str], share: float = 0.02) -> list[str]:
    """share of the member accounts (never the management account, which is read with the caller's own
    credentials), spread evenly; at least one."""
    members = ids[1:]
    n = max(1, round(len(ids) * share))
    step = max(1, len(members) // n)
    return [members[k * step + step // 2] for k in range(n)]


def moto_rate(url: str, account: str, seconds: float = 6.0, threads: int = 4) -> dict:
    """moto's own calls/s on this machine (through the middleware, delay 0): a scan's mix of cheap list /
    describe calls on one small account, from `threads` client threads."""
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=url, config=BUILD_CONFIG)
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="rate")["Credentials"]
    session = boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                            aws_session_token=c["SessionToken"])
    mix = [("ec2", "describe_security_groups"), ("s3", "list_buckets"), ("iam", "list_users"),
           ("kms", "list_keys"), ("ec2", "describe_volumes"), ("sts", "get_caller_identity")]
    # clients made first (loading service models is not what is measured), one set per thread
    sets = [[(session.client(s, region_name=REGIONS[k % 2], endpoint_url=url, config=BUILD_CONFIG), m) for s, m in mix]
            for k in range(threads)]
    stop = time.perf_counter() + seconds

    def hammer(clients):
        n = 0
        while time.perf_counter() < stop:
            client, method = clients[n % len(clients)]
            getattr(client, method)()
            n += 1
        return n
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        count = sum(pool.map(hammer, sets))
    elapsed = time.perf_counter() - t0
    return {"calls": count, "seconds": round(elapsed, 2), "calls_per_s": round(count / elapsed, 1),
            "threads": threads, "mix": [f"{s}:{m}" for s, m in mix]}
