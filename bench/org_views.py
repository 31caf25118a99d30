"""bench/org.py's readers of the organisation's store: the control room's posture page (rendered as
bench/posture.py renders it: Streamlit's AppTest on app/control_room.py) and the quarterly packet
(built by `auditbook packet`'s build_packet, as bench/packet.py times it), and the demo quarter's packet as bench/packet.py builds it, for comparison."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from auditbook.history.period import Period, quarter  # noqa: E402

PACKET_WORKERS = 2  # bench/packet.py's default


def posture_page(db: str, repeat: int = 3) -> dict:
    """The posture page's render times (bench/posture.py's render: a fresh process's first view, then
    with the data caches emptied and with them filled)."""
    import streamlit.logger
    from posture import render  # bench/posture.py
    streamlit.logger.set_log_level("error")  # AppTest's bare-mode warnings, one per view
    return {name: round(seconds, 3) for name, seconds in render(db, repeat=repeat).items()}


def quarter_of(day: dt.date) -> Period:
    return quarter(day.year, (day.month - 1) // 3 + 1)


def packet_build(db: str, period: Period, work: Path) -> dict:
    """The packet for the period from the store into work/packet-PERIOD, built by `auditbook packet`'s
    function as bench/packet.py times it (a fresh Ed25519 key; PACKET_WORKERS kernels): seconds, phases, size."""
    from auditbook.gc_tuning import collect_less
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.signing import Ed25519Signer, keygen
    collect_less()  # as `auditbook packet` runs it (cli.main)
    out = work / f"packet-{period.label}"
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as keys:
        keygen(f"{keys}/bench")
        result = build_packet(period=period, out=out, signer=Ed25519Signer(Path(f"{keys}/bench.key")), db=db,
                              workers=PACKET_WORKERS)
    if result.failed:
        raise RuntimeError(f"packet {period.label}: {len(result.failed)} notebooks failed, first "
                           f"{result.failed[0]['criterion']}: {result.failed[0]['error']}")
    return {"period": period.label, "wall_s": round(result.seconds, 2), "bytes": result.bytes, "files": result.files,
            "criteria": result.criteria, "runs": result.runs,
            "phases_s": {k: round(v, 2) for k, v in result.timings.items()}}


def demo_quarter_packet() -> dict:
    """The demo quarter's packet as bench/packet.py builds it (the simulated quarter of the 4-account demo
    organisation on a plain moto server), built like the organisation's."""
    import boto3

    from auditbook.demo.estate import build
    from auditbook.demo.run import MotoServer, demo_environment, simulate_period
    period = quarter(2026, 3)
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/demo.db"
        try:
            with MotoServer() as server:
                os.environ.update(demo_environment(server.url))
                ids = build(boto3.Session(region_name="us-east-1"), log=lambda m: None)
                t0 = time.perf_counter()
                simulate_period(ids, period, db, log=lambda m: None)
                simulated = time.perf_counter() - t0
        finally:
            os.environ.clear()
            os.environ.update(saved)
        return {"simulated_quarter_s": round(simulated, 1), **packet_build(db, period, Path(tmp))}
