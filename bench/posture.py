"""Benchmark: the control room's posture page over a year of daily scans of the 10,000-resource bench
estate. Builds the estate on a local moto server (bench/scan.py), scans it for real once, then stores
364 more daily runs through the normal store path (save_run: change-based intervals, per-run criterion
counts, regression alerts), each with ~0.5 % of the findings flipping between PASS and FAIL and a few
resources changing — the churn of a real estate. Then renders the posture page (and the wall) with
Streamlit's AppTest: wall-clock per render, and the CPU time of the page script's thread per view (the
server's share of a view; bench/load.py measures the whole server process under 20 browser sessions).

    .venv/bin/python bench/posture.py [--days 365] [--db sqlite:///var/bench/history.db] [--reuse]
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from scan import ROLE, build  # noqa: E402

from auditbook.catalog.model import load_catalog  # noqa: E402
from auditbook.demo.run import MotoServer, demo_environment  # noqa: E402
from auditbook.evaluate.evaluator import summarise  # noqa: E402
from auditbook.monitor.alerts import sync_regressions  # noqa: E402
from auditbook.scan import run_scan  # noqa: E402
from auditbook.store.db import open_engine  # noqa: E402
from auditbook.store.runs import save_run  # noqa: E402
from auditbook.store.session import writing  # noqa: E402


def history(db: str, days: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    start = dt.datetime.now(dt.timezone.utc).replace(hour=6, minute=0, second=0, microsecond=0) - dt.timedelta(days=days - 1)
    regions = ["us-east-1", "eu-west-1"]
    scopes = 3 * len(regions)
    per_scope = {"sg": int(10000 * 0.60 / scopes), "vol": int(10000 * 0.30 / scopes), "key": int(10000 * 0.04 / scopes),
                 "bucket": int(10000 * 0.03 / 3), "user": int(10000 * 0.03 / 3)}
    with MotoServer(0, Path("var/bench/moto_server.log")) as srv:
        os.environ.update(demo_environment(srv.url))
        build(boto3.Session(region_name="us-east-1"), srv.url, 3, regions, per_scope)
        first = run_scan(org_role=ROLE, regions=",".join(regions), db=db, at=start)
    catalog, engine = load_catalog(), open_engine(db)
    findings = list(first.findings)
    resource_findings = [i for i, f in enumerate(findings) if f.status in ("PASS", "FAIL") and f.resource_id != "*"]
    records = first.collection.records
    timings = []
    for day in range(1, days):
        at = start + dt.timedelta(days=day)
        for i in rng.sample(resource_findings, max(1, len(resource_findings) // 200)):
            f = findings[i]
            findings[i] = dataclasses.replace(f, status="FAIL" if f.status == "PASS" else "PASS",
                                              message=f.message if f.status == "FAIL" else f"not met: {f.message}")
        for rec in rng.sample(records, 10):  # a few resources change (a tag, say) every day
            rec.data = {**rec.data, "bench_revision": day}
        t0 = time.perf_counter()
        summary = summarise(catalog, findings, set())
        with writing(engine) as session:
            run_id = save_run(session, catalog_sha256=catalog.sha256, tool_version="bench", parameters={"bench": True},
                              identities=first.accounts, collection=first.collection, findings=findings,
                              started_at=at, finished_at=at + dt.timedelta(seconds=60), summary=summary)
        sync_regressions(engine, run_id, at)
        timings.append(time.perf_counter() - t0)
        if day % 50 == 0:
            print(f"  day {day}: stored in {timings[-1]:.2f} s", flush=True)
    return {"runs": days, "resources": len(records), "findings": len(findings),
            "store_s_median": statistics.median(timings) if timings else None}


def script_cpu() -> list[float]:
    """Record the CPU time of every page script run (the thread Streamlit runs it in): what one view
    costs the server, without AppTest's own work. The list fills as pages render."""
    from streamlit.runtime.scriptrunner import script_runner
    seen: list[float] = []
    run_script = script_runner.ScriptRunner._run_script

    def measured(self, *args, **kwargs):
        t0 = time.thread_time()
        try:
            return run_script(self, *args, **kwargs)
        finally:
            seen.append(time.thread_time() - t0)
    script_runner.ScriptRunner._run_script = measured
    return seen


def render(db: str, repeat: int = 5) -> dict:
    os.environ["AUDITBOOK_DB"] = db
    os.environ["AUDITBOOK_LOCAL_ROLE"] = "viewer"
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    entry = str(ROOT / "app" / "control_room.py")
    cpu = script_cpu()

    def view(query: dict | None = None) -> float:
        t0 = time.perf_counter()
        at = AppTest.from_file(entry, default_timeout=120)
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return time.perf_counter() - t0
    out = {"first render in a fresh process (imports included)": view()}
    cold, warm, warm_cpu, wall_cpu = [], [], [], []
    for _ in range(repeat):
        st.cache_data.clear()
        cold.append(view())
        warm.append(view())
        warm_cpu.append(cpu[-1])
        view({"view": "wall"})  # the first after the caches were emptied: reads the tiles
        view({"view": "wall"})
        wall_cpu.append(cpu[-1])
    out["render, data caches empty (median)"] = statistics.median(cold)
    out["render, data cached (median)"] = statistics.median(warm)
    out["server CPU per posture view, data cached (median; target <= 0.15)"] = statistics.median(warm_cpu)
    out["server CPU per wall view (median; target <= 0.15)"] = statistics.median(wall_cpu)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--db", default="sqlite:///var/bench/history.db")
    ap.add_argument("--reuse", action="store_true", help="render only, on an existing history store")
    args = ap.parse_args()
    Path("var/bench").mkdir(parents=True, exist_ok=True)
    if not args.reuse:
        if args.db.startswith("sqlite:///"):
            Path(args.db[len("sqlite:///"):]).unlink(missing_ok=True)
        t0 = time.perf_counter()
        built = history(args.db, args.days)
        print(f"history: {built} in {time.perf_counter() - t0:.0f} s")
    if args.db.startswith("sqlite:///"):
        print(f"store size {Path(args.db[len('sqlite:///'):]).stat().st_size / 2**20:.0f} MB")
    for name, seconds in render(args.db).items():
        print(f"{name}: {seconds:.2f} s")


if __name__ == "__main__":
    main()
