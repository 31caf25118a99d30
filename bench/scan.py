"""Benchmark: build a large estate on a local moto server, scan it, report wall time, API calls,
calls per resource, the server's own calls/s, and peak RSS. Results go in docs/benchmarks.md.

    .venv/bin/python bench/scan.py [--resources 10000] [--accounts 3] [--regions us-east-1,eu-west-1]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from auditbook.demo.run import MotoServer, demo_environment  # noqa: E402
from auditbook.scan import run_scan  # noqa: E402

ROLE = "OrganizationAccountAccessRole"
# building 10,000 resources can meet moto's occasional HTTP 500 under load: retry those
BUILD_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10})


def build(session, url, accounts, regions, per_scope):
    """per_scope resources of each kind in each account/region: security groups, volumes, and a
    share of buckets / users / keys."""
    org = session.client("organizations", endpoint_url=url, config=BUILD_CONFIG)
    org.create_organization(FeatureSet="ALL")
    ids = [org.create_account(Email=f"bench{i}@example.test", AccountName=f"bench-{i}")["CreateAccountStatus"]["AccountId"]
           for i in range(accounts - 1)]
    sts = session.client("sts", endpoint_url=url, config=BUILD_CONFIG)
    sessions = [session]
    for aid in ids:
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{aid}:role/{ROLE}", RoleSessionName="bench")["Credentials"]
        sessions.append(boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                                      aws_session_token=c["SessionToken"]))
    # moto's backends are not safe for concurrent writes to one collection (two create_security_group
    # calls in one VPC can fail with "dictionary changed size"), so each collection is one serial
    # job and only different collections are built in parallel
    jobs = []
    for a, sess in enumerate(sessions):
        for region in regions:
            ec2 = sess.client("ec2", region_name=region, endpoint_url=url, config=BUILD_CONFIG)
            jobs.append([(ec2.create_security_group, dict(GroupName=f"g{a}-{i}", Description="bench"))
                         for i in range(per_scope["sg"])])
            jobs.append([(ec2.create_volume, dict(AvailabilityZone=f"{region}a", Size=1)) for i in range(per_scope["vol"])])
            kms = sess.client("kms", region_name=region, endpoint_url=url, config=BUILD_CONFIG)
            jobs.append([(kms.create_key, dict(Description=f"k{i}")) for i in range(per_scope["key"])])
        s3 = sess.client("s3", region_name="us-east-1", endpoint_url=url, config=BUILD_CONFIG)
        jobs.append([(s3.create_bucket, dict(Bucket=f"bench-{a}-{i}")) for i in range(per_scope["bucket"])])
        iam = sess.client("iam", endpoint_url=url, config=BUILD_CONFIG)
        jobs.append([(iam.create_user, dict(UserName=f"user-{i}")) for i in range(per_scope["user"])])

    def serial(calls):
        for method, kwargs in calls:
            method(**kwargs)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(serial, jobs))
    return sum(len(j) for j in jobs)


def server_rate(url, seconds=3.0):
    """The moto server's own small-call rate: sts:GetCallerIdentity from 4 threads."""
    clients = [boto3.client("sts", endpoint_url=url, config=BUILD_CONFIG) for _ in range(4)]
    count, stop = [0], time.perf_counter() + seconds

    def hammer(c):
        n = 0
        while time.perf_counter() < stop:
            c.get_caller_identity()
            n += 1
        return n
    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        count = sum(pool.map(hammer, clients))
    return count / (time.perf_counter() - t0)


