"""The wall screen in Debian's Chromium at 1920×1080, as the security room's screen shows it
(`?view=wall`, the control room on 127.0.0.1 over tests/wall_store.py): alerts sorted, the heading's
count agreeing with the list and "+N more", the breached SLA marked, the change arrows, status by glyph
and word in the page's font, the critical banner on top, the SIMULATED label, all without scrolling.
The screenshot is kept beside the test's store (docs/screenshots.py --sample takes docs/img/wall.png
the same way)."""
import pytest
from playwright.sync_api import expect, sync_playwright

from auditbook.demo.run import free_port
from auditbook.web.server import start, stop
from tests.browser import launch
from tests.wall_store import build

RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("wall")
    db = f"sqlite:///{root}/wall.db"
    made = build(db, simulated="wall sample")
    server = start(db, port=free_port(), local_role="viewer", log=open(root / "streamlit.log", "wb"))
    try:
        yield {"root": root, "url": server.base, "open": server.url, **made}
    finally:
        stop(server)


def test_the_wall_reads_at_three_metres(served):
    with sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context(viewport={"width": 1920, "height": 1080})
            page = context.new_page()
            page.goto(served["open"])  # the printed link: its token becomes a cookie
            page.goto(f"{served['url']}/?view=wall")
            expect(page.locator("[data-tile]")).to_have_count(5, timeout=60000)
            expect(page.get_by_test_id("wall-alerts")).to_be_visible(timeout=30000)
            _check(page, served)
            shot = served["root"] / "wall.png"
            page.screenshot(path=str(shot))
            assert shot.stat().st_size > 50_000
        finally:
            browser.close()


def _check(page, served) -> None:
    banner = page.get_by_test_id("wall-critical")
    expect(banner).to_be_visible()
    assert banner.bounding_box()["y"] < 150 and "NEW CRITICAL ALERT" in banner.inner_text()
    expect(page.get_by_test_id("wall-simulated")).to_contain_text("SIMULATED")
    heading = page.get_by_test_id("wall-alerts")
    total = int(heading.get_attribute("data-total"))
    assert heading.inner_text().startswith(f"{total} active alerts")
    rows = page.locator("[data-alert]")
    severities = [rows.nth(i).get_attribute("data-severity") for i in range(rows.count())]
    assert severities == sorted(severities, key=RANK.get) and severities[0] == "critical"
    more = page.get_by_test_id("wall-alerts-more")
    assert more.inner_text() == f"+{total - rows.count()} more" and total - rows.count() > 0
    breached = page.locator(f'[data-incident="{served["incidents"]["breached"]}"] + div [data-testid="sla-breached"]')
    expect(breached).to_be_visible()
    assert "SLA BREACHED" in breached.inner_text()
    assert breached.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(207, 34, 46)"
    security = page.locator('[data-tile="security"]')
    assert "▲ 1 since yesterday" in security.inner_text() and "✕ FAILING" in security.inner_text()
    assert "critical 0 · high 3" in security.inner_text()
    assert "▼ 1 since yesterday" in page.locator('[data-tile="availability"]').inner_text()
    # readable from across the room: big type, and everything on the one screen (no scrolling)
    size = float(page.locator("[data-alert]").first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
    assert size >= 24
    for element in (more, page.locator("[data-incident]").last, *[page.locator("[data-tile]").nth(i) for i in range(5)]):
        box = element.bounding_box()
        assert box and box["y"] + box["height"] <= 1080, element
    # the glyphs come from a font the page has (DejaVu Sans): no box for a missing character
    assert page.evaluate("document.fonts.check('28px \"DejaVu Sans\"', '✓✕▲▼◷●○')")
