"""Sign-offs in a real headless Chromium against the control room (started as `auditbook app` starts it,
opened with the link it prints): the local admin signs the packet as prepared, reviews a criterion an
analyst prepared (with a hostile comment that must stay text), and is refused the review of their own
preparation (two-person rule) — each checked in the store. 127.0.0.1 only."""
import datetime as dt
import re
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from auditbook.auth import Actor
from auditbook.catalog.model import load_catalog
from auditbook.history.period import previous_quarter
from auditbook.history.signoffs import prepare, signoffs_for
from auditbook.web.server import start, stop
from tests.browser import launch
from tests.e2e.test_app_browser import _choose

EVIL = "<img src=x onerror=alert(1)>"
PERIOD = previous_quarter(dt.datetime.now(dt.timezone.utc).date())  # the page's default period


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from auditbook.demo.run import free_port
    from auditbook.store.db import open_engine
    root = tmp_path_factory.mktemp("signoffs-browser")
    db = f"sqlite:///{root}/store.db"
    engine = open_engine(db)
    prepare(engine, load_catalog(), Actor(f"ana {EVIL}", "analyst"), PERIOD, "CC7.3", f"alerts attached {EVIL}")
    server = start(db, port=free_port(), local_role="admin", log=open(root / "streamlit.log", "wb"))
    try:
        yield {"engine": engine, "url": server.base, "open": server.url}
    finally:
        stop(server)


def _until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("the store never showed the change")


def _state(engine, subject: str) -> dict:
    found = signoffs_for(engine, PERIOD, [subject] if subject not in ("packet", "assertion") else [])
    return found["packet"] if subject == "packet" else found["criteria"][subject]


def test_prepare_review_and_the_two_person_rule_from_the_page(served):
    engine = served["engine"]
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 2600}).new_page()
            dialogs, requests = [], []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(served["open"])  # the printed link: the token becomes a cookie
            page.get_by_role("link", name="Sign-offs").click(timeout=30000)
            expect(page.get_by_role("heading", name="Sign-offs")).to_be_visible(timeout=30000)
            expect(page.get_by_text(re.compile(r"1 prepared of \d+ criteria"))).to_be_visible(timeout=15000)

            _choose(page, "Subject to prepare", "packet · unsigned")
            page.get_by_label("Preparation comment (optional)", exact=True).fill(f"ready {EVIL}")
            page.get_by_role("button", name="Sign as prepared").click()
            packet = _until(lambda: _state(engine, "packet")["preparer"] and _state(engine, "packet"))
            assert (packet["state"], packet["preparation_comment"]) == ("prepared", f"ready {EVIL}")
            assert packet["preparer"].endswith(" (local)")
            expect(page.get_by_text("packet: prepared — now prepared.")).to_be_visible(timeout=15000)

            _choose(page, "Subject to review", "CC7.3 · prepared")
            page.get_by_role("button", name="Save review").click()
            cc73 = _until(lambda: _state(engine, "CC7.3")["reviewer"] and _state(engine, "CC7.3"))
            assert (cc73["state"], cc73["decision"], cc73["reviewer"]) == ("reviewed", "approved", packet["preparer"])
            expect(page.get_by_text("CC7.3: approved — now reviewed.")).to_be_visible(timeout=15000)

            _choose(page, "Subject to review", "packet · prepared")
            page.get_by_role("button", name="Save review").click()
            expect(page.get_by_text(re.compile(r"two-person rule"))).to_be_visible(timeout=15000)
            assert _state(engine, "packet")["reviewer"] is None
            assert dialogs == []  # the hostile names and comments never ran as HTML
            assert all(u.startswith(served["url"]) or u.startswith("data:") for u in requests), \
                [u for u in requests if not u.startswith(served["url"])]
        finally:
            browser.close()
