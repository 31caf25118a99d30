"""Benchmark (issue 16 §6): a scan's fixed cost at the small end, side by side with the strongest peer.

One moto server on 127.0.0.1, the peers note's one-account two-region estate (bench/peer_estate.py:
14 planted resources, the rest moto's defaults), then, in the same run on the same server and taking
turns (a shared machine's load then weighs on both alike):
- the whole `auditbook scan` command in a fresh process with a fresh SQLite store, --repeat times (its
  default executor: the collection in a process of its own; with --inline also `--executor inline`, the
  collection in the command's own process, after each);
- the peer (Prowler 5.46, SOC 2 framework soc2_aws, retries off: --aws-retries-max-attempts 0),
  --peer-repeat times, if --peer is installed (a note says it was skipped otherwise).
Calls are counted twice for auditbook (its own counter, printed by `scan`; and the requests moto's
log shows) and once for the peer (the requests moto's log shows). Wall and CPU time (user + system)
of each command are reported: CPU is the steadier figure on a busy machine.

    .venv/bin/python bench/fixed_cost.py [--repeat 7] [--peer /tmp/prowler-venv/bin/prowler] [--peer-repeat 5] [--inline]
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from auditbook.demo.run import MotoServer, demo_environment  # noqa: E402
from bench import peer_estate  # noqa: E402

SUMMARY = re.compile(r"(\d+) resources, (\d+) API calls")
# one werkzeug access-log line per request (an error status colours the request with ANSI codes)
REQUEST = re.compile(rb'^127\.0\.0\.1 - - \[[^]]*\] "\S*(?:GET|POST|PUT|DELETE|HEAD|PATCH) ', re.MULTILINE)


class RequestLog:
    """The moto server's access log, read between two marks: the requests a command made."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def since_mark(self) -> int:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return len(REQUEST.findall(f.read()))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], env: dict, log: RequestLog, cwd: str) -> tuple[float, float, int, str]:
    """Wall time, CPU time (user + system: steadier than wall on a shared machine), requests, stdout."""
    log.mark()
    c0, t0 = children_cpu(), time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    time.sleep(0.2)  # the server flushes its last log lines
    if done.returncode not in (0, 3):  # Prowler exits 3 when a check fails
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"{cmd[0]} exited {done.returncode}")
    return wall, cpu, log.since_mark(), done.stdout


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"


def scan_once(env, log, tmp, db: str, *options: str) -> dict:
    exe = str(Path(sys.executable).with_name("auditbook"))
    wall, cpu, requests, stdout = timed([exe, "scan", "--regions", ",".join(peer_estate.REGIONS), "--db", db, *options],
                                        env, log, tmp)
    found = SUMMARY.search(stdout)
    if not found:
        raise SystemExit(f"auditbook scan printed no summary line:\n{stdout}")
    return {"wall": wall, "cpu": cpu, "served": requests, "resources": int(found.group(1)),
            "calls": int(found.group(2))}


def peer_once(peer: str, env, log, tmp, out_dir: Path) -> dict:
    # retries off: Prowler's own option (botocore's standard mode: max_attempts counts the retries
    # after the first call) and its environment variable; moto's HTTP 500 "not implemented" answers
    # otherwise cost it 2-3x the time in back-off
    peer_env = {**{k: v for k, v in env.items() if k != "PYTHONPYCACHEPREFIX"},  # pip compiled its own
                "PROWLER_AWS_BOTO3_RETRIES_MAX_ATTEMPTS": "0"}
    cmd = [peer, "aws", "--compliance", "soc2_aws", "--region", *peer_estate.REGIONS,
           "--aws-retries-max-attempts", "0", "--output-directory", str(out_dir), "--no-banner",
           "--output-formats", "csv"]
    wall, cpu, requests, _ = timed(cmd, peer_env, log, tmp)
    return {"wall": wall, "cpu": cpu, "served": requests}


