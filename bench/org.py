"""Benchmark (issue 16 §4): a 1,000-account organisation on one machine — scanned locally and on a Dask
LocalCluster, then with AWS-like latency; the posture page and a quarterly packet from its store.

The simulated AWS is moto's own WSGI app run by this bench in a child process (bench/org_server.py)
behind a thin middleware: it counts the requests, delays each by a delay set at run time through a
control path (/__bench/…, only without an Authorization header, so never an AWS call), and answers
sts:AssumeRole into 2 % of the accounts with AccessDenied (HTTP 403, STS's error XML). That middleware
is the issue's "delaying proxy on 127.0.0.1 in front of moto": it sits in moto's process rather than in
a second one, so the latency it adds is exactly its sleep (no second hop or HTTP parser on 2 shared
cores) and its sleeping threads leave moto's GIL free.

Steps: build N accounts (organizations create_account; a bucket, 1-2 IAM users, 1-3 security groups a
region, and some KMS keys and volumes, varied by account) in us-east-1 and eu-west-1 with no delay;
measure moto's own calls/s; scan with `auditbook scan --org` into a fresh SQLite store, locally and
with `--executor dask://…` on a LocalCluster of 2 workers (wall, calls as the server counted them and
as the run recorded them, coordinator and workers' peak RSS, denied accounts reported unreachable and
every other one read); then the same scans with the delay (80 ms), calls in flight chosen so that the
latency, not moto, is the bound; then the posture page and `auditbook packet` for the quarter of the
run, against the demo quarter's packet built in the same run.

    .venv/bin/python bench/org.py [--accounts 1000] [--workers 12] [--cluster-threads 6] [--latency-ms 80]
        [--latency-accounts N] [--skip-demo-packet SECONDS] [--skip-cluster] [--skip-local] [--skip-latency]
        [--latency-only]
Results: var/bench/org.json and var/bench/org.md (a table for docs/benchmarks.md).
"""
from __future__ import annotations

if __name__ not in ("__main__", "__mp_main__"):  # __mp_main__: a Dask worker process starting
    # Python's copy module tries `from org.python.core import PyStringMap` (for Jython) and takes an
    # ImportError as "not Jython": every script in bench/ (on its sys.path) would otherwise run this file
    raise ImportError("bench/org.py is a script, not the module org")

import argparse
import datetime as dt
import json
import os
import time
from pathlib import Path

import yaml
from org_estate import (
    ROLE,
    OrgServer,
    build,
    create_accounts,
    denied_accounts,
    moto_rate,
)
from org_report import judge, markdown
from org_scan import cluster_scan, has_executor_option, judge_reach, run_scan_command
from org_views import demo_quarter_packet, packet_build, posture_page, quarter_of

from auditbook.demo.run import demo_environment

