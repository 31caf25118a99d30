"""Benchmark: the audit packet of the demo's simulated quarter as `make demo` builds it (61 criteria, 89
daily runs of the 4-account organisation on a local moto server, its CloudTrail read day by day and the
SIMULATED audit work: sign-offs, responses, samples): build time, size, verification time.

    .venv/bin/python bench/packet.py [--repeat 3] [--workers 2] [--by criteria|company]
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
from auditbook.demo.estate import build  # noqa: E402
from auditbook.demo.run import MotoServer, demo_environment, simulate_period  # noqa: E402
from auditbook.gc_tuning import collect_less  # noqa: E402
from auditbook.history.period import quarter  # noqa: E402
from auditbook.report.packet.build import build_packet  # noqa: E402
from auditbook.report.packet.manifest import verify_packet  # noqa: E402
from auditbook.report.packet.signing import Ed25519Signer, keygen, load_public_key  # noqa: E402


def main() -> None:
    collect_less()  # as `auditbook packet` runs it (cli.main)
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--by", choices=("criteria", "company"), default="criteria",
                        help="how the packet is organised (company: the bundled catalog's company library)")
    args = parser.parse_args()
    period = quarter(2026, 3)
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/demo.db"
        with MotoServer() as server:
            os.environ.update(demo_environment(server.url))
            ids = build(boto3.Session(region_name="us-east-1"), log=lambda m: None)
            t0 = time.perf_counter()
            done = simulate_period(ids, period, db, log=lambda m: None)  # as `make demo`: CloudTrail, audit work
            print(f"simulated quarter: {done} in {time.perf_counter() - t0:.1f} s")
        keygen(f"{tmp}/k")
        signer, public = Ed25519Signer(Path(f"{tmp}/k.key")), load_public_key(Path(f"{tmp}/k.pub"))
        builds = []
        for i in range(args.repeat):
            result = build_packet(period=period, out=Path(tmp) / f"packet-{i}", signer=signer, db=db,
                                  workers=args.workers, by=args.by)
            builds.append(result.seconds)
            phases = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
            print(f"build {i + 1}: {result.seconds:.1f} s ({phases}); {result.criteria} criteria, {result.runs} runs, "
                  f"{result.files} files, {result.bytes / 2**20:.1f} MB, failed {len(result.failed)}"
                  + (f" (first: {result.failed[0]['criterion']}: {result.failed[0]['error']})" if result.failed else ""))
        packet = Path(tmp) / "packet-0"
        sizes = {}
        for path in packet.rglob("*"):
            if path.is_file():
                top = path.relative_to(packet).parts[0]
                sizes[top] = sizes.get(top, 0) + path.stat().st_size
        print("size by part: " + ", ".join(f"{k} {v / 2**20:.1f} MB" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])))
        checks = []
        for _ in range(5):
            t0 = time.perf_counter()
            assert verify_packet(packet, public_key=public).valid
            checks.append(time.perf_counter() - t0)
        exe = Path(sys.executable).with_name("auditbook")
        cmd = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([str(exe), "verify", str(packet), "--public-key", f"{tmp}/k.pub"], check=True,
                           stdout=subprocess.DEVNULL)
            cmd.append(time.perf_counter() - t0)
        print(f"build median {statistics.median(builds):.1f} s; verify in-process median "
              f"{statistics.median(checks) * 1000:.0f} ms; `auditbook verify` command "
              f"{', '.join(f'{c:.2f}' for c in cmd)} s")


if __name__ == "__main__":
    main()