def take_turns(args, env, log, tmp) -> tuple[list[dict], list[dict], list[dict]]:
    """auditbook and the peer in turns (and, with --inline, `scan --executor inline` after each scan); a
    warm-up scan first (not counted) writes the bytecode caches, as installing the package does."""
    scan_once(env, log, tmp, f"sqlite:///{tmp}/warm-up.db")
    has_peer = bool(args.peer) and Path(args.peer).exists()
    if not has_peer:
        print(f"peer: skipped ({args.peer or 'no --peer'} is not installed)")
    ours, theirs, inline = [], [], []
    for i in range(max(args.repeat, args.peer_repeat if has_peer else 0)):
        if i < args.repeat:
            ours.append(scan_once(env, log, tmp, f"sqlite:///{tmp}/fixed-{i}.db"))  # a fresh store every run
            r = ours[-1]
            print(f"auditbook scan {i + 1}: {r['wall']:.2f} s ({r['cpu']:.2f} s CPU), {r['resources']} resources, "
                  f"{r['calls']} API calls (moto served {r['served']} requests)", flush=True)
            if args.inline:
                inline.append(scan_once(env, log, tmp, f"sqlite:///{tmp}/inline-{i}.db", "--executor", "inline"))
                print(f"auditbook scan --executor inline {i + 1}: {inline[-1]['wall']:.2f} s "
                      f"({inline[-1]['cpu']:.2f} s CPU)", flush=True)
        if has_peer and i < args.peer_repeat:
            theirs.append(peer_once(args.peer, env, log, tmp, Path(tmp) / f"peer-{i}"))
            r = theirs[-1]
            print(f"peer {i + 1}: {r['wall']:.2f} s ({r['cpu']:.2f} s CPU), moto served {r['served']} requests",
                  flush=True)
    return ours, theirs, inline


def report(ours: list[dict], theirs: list[dict], inline: list[dict]) -> None:
    median = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    calls, resources = ours[-1]["calls"], ours[-1]["resources"]
    print(f"\nauditbook scan (whole command, fresh store): {spread([r['wall'] for r in ours])}, "
          f"CPU median {median(ours, 'cpu'):.2f} s; {calls} API calls for {resources} resources "
          f"({calls / resources:.2f} calls/resource; moto served {median(ours, 'served'):.0f} requests)")
    if inline:
        print(f"auditbook scan --executor inline: {spread([r['wall'] for r in inline])}, CPU median "
              f"{median(inline, 'cpu'):.2f} s; local ÷ inline, wall {median(ours, 'wall') / median(inline, 'wall'):.2f}")
    if theirs:
        ratio, cpu_ratio = median(ours, "wall") / median(theirs, "wall"), median(ours, "cpu") / median(theirs, "cpu")
        print(f"peer: {spread([r['wall'] for r in theirs])}, CPU median {median(theirs, 'cpu'):.2f} s; "
              f"moto served {median(theirs, 'served'):.0f} requests")
        print(f"ratio auditbook/peer, wall: {ratio:.3f} (1/{1 / ratio:.1f}; target <= 1/15 = 0.067); "
              f"CPU: {cpu_ratio:.3f} (1/{1 / cpu_ratio:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="auditbook scans (median of these)")
    parser.add_argument("--peer", default="/tmp/prowler-venv/bin/prowler", help="the peer's executable")
    parser.add_argument("--peer-repeat", type=int, default=5)
    parser.add_argument("--inline", action="store_true",
                        help="also `scan --executor inline` (the collection in the command's own process) after each scan")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log_path = Path(tmp) / "moto_server.log"
        with MotoServer(log_path=log_path) as server:
            # as an installed package runs: with bytecode caches (this environment sets
            # PYTHONDONTWRITEBYTECODE, which would compile every module of ours from source each run;
            # the caches go to a folder of the bench's own, not into the working tree)
            env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                   **demo_environment(server.url), "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
            os.environ.update(demo_environment(server.url))
            planted = peer_estate.build(boto3.Session(region_name="us-east-1"))
            print(f"estate: 1 account x {len(peer_estate.REGIONS)} regions, {planted} planted resources "
                  f"on {server.url}", flush=True)
            log = RequestLog(log_path)
            ours, theirs, inline = take_turns(args, env, log, tmp)
    report(ours, theirs, inline)


if __name__ == "__main__":
    main()