OUT = Path("var/bench")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def in_flight_plan(rate: float, latency_s: float, cap: int) -> dict:
    """Calls in flight for the latency scans: at most half of what moto could serve at that latency (so
    the latency is the bound, not moto), the local scan's --workers, and a cluster's threads per worker
    (1 worker, then 2: in flight = workers x threads)."""
    most = max(2, min(cap, int(rate * latency_s * 0.5)))
    threads = max(1, most // 2)
    return {"local_workers": most, "cluster_threads": threads, "moto_rate": rate,
            "most_in_flight": most, "latency_rate_at_most": round(most / latency_s, 1)}


def latency_accounts_file(ids: list[str], n: int) -> Path:
    """The first n accounts (the management account first, read with the caller's credentials)."""
    path = OUT / "org-latency-accounts.yaml"
    entries = [{"id": ids[0], "name": "management"}] + [{"id": a, "role": ROLE, "name": f"org-{i}"}
                                                         for i, a in enumerate(ids[1:n], start=1)]
    path.write_text(yaml.safe_dump({"accounts": entries}))
    return path


def failed_as_value(scan) -> dict:
    """A cluster scan that fails (say, an executor still being built) is recorded as a failed measure with
    its error, so the other measures of a long run are not lost."""
    try:
        return scan()
    except RuntimeError as exc:
        say(f"FAILED: {exc}")
        return {"error": str(exc)}


def scans(srv, args, denied: list[str], with_cluster: bool) -> dict:
    out = {}
    if not args.skip_local:
        say(f"scan, local, --workers {args.workers}")
        out["local"] = run_scan_command(srv.url, srv.control, f"sqlite:///{OUT}/org-local.db", args.workers, "local", OUT)
        out["local"]["reach"] = judge_reach(out["local"], denied)
    if with_cluster:
        say(f"scan on a LocalCluster, 2 workers x {args.cluster_threads} threads")
        out["cluster"] = failed_as_value(lambda: cluster_scan(srv.url, srv.control, f"sqlite:///{OUT}/org-cluster.db",
                                                              2, args.cluster_threads, "cluster", OUT))
        if "error" not in out["cluster"]:
            out["cluster"]["reach"] = judge_reach(out["cluster"], denied)
    return out


def latency_scans(srv, args, ids: list[str], rate: float, with_cluster: bool, denied: list[str]) -> dict:
    latency_s = args.latency_ms / 1000
    plan = in_flight_plan(rate, latency_s, args.workers)
    accounts = args.latency_accounts or len(ids)
    file = latency_accounts_file(ids, accounts) if accounts < len(ids) else None
    say(f"latency {args.latency_ms} ms over {accounts} accounts; in flight: local {plan['local_workers']}, "
        f"cluster {plan['cluster_threads']} a worker; latency bound {plan['latency_rate_at_most']} calls/s "
        f"< moto's {rate:.0f} calls/s")
    srv.control.delay(args.latency_ms)
    out = {"plan": {**plan, "accounts": accounts, "latency_ms": args.latency_ms}}
    try:
        out["local"] = run_scan_command(srv.url, srv.control, f"sqlite:///{OUT}/org-lat-local.db",
                                        plan["local_workers"], "latency-local", OUT, accounts_file=file)
        out["local"]["in_flight"] = plan["local_workers"]
        if with_cluster:
            for n in (1, 2):
                say(f"latency scan on a LocalCluster, {n} worker(s) x {plan['cluster_threads']} threads")
                out[f"cluster{n}"] = failed_as_value(lambda: cluster_scan(
                    srv.url, srv.control, f"sqlite:///{OUT}/org-lat-cluster{n}.db", n, plan["cluster_threads"],
                    f"latency-cluster{n}", OUT, accounts_file=file))
                out[f"cluster{n}"]["in_flight"] = n * plan["cluster_threads"]
    finally:
        srv.control.delay(0)
    if file is None:  # every account read: the denied ones must be exactly the unreachable ones
        for run in (r for k, r in out.items() if k != "plan" and "error" not in r):
            run["reach"] = judge_reach(run, denied)
    return out


def organisation(args, result: dict) -> None:
    with OrgServer(OUT / "org_server.log") as srv:
        os.environ.update(demo_environment(srv.url))
        t0 = time.perf_counter()
        ids = create_accounts(srv.url, args.accounts)
        say(f"{len(ids)} accounts created in {time.perf_counter() - t0:.0f} s; building their resources")
        created = build(srv.url, ids)
        denied = denied_accounts(ids)
        srv.control.deny(denied)
        result["build"] = {"accounts": len(ids), "resources_created": created, "denied": denied,
                           "seconds": round(time.perf_counter() - t0, 1), "server": srv.control.stats()}
        say(f"built {created} resources in {result['build']['seconds']} s; {len(denied)} accounts deny the audit role")
        probe = next(a for a in ids[1:] if a not in denied)
        tries = [moto_rate(srv.url, probe, threads=n) for n in (4, 8)]  # moto's rate: the better of the two
        rate = {**max(tries, key=lambda t: t["calls_per_s"]), "tries": tries}
        result["moto_rate"] = rate
        say(f"moto's own rate: {rate['calls_per_s']} calls/s ({rate['threads']} client threads)")
        with_cluster = not args.skip_cluster and has_executor_option()
        if not args.skip_cluster and not with_cluster:
            result["cluster_skipped"] = "`auditbook scan` has no --executor option yet (issue 16 §1): cluster scans not run"
            say(result["cluster_skipped"])
        result["scans"] = {} if args.latency_only else scans(srv, args, denied, with_cluster)
        if not args.skip_latency:
            result["latency"] = latency_scans(srv, args, ids, rate["calls_per_s"], with_cluster, denied)


def store_name(args) -> str:
    """The scan whose store the views read: the local one, else the cluster's (--skip-local), else the
    local latency scan's (--latency-only: it reads the same organisation, only slower)."""
    return "org-lat-local" if args.latency_only else "org-cluster" if args.skip_local else "org-local"


def views(args, result: dict) -> None:
    db = args.db if args.views_only and args.db else f"sqlite:///{OUT}/{store_name(args)}.db"
    say(f"posture page from {db}")
    result["posture"] = posture_page(db)
    period = quarter_of(dt.date.today())
    say(f"packet {period.label} from the local scan's store")
    result["packet"] = packet_build(db, period, OUT)
    if args.skip_demo_packet is not None:
        result["demo_packet"] = {"wall_s": args.skip_demo_packet, "given": True}
    else:
        say("the demo quarter's packet (simulating the demo quarter first)")
        result["demo_packet"] = demo_quarter_packet()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=12, help="the local scan's --workers")
    ap.add_argument("--cluster-threads", type=int, default=6, help="threads per Dask worker (2 workers)")
    ap.add_argument("--latency-ms", type=int, default=80)
    ap.add_argument("--latency-accounts", type=int, default=None,
                    help="the latency scans read only the first N accounts (an accounts file); default all")
    ap.add_argument("--skip-demo-packet", type=float, default=None, metavar="SECONDS",
                    help="the demo quarter's packet time, known (bench/packet.py): do not build it")
    ap.add_argument("--skip-cluster", action="store_true")
    ap.add_argument("--skip-local", action="store_true",
                    help="no local scan (the views read the cluster's store); results in org-cluster-only.*")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--latency-only", action="store_true",
                    help="no scans without latency (the views read the local latency scan's store); "
                         "results in org-latency.*")
    ap.add_argument("--views-only", action="store_true",
                    help="only the posture page and the packets, from the last run's var/bench/org-local.db "
                         "(or --db: e.g. a store made larger by bench/org_inflate.py)")
    ap.add_argument("--db", default=None, help="with --views-only: the store to read")
    args = ap.parse_args()
    if args.skip_local and (args.skip_cluster or args.views_only):
        ap.error("--skip-local: the cluster scan is then the only scan (not with --skip-cluster or --views-only)")
    if args.latency_only and (args.skip_latency or args.skip_local or args.views_only):
        ap.error("--latency-only: not with --skip-latency, --skip-local or --views-only")
    if args.accounts < 2:
        ap.error("--accounts: at least 2 (the management account and one member)")
    OUT.mkdir(parents=True, exist_ok=True)
    result: dict = {"started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "arguments": vars(args), "load_average": os.getloadavg()}
    t0 = time.perf_counter()
    if args.views_only:
        result.update({k: v for k, v in json.loads((OUT / "org.json").read_text()).items()
                       if k in ("build", "moto_rate", "scans", "latency", "cluster_skipped")})
    else:
        organisation(args, result)
    views(args, result)
    result["total_s"] = round(time.perf_counter() - t0, 1)
    result["verdicts"] = judge(result)
    # a views-only or cluster-only run never replaces the full run's results
    name = ("org-views" if args.views_only else "org-cluster-only" if args.skip_local
            else "org-latency" if args.latency_only else "org")
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    (OUT / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
    say(f"results: {OUT / name}.json, {OUT / name}.md")


if __name__ == "__main__":
    main()
