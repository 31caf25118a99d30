"""Re-take the screenshots in docs/img from a store (default: the demo's), with the control room on
127.0.0.1 and Debian's chromium; the wall at 1920×1080, as a security room's screen shows it:

    .venv/bin/python docs/screenshots.py [--db sqlite:///var/demo/auditbook.db] [--sample]

--sample: take both from the sample store of the wall's tests (tests/wall_store.py: three daily runs, a
critical alert not yet acknowledged, a breached incident SLA, more alerts than fit), built in a
temporary folder and labelled SIMULATED, instead of from --db (what docs/img holds now).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from auditbook.demo.run import free_port  # noqa: E402
from auditbook.store.sqlite_urls import absolute_url  # noqa: E402
from auditbook.web.server import start, stop  # noqa: E402

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def shoot(db: str, posture: bool, wall: bool) -> None:
    from playwright.sync_api import sync_playwright
    server = start(absolute_url(db), port=free_port(), local_role="viewer")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=ARGS)
            context = browser.new_context(viewport={"width": 1440, "height": 1300})
            page = context.new_page()
            page.goto(server.url)  # the link `auditbook app` prints: its token becomes a cookie
            if posture:
                page.locator(".js-plotly-plot").first.wait_for(timeout=30000)
                page.wait_for_timeout(1500)
                page.screenshot(path=str(ROOT / "docs" / "img" / "posture.png"))
            if wall:
                screen = context.new_page()
                screen.set_viewport_size({"width": 1920, "height": 1080})
                screen.goto(f"{server.base}/?view=wall")
                screen.locator("[data-tile]").first.wait_for(timeout=30000)
                screen.get_by_test_id("wall-alerts").wait_for(timeout=30000)
                screen.wait_for_timeout(1500)
                screen.screenshot(path=str(ROOT / "docs" / "img" / "wall.png"))
            browser.close()
    finally:
        stop(server)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="sqlite:///var/demo/auditbook.db")
    ap.add_argument("--sample", action="store_true", help="both from tests/wall_store.py's sample store")
    args = ap.parse_args()
    if args.sample:
        from tests.wall_store import build
        with tempfile.TemporaryDirectory() as tmp:
            sample = f"sqlite:///{tmp}/wall.db"
            build(sample, simulated="sample data for the documentation", hostile=False)
            shoot(sample, posture=True, wall=True)
    else:
        shoot(args.db, posture=True, wall=True)
    print("wrote docs/img/posture.png and docs/img/wall.png")


if __name__ == "__main__":
    main()
