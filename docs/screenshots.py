"""Re-take the screenshots in docs/img from a store (default: the demo's), with the control room on
127.0.0.1 and Debian's chromium:

    .venv/bin/python docs/screenshots.py [--db sqlite:///var/demo/auditbook.db]
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from auditbook.web.server import start, stop  # noqa: E402
from auditbook.demo.run import free_port  # noqa: E402
from auditbook.store.db import absolute_url  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", default="sqlite:///var/demo/auditbook.db")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright
    port = free_port()
    server = start(absolute_url(args.db), port=port, local_role="viewer")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                              "--disable-component-update"])
            context = browser.new_context(viewport={"width": 1440, "height": 1300})
            page = context.new_page()
            page.goto(server.url)  # the link `auditbook app` prints: its token becomes a cookie
            page.locator(".js-plotly-plot").first.wait_for(timeout=30000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ROOT / "docs" / "img" / "posture.png"))
            wall = context.new_page()
            wall.set_viewport_size({"width": 1920, "height": 1080})
            wall.goto(f"{server.base}/?view=wall")
            wall.locator("[data-tile]").first.wait_for(timeout=30000)
            wall.wait_for_timeout(1500)
            wall.screenshot(path=str(ROOT / "docs" / "img" / "wall.png"))
            browser.close()
    finally:
        stop(server)
    print("wrote docs/img/posture.png and docs/img/wall.png")


if __name__ == "__main__":
    main()
