"""Benchmark: ingest generated CloudTrail log files (the real layout and format, 5,000 records a file,
with the rules' incidents mixed in) from a bucket on a local moto server and evaluate every rule.
Reports records/s and the ingesting process's peak RSS, for two input sizes (memory must stay flat).

    .venv/bin/python bench/cloudtrail.py [--records 1000000] [--small 250000] [--write-share 0.1]

--write-share mixes that share of everyday write calls into the traffic: each is kept (with the
resources it touches) for the resource timeline, and each file read records what it covers.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from auditbook.demo import trail as trailgen  # noqa: E402
from auditbook.demo.run import MotoServer, demo_environment  # noqa: E402

PER_FILE = 5000
WORKERS = 2


def child(bucket: str, db: str, workers: str) -> None:
    import threading

    import psutil

    from auditbook.monitor.watch import cycle
    from auditbook.store.db import open_engine
    engine = open_engine(db)
    s3 = boto3.client("s3", region_name="us-east-1")
    worker_peak = [0]
    stop = threading.Event()

    def sample():  # the parse workers' RSS, summed, sampled every 0.1 s
        me = psutil.Process()
        while not stop.wait(0.1):
            total = 0
            for c in me.children(recursive=True):
                try:
                    total += c.memory_info().rss
                except psutil.Error:
                    pass
            worker_peak[0] = max(worker_peak[0], total // 2**20)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    result = cycle(engine, lambda b: s3, [bucket], parse_workers=int(workers))
    wall = time.perf_counter() - t0
    stop.set()
    r = result.ingest[bucket]
    peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024
    print(json.dumps({"records": r.records, "files": r.files, "matches": r.matches, "fired": r.fired,
                      "changes": r.changes, "gaps": len(r.gaps),
                      "wall_s": round(wall, 2), "records_per_s": round(r.records / wall), "peak_rss_mb": peak,
                      "parse_workers_peak_rss_mb_total": worker_peak[0]}))


def run(records: int, url: str, tmp: str, write_share: float = 0.0) -> dict:
    bucket = f"bench-trail-{records}"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=7)
    files = records // PER_FILE
    # incidents in one file of every 20
    for chunk in range(0, files, 20):
        trailgen.upload(s3, bucket, trailgen.files("111122223333", "us-east-1", start + dt.timedelta(minutes=5 * chunk),
                                                   min(20, files - chunk), PER_FILE, seed=chunk,
                                                   write_share=write_share))
    proc = subprocess.run([sys.executable, __file__, "--child", bucket, f"sqlite:///{tmp}/ct-{records}.db", str(WORKERS)],
                          check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=250_000)
    ap.add_argument("--workers", type=int, default=2, help="parse processes (0: parse in the ingesting process)")
    ap.add_argument("--write-share", type=float, default=0.0,
                    help="share of everyday write calls in the normal traffic (kept for the resource timeline)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    global WORKERS
    WORKERS = args.workers
    if args.child:
        return child(*args.child)
    with MotoServer() as server, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(demo_environment(server.url))
        for n in (args.small, args.records):
            print(f"{n:,} records: {run(n, server.url, tmp, args.write_share)}", flush=True)


if __name__ == "__main__":
    main()
