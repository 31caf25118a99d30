"""Benchmark: the quarterly and the 12-month audit packet of the year of daily scans of the 10,000-resource
bench estate (var/bench/history.db, built by bench/posture.py — never rebuilt here), measured in the same
run: build seconds (and phases), packet MB, verification seconds, and the largest criterion page (HTML
size, table rows), opened in headless Chromium (network blocked) to time its load.
The store is copied first (SQLite's backup API, WAL included) and the copy is what the packets read.
Targets (issue 14): the 12-month packet ≤ 1.5× the quarterly, ≤ 60 MB, verify ≤ 1 s, a page ≤ 2 s.

    .venv/bin/python bench/packet_scale.py [--store var/bench/history.db] [--workers 2] [--no-browser]
"""
from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from auditbook.gc_tuning import collect_less  # noqa: E402
from auditbook.history.period import parse_period  # noqa: E402
from auditbook.report.packet.build import build_packet  # noqa: E402
from auditbook.report.packet.manifest import verify_packet  # noqa: E402
from auditbook.report.packet.signing import Ed25519Signer, keygen, load_public_key  # noqa: E402


def copy_store(source: Path, target: Path) -> tuple[dt.date, dt.date]:
    """A consistent copy of the store (read-only on the original), and the days of its first and last run."""
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
        first, last = dst.execute("SELECT min(started_at), max(started_at) FROM runs").fetchone()
    return dt.date.fromisoformat(first[:10]), dt.date.fromisoformat(last[:10])


def largest_page(packet: Path) -> tuple[Path, int, int]:
    page = max((packet / "criteria").glob("*.html"), key=lambda p: p.stat().st_size)
    return page, page.stat().st_size, page.read_text().count("<tr>")


def size_by_part(packet: Path) -> str:
    """MB per top-level folder of the packet, and the data/ files by kind (population, failures, latest…)."""
    sizes: dict[str, int] = {}
    for path in packet.rglob("*"):
        if path.is_file():
            parts = path.relative_to(packet).parts
            key = parts[0]
            if key == "data" and path.name.startswith("latest-run"):
                key = "data/latest-run*-<check>.csv"
            elif key == "data":
                key = "data/*-" + path.stem.rsplit("-", 1)[-1] if "-" in path.stem else f"data/{path.name}"
            sizes[key] = sizes.get(key, 0) + path.stat().st_size
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:10]
    return ", ".join(f"{k} {v / 2**20:.1f} MB" for k, v in top)


DRAWN = ("() => [...document.querySelectorAll('script[data-figure]')]"
         ".every(s => document.getElementById(s.dataset.figure)?.querySelector('.main-svg'))")


def open_seconds(page: Path) -> tuple[float, float]:
    """Seconds for headless Chromium to load the page from disk, network blocked (its text and tables
    readable: the load event), and until every chart is drawn (the shared plotly.js loaded after it)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import launch
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            context = browser.new_context()
            context.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort())
            tab = context.new_page()
            t0 = time.perf_counter()
            tab.goto(page.as_uri(), wait_until="load")
            loaded = time.perf_counter() - t0
            tab.wait_for_function(DRAWN, timeout=30000)
            return loaded, time.perf_counter() - t0
        finally:
            browser.close()


def measure(name: str, period, db: str, out: Path, signer, public, browser: bool, workers: int) -> dict:
    result = build_packet(period=period, out=out, signer=signer, db=db, workers=workers)
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items())
    t0 = time.perf_counter()
    assert verify_packet(out, public_key=public).valid
    verify = time.perf_counter() - t0
    page, size, rows = largest_page(out)
    opened = open_seconds(page) if browser else None
    print(f"{name} {period.start}..{period.end}: build {result.seconds:.1f} s ({phases}); {result.criteria} criteria, "
          f"{result.runs} runs, {result.files} files, {result.bytes / 2**20:.1f} MB, failed {len(result.failed)}; "
          f"verify {verify:.2f} s; largest page {page.name} {size / 2**20:.2f} MB, {rows} table rows"
          + (f", opened in Chromium in {opened[0]:.2f} s (charts drawn at {opened[1]:.2f} s)"
             if opened is not None else ""), flush=True)
    print(f"  size by part: {size_by_part(out)}", flush=True)
    return {"seconds": result.seconds, "mb": result.bytes / 2**20, "verify": verify}


def main() -> None:
    collect_less()  # as `auditbook packet` runs it (cli.main)
    with tempfile.TemporaryDirectory(prefix="packet-scale-") as tmp:
        store = Path(tmp) / "history.db"
        t0 = time.perf_counter()
        first, last = copy_store(Path(ARGS.store), store)
        print(f"store copied in {time.perf_counter() - t0:.1f} s: runs {first} .. {last}", flush=True)
        db = f"sqlite:///{store}"
        keygen(f"{tmp}/k")
        signer, public = Ed25519Signer(Path(f"{tmp}/k.key")), load_public_key(Path(f"{tmp}/k.pub"))
        year = parse_period(start=max(first, last - dt.timedelta(days=364)).isoformat(), end=last.isoformat())
        quarter = parse_period(start=(last - dt.timedelta(days=91)).isoformat(), end=last.isoformat())
        q = measure("quarterly", quarter, db, Path(tmp) / "quarter", signer, public, not ARGS.no_browser, ARGS.workers)
        y = measure("12-month", year, db, Path(tmp) / "year", signer, public, not ARGS.no_browser, ARGS.workers)
        print(f"12-month / quarterly build: {y['seconds'] / q['seconds']:.2f}× (target ≤ 1.5×); 12-month packet "
              f"{y['mb']:.1f} MB (target ≤ 60); verify {y['verify']:.2f} s (target ≤ 1)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", default=str(ROOT / "var" / "bench" / "history.db"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-browser", action="store_true")
    ARGS = parser.parse_args()
    main()
