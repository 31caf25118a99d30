"""Alert triage in a real headless Chromium against the control room (started as `auditbook app`
starts it, opened with the link it prints): a shared link with filters in its query parameters opens
the alerts page filtered, the analyst triages the critical alert as a true positive with a reason,
and the incident it became opens from the incidents page. 127.0.0.1 only."""
import datetime as dt
import re
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from auditbook.monitor import alerts, incidents
from auditbook.store.session import writing
from auditbook.web.server import start, stop
from tests.browser import launch
from tests.e2e.test_app_browser import _choose

EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from auditbook.demo.run import free_port
    from auditbook.store.db import open_engine
    root = tmp_path_factory.mktemp("triage-browser")
    db = f"sqlite:///{root}/store.db"
    engine = open_engine(db)
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    ids = {}
    with writing(engine) as session:
        for severity, account in (("high", "111111111111"), ("critical", "222222222222"), ("low", "333333333333")):
            ids[severity] = alerts.fire(session, rule="RootAccountUsage", labels={"account": account,
                                                                                "region": "eu-west-1"},
                                        severity=severity, soc2_control="CC7.2",
                                        summary=f"root used in {account} {EVIL}", at=at)["id"]
    server = start(db, port=free_port(), local_role="analyst", log=open(root / "streamlit.log", "wb"))
    try:
        yield {"engine": engine, "ids": ids, "url": server.base, "open": server.url}
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


def test_shared_filtered_link_triage_to_incident(served):
    engine, critical = served["engine"], served["ids"]["critical"]
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 2200}).new_page()
            dialogs, requests = [], []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(served["open"])  # the printed link: the token becomes a cookie
            page.get_by_role("link", name="Alerts").wait_for(timeout=30000)
            page.goto(served["url"] + "/alerts?severity=critical&severity=low")  # a shared view
            expect(page.get_by_role("heading", name=f"Alert {critical}")).to_be_visible(timeout=30000)
            expect(page.get_by_text(re.compile(r"of 2 alerts"))).to_be_visible(timeout=15000)
            _choose(page, "Decision", "true-positive")
            page.get_by_label("Reason (required with a decision)", exact=True).fill(f"root login {EVIL}")
            page.get_by_role("button", name="Save triage").click()
            saved = _until(lambda: alerts.get(engine, critical)["incident_id"] and alerts.get(engine, critical))
            assert (saved["triage_decision"], saved["triage_reason"]) == ("true-positive", f"root login {EVIL}")
            expect(page.get_by_text(f"Alert {critical} saved.")).to_be_visible(timeout=15000)
            assert "severity=critical" in page.url and f"alert={critical}" in page.url  # still shareable
            inc = incidents.get(engine, saved["incident_id"])
            assert ("alert", str(critical)) in {(link["kind"], link["ref"]) for link in inc["links"]}
            page.get_by_role("link", name="Incidents").click()
            expect(page.get_by_role("heading", name=f"Incident {inc['id']}")).to_be_visible(timeout=20000)
            assert dialogs == []  # the hostile summary and reason never ran as HTML
            assert all(u.startswith(served["url"]) or u.startswith("data:") for u in requests), \
                [u for u in requests if not u.startswith(served["url"])]
        finally:
            browser.close()