def child(args):
    """The scan alone, in a fresh process: one JSON line with wall time, calls and peak RSS (also
    the RSS / peak at each phase: after collection, after evaluation, after storing)."""
    import auditbook.scan as scan_module
    phases = {}

    def status_mb(field):
        return int(open("/proc/self/status").read().split(f"{field}:")[1].split()[0]) // 1024

    def timed(name, fn):
        def wrapper(*a, **k):
            phases[f"before {name}"] = (status_mb("VmRSS"), status_mb("VmHWM"))
            out = fn(*a, **k)
            phases[f"after {name}"] = (status_mb("VmRSS"), status_mb("VmHWM"))
            return out
        return wrapper
    scan_module.evaluate = timed("evaluate", scan_module.evaluate)
    scan_module.save_run = timed("store", scan_module.save_run)
    t0 = time.perf_counter()
    result = run_scan(org_role=ROLE, regions=args.regions, db=args.db, workers=args.workers)
    wall = time.perf_counter() - t0
    phases["scan returned"] = (status_mb("VmRSS"), status_mb("VmHWM"))
    per_type: dict[str, int] = {}
    for rec in result.collection.records:
        per_type[rec.type] = per_type.get(rec.type, 0) + 1
    print(json.dumps({"wall_s": round(wall, 2), "api_calls": result.collection.calls,
                      "calls_by_operation": result.collection.calls_by_operation,
                      "resources": len(result.collection.records), "per_type": per_type,
                      "findings": len(result.findings), "gaps": len(result.collection.gaps),
                      # VmHWM, not ru_maxrss: ru_maxrss survives fork+exec, so it would report the
                      # parent's (the estate builder's) size when that was larger
                      "peak_rss_mb": status_mb("VmHWM"),
                      "rss_and_peak_mb_by_phase": phases}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--resources", type=int, default=10000)
    ap.add_argument("--accounts", type=int, default=3)
    ap.add_argument("--regions", default="us-east-1,eu-west-1")
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--db", default="sqlite:///var/bench/bench.db")
    args = ap.parse_args()
    if args.child:
        return child(args)
    regions = args.regions.split(",")
    scopes = args.accounts * len(regions)
    # mix per account and region: 60% security groups, 30% volumes, 4% keys; per account: 3% buckets, 3% users
    per_scope = {"sg": int(args.resources * 0.60 / scopes), "vol": int(args.resources * 0.30 / scopes),
                 "key": int(args.resources * 0.04 / scopes), "bucket": int(args.resources * 0.03 / args.accounts),
                 "user": int(args.resources * 0.03 / args.accounts)}
    Path("var/bench").mkdir(parents=True, exist_ok=True)
    if args.db.startswith("sqlite:///"):
        Path(args.db[len("sqlite:///"):]).unlink(missing_ok=True)
    with MotoServer(0, Path("var/bench/moto_server.log")) as srv:
        os.environ.update(demo_environment(srv.url))
        t0 = time.perf_counter()
        created = build(boto3.Session(region_name="us-east-1"), srv.url, args.accounts, regions, per_scope)
        built = time.perf_counter() - t0
        rate = server_rate(srv.url)
        # the scan runs in its own process, so its peak RSS is the scanner's alone
        proc = subprocess.run([sys.executable, __file__, "--child", "--regions", args.regions, "--db", args.db,
                                "--workers", str(args.workers)], check=True, capture_output=True, text=True)
        scan = json.loads(proc.stdout.splitlines()[-1])
    calls = scan["api_calls"]
    by_service: dict[str, int] = {}
    for op, n in scan["calls_by_operation"].items():
        by_service[op.split(":")[0]] = by_service.get(op.split(":")[0], 0) + n
    report = {
        "resources_created": created, "resources_scanned": scan["resources"],
        "accounts": args.accounts, "regions": regions, "build_s": round(built, 1),
        "scan_wall_s": scan["wall_s"], "api_calls": calls,
        "calls_per_resource": round(calls / max(1, scan["resources"]), 3),
        "server_calls_per_s": round(rate, 1), "server_bound_s": round(calls / rate, 2),
        "wall_over_server_bound": round(scan["wall_s"] / (calls / rate), 2),
        "peak_rss_mb": scan["peak_rss_mb"], "findings": scan["findings"], "gaps": scan["gaps"],
        "per_type": scan["per_type"], "calls_by_service": by_service,
        "rss_and_peak_mb_by_phase": scan["rss_and_peak_mb_by_phase"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
