"""Benchmark: the demo-size estate (`make demo`'s organisation) on a local moto server; scans it
several times in one process and reports wall time, CPU time and API calls per scan.

    .venv/bin/python bench/demo_scan.py [--repeat 5] [--profile out.prof]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from auditbook.demo.estate import REGIONS, ROLE, build  # noqa: E402
from auditbook.demo.run import MotoServer, demo_environment  # noqa: E402
from auditbook.scan import run_scan  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of the last scan here")
    args = parser.parse_args()
    with MotoServer() as server, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(demo_environment(server.url))
        build(boto3.Session(region_name="us-east-1"), log=lambda m: None)
        walls, cpus = [], []
        for i in range(args.repeat):
            db = f"sqlite:///{tmp}/bench-{i}.db"
            profiler = None
            if args.profile and i == args.repeat - 1:
                import cProfile
                profiler = cProfile.Profile()
                profiler.enable()
            c0, t0 = time.process_time(), time.perf_counter()
            result = run_scan(org_role=ROLE, regions=",".join(REGIONS), db=db)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.profile)
            print(f"scan {i + 1}: {walls[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU, "
                  f"{len(result.collection.records)} resources, {result.collection.calls} API calls, "
                  f"{len(result.findings)} findings, {len(result.collection.gaps)} gaps")
        print(f"median {statistics.median(walls):.2f} s wall (first {walls[0]:.2f} s), "
              f"median CPU {statistics.median(cpus):.2f} s")
        exe = Path(sys.executable).with_name("auditbook")
        cli = []
        for i in range(4):  # the whole command in a fresh process: interpreter, imports, scan, store
            # (the first creates the store; the others add a run to it, as daily scans do)
            t0 = time.perf_counter()
            subprocess.run([str(exe), "scan", "--org", ROLE, "--regions", ",".join(REGIONS),
                            "--db", f"sqlite:///{tmp}/cli.db"], check=True, stdout=subprocess.DEVNULL)
            cli.append(time.perf_counter() - t0)
        print(f"`auditbook scan` as a command: {', '.join(f'{c:.2f}' for c in cli)} s wall")


if __name__ == "__main__":
    main()
