"""The signed packet (`signed_packet`, tests/conftest.py) in a real headless Chromium, offline: every
request beyond the packet's own files is refused, the charts draw, names are shown as text and the links
between pages work."""
import shutil

from tests.packet_store import EVIL


def test_packet_renders_offline_in_chromium(signed_packet):
    from playwright.sync_api import sync_playwright
    requests, dialogs, errors = [], [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1300, "height": 1000})

        def route(r):
            if r.request.url.startswith("file://"):
                r.continue_()
            else:
                requests.append(r.request.url)
                r.abort()
        page.route("**/*", route)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        for name in ("index.html", "criteria/CC6.6.html"):
            page.goto((signed_packet / name).as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=15000)
            assert page.locator(".js-plotly-plot .main-svg").count() >= 1
        assert page.get_by_text(EVIL).count() >= 1  # shown as text
        page.goto((signed_packet / "index.html").as_uri())
        page.click("a[href='criteria/A1.2.html']")
        page.wait_for_selector("h1")
        assert "A1.2" in page.locator("h1").first.inner_text()
        browser.close()
    assert requests == [] and dialogs == [] and errors == []
