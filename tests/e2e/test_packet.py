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
            charts = page.locator(".ab-chart").count()  # every chart of the page draws (bars and heatmaps:
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {charts}",
                                   timeout=15000)  # the packet's plotly.js is the cartesian bundle)
            assert charts >= 1 and page.locator(".js-plotly-plot").count() == charts
        assert page.get_by_text(EVIL).count() >= 1  # shown as text
        page.goto((signed_packet / "index.html").as_uri())
        page.click("a[href='criteria/A1.2.html']")
        page.wait_for_selector("h1")
        assert "A1.2" in page.locator("h1").first.inner_text()
        browser.close()
    assert requests == [] and dialogs == [] and errors == []


def test_a_page_is_read_before_plotly_is_parsed(signed_packet):
    """Issue 14 §10: plotly.js is loaded only after the page's load event, so a page's text and
    tables never wait for it; with plotly.js unavailable the page still reads, without a script error."""
    from playwright.sync_api import sync_playwright
    fetched, errors = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=["--no-sandbox"])
        page = browser.new_page()

        def route(r):
            fetched.append(r.request.url.rsplit("/", 1)[-1])
            if r.request.url.endswith("plotly.min.js") or not r.request.url.startswith("file://"):
                r.abort()
            else:
                r.continue_()
        page.route("**/*", route)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("load", lambda _: fetched.append("(load event)"))
        page.goto((signed_packet / "criteria" / "CC6.6.html").as_uri(), wait_until="load")
        assert page.get_by_text("Failures in the period").count() >= 1
        page.wait_for_timeout(500)
        assert page.locator(".main-svg").count() == 0 and page.locator(".ab-chart").count() >= 2
        browser.close()
    assert fetched.index("(load event)") < fetched.index("plotly.min.js")  # asked for after the page loaded
    assert fetched.count("plotly.min.js") == 1
    assert errors == []
