"""Benchmark: the control room under load — concurrent browser sessions (analysts moving between
pages, wall screens reloading) against one server on a large store, counting session errors and the
server process's CPU time per page view.

The browsers run on the same 2 cores as the server, so wall-clock latency says little; the server's
own CPU time (user + system, psutil) divided by the page views it served is the figure to compare.

    .venv/bin/python bench/load.py [--db sqlite:///var/bench/history.db] [--sessions 20] [--walls 6]
                                   [--seconds 90]

The store: bench/posture.py builds a year of daily runs of the 10k-resource bench estate there.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import psutil
from playwright.async_api import async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from auditbook.demo.run import free_port  # noqa: E402
from auditbook.web.server import start, stop  # noqa: E402
from tests.browser import ARGS  # noqa: E402

CHROMIUM = "/usr/bin/chromium"

ANALYST_PAGES = ("", "alerts", "incidents", "evidence")  # "" is the default page (posture)
READY = "[data-testid='stMain'] h1, [data-tile]"  # a page's title, or a wall tile


def server_cpu(proc: psutil.Process) -> float:
    """CPU seconds of the server process and its children."""
    total = sum(proc.cpu_times()[:2])
    for child in proc.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


async def session(browser, base: str, open_url: str, wall: bool, until: float, tally: dict, index: int) -> None:
    """One browser session: open the printed link (the token cookie), then load pages until `until`."""
    context = await browser.new_context(viewport={"width": 1920 if wall else 1400, "height": 1080})
    page = await context.new_page()
    await page.goto(open_url)
    step = 0
    while time.monotonic() < until:
        target = f"{base}/?view=wall" if wall else f"{base}/{ANALYST_PAGES[(index + step) % len(ANALYST_PAGES)]}"
        try:
            await page.goto(target)
            await page.locator(READY).first.wait_for(timeout=60_000)
            failed = page.locator("[data-testid='stException']")
            if await failed.count():
                tally["errors"].append(f"{target}: {(await failed.first.inner_text())[:200]}")
            tally["views"] += 1
        except Exception as exc:  # noqa: BLE001 — a failed view is counted and reported, never hidden
            tally["errors"].append(f"{target}: {type(exc).__name__}: {str(exc)[:200]}")
        step += 1
        await asyncio.sleep(3 if wall else 1)  # a wall reloads every few seconds; an analyst clicks on
    await context.close()


async def drive(server, sessions: int, walls: int, seconds: float, proc: psutil.Process) -> dict:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        warm = await browser.new_page()  # the first render of each page fills the server's caches
        await warm.goto(server.url)
        for name in ANALYST_PAGES:
            await warm.goto(f"{server.base}/{name}")
            await warm.locator(READY).first.wait_for(timeout=120_000)
        await warm.close()
        tally = {"views": 0, "errors": []}
        cpu0, t0 = server_cpu(proc), time.monotonic()
        await asyncio.gather(*(session(browser, server.base, server.url, i < walls, t0 + seconds, tally, i)
                               for i in range(sessions)))
        cpu, elapsed = server_cpu(proc) - cpu0, time.monotonic() - t0
        await browser.close()
    return {"sessions": sessions, "walls": walls, "seconds": round(elapsed, 1), "page_views": tally["views"],
            "errors": len(tally["errors"]), "first_errors": tally["errors"][:5], "server_cpu_s": round(cpu, 2),
            "server_cpu_per_view_s": round(cpu / max(tally["views"], 1), 3)}


def run(db: str, sessions: int, walls: int, seconds: float) -> dict:
    server = start(db, port=free_port(), local_role="analyst", wait=120)
    try:
        return asyncio.run(drive(server, sessions, walls, seconds, psutil.Process(server.proc.pid)))
    finally:
        stop(server)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="sqlite:///var/bench/history.db")
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--walls", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=90)
    args = ap.parse_args()
    print(json.dumps(run(args.db, args.sessions, args.walls, args.seconds), indent=2))


if __name__ == "__main__":
    main()
