"""Issue 13's analyst flow, in one headless Chromium session against the control room (started as
`auditbook app` starts it, opened with the link it prints): an alert raised through the core is
picked on the alerts page and triaged as a true positive with a reason (which opens an incident
linked to it); on the incidents page that incident is found, resolved, its closing refused while
it is high and lacks root cause and lessons learned (the page says why), the post-mortem filled in
(category, impact, root cause, lessons learned, an action item), and then it closes. The store,
read through the core, holds all of it and the audit trail of each step. 127.0.0.1 only."""
import datetime as dt
import re

import pytest
from playwright.sync_api import expect, sync_playwright

from auditbook.auth import Actor, login_name
from auditbook.demo.run import free_port
from auditbook.monitor import alert_views, alerts, incidents
from auditbook.store.session import writing
from auditbook.web.server import start, stop
from tests.browser import launch
from tests.e2e.test_app_browser import _choose
from tests.e2e.test_postmortem_browser import RUNNING, _move, _until

EVIL = "<img src=x onerror=alert(1)>"
SUMMARY = f"root used in 111111111111 {EVIL}"
REASON = f"root console login from an unknown address {EVIL}"
ROOT_CAUSE = f"Root access keys kept after the account's set-up ({EVIL})"
LESSONS = "Delete root access keys at set-up; alert on any root sign-in."
ACTION = ("kim", "Delete the root access keys of every account")
REFUSAL = ("status: a high incident is closed only with its root cause and lessons learned; "
           "missing: root cause and lessons learned (fill in the post-mortem first)")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A store with the alert to triage (high), a more severe one (shown first) and an unrelated
    incident, served to a local analyst."""
    from auditbook.store.db import open_engine
    root = tmp_path_factory.mktemp("analyst-flow-browser")
    db = f"sqlite:///{root}/store.db"
    engine = open_engine(db)
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    with writing(engine) as session:
        other = alerts.fire(session, rule="RootAccountUsage", labels={"account": "222222222222", "region": "eu-west-1"},
                            severity="critical", soc2_control="CC7.2", summary="root used in 222222222222", at=at)
        target = alerts.fire(session, rule="RootAccountUsage", labels={"account": "111111111111", "region": "eu-west-1"},
                             severity="high", soc2_control="CC7.2", summary=SUMMARY, at=at)
    unrelated = incidents.create(engine, Actor("lead@soc.example", "analyst"), title="Unrelated: S3 bucket made public",
                                 severity="high")
    server = start(db, port=free_port(), local_role="analyst", log=open(root / "streamlit.log", "wb"))
    try:
        yield {"engine": engine, "alert": target["id"], "other": other["id"], "unrelated": unrelated["id"],
               "url": server.base, "open": server.url}
    finally:
        stop(server)


def _settled(page) -> None:
    """The rerun the last action started is over (no running indicator, no stale elements)."""
    page.wait_for_timeout(300)
    page.wait_for_function(RUNNING, timeout=20000)


def _triage_on_alerts_page(page, served) -> dict:
    """Pick the alert, decide true positive with a reason; the alert as saved."""
    engine, alert_id = served["engine"], served["alert"]
    page.get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", name=f"Alert {served['other']}")).to_be_visible(timeout=30000)  # most severe first
    _settled(page)
    _choose(page, "Alert", f"#{alert_id} high · RootAccountUsage · {SUMMARY}")
    expect(page.get_by_role("heading", name=f"Alert {alert_id}")).to_be_visible(timeout=20000)
    _settled(page)
    _choose(page, "Decision", "true-positive")
    page.get_by_label("Reason (required with a decision)", exact=True).fill(REASON)
    page.get_by_role("button", name="Save triage").click()
    saved = _until(page, lambda: alerts.get(engine, alert_id)["incident_id"] and alerts.get(engine, alert_id))
    expect(page.get_by_text(f"Alert {alert_id} saved.")).to_be_visible(timeout=15000)
    assert alerts.get(engine, served["other"])["triage_decision"] is None  # only the chosen alert
    return saved


def _find_incident(page, incident: dict) -> None:
    page.get_by_role("link", name="Incidents").click()
    expect(page.get_by_role("heading", name="Incidents", exact=True)).to_be_visible(timeout=30000)
    _settled(page)
    _choose(page, "Incident", f"#{incident['id']} [open] {incident['title'][:80]}")
    expect(page.get_by_role("heading", name=f"Incident {incident['id']}")).to_be_visible(timeout=20000)
    _settled(page)


def _refused_close(page, engine, inc_id: int) -> None:
    """Resolve it, then try to close it without a post-mortem: refused, and the page says why."""
    _move(page, "resolved")
    expect(page.get_by_test_id("stMetricValue").first).to_have_text("resolved", timeout=15000)
    _settled(page)
    _move(page, "closed")
    expect(page.get_by_text(REFUSAL, exact=True)).to_be_visible(timeout=15000)
    assert incidents.get(engine, inc_id)["status"] == "resolved"


def _post_mortem(page, engine, inc_id: int) -> None:
    """Category, impact, root cause and lessons learned, then one action item."""
    _choose(page, "Category", "credential compromise")
    page.get_by_label("Customers affected", exact=True).fill("0")
    page.get_by_label("Systems affected", exact=True).fill("AWS account 111111111111")
    page.get_by_label("Data affected", exact=True).fill("none found in CloudTrail")
    page.get_by_label("Root cause", exact=True).fill(ROOT_CAUSE)
    page.get_by_label("Lessons learned", exact=True).fill(LESSONS)
    page.get_by_role("button", name="Save post-mortem").click()
    _until(page, lambda: incidents.get(engine, inc_id)["lessons_learned"])
    expect(page.get_by_text(REFUSAL, exact=True)).to_have_count(0, timeout=15000)
    page.get_by_label("Action owner", exact=True).fill(ACTION[0])
    page.get_by_label("What is to be done", exact=True).fill(ACTION[1])
    page.get_by_role("button", name="Add action item").click()
    _until(page, lambda: incidents.detail(engine, inc_id)["actions"])
    expect(page.get_by_text(re.compile(r"· add action$"))).to_be_visible(timeout=15000)


def test_alert_triaged_to_incident_post_mortem_then_closed(served):
    engine = served["engine"]
    with sync_playwright() as p:
        browser = launch(p)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 2600}).new_page()
            dialogs, requests = [], []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(served["open"])  # the printed link: its token becomes a cookie
            expect(page.get_by_role("heading", name="Posture")).to_be_visible(timeout=30000)
            saved = _triage_on_alerts_page(page, served)
            incident = incidents.get(engine, saved["incident_id"])
            _find_incident(page, incident)
            _refused_close(page, engine, incident["id"])
            _post_mortem(page, engine, incident["id"])
            _move(page, "closed")
            expect(page.get_by_test_id("stMetricValue").first).to_have_text("closed", timeout=15000)
            _until(page, lambda: incidents.get(engine, incident["id"])["status"] == "closed")
            assert dialogs == []  # the hostile summary, reason and root cause never ran as HTML
            assert all(u.startswith(served["url"]) or u.startswith("data:") for u in requests), \
                [u for u in requests if not u.startswith(served["url"])]
        finally:
            browser.close()
    _assert_alert_stored(served, saved["incident_id"])
    _assert_incident_stored(served, saved["incident_id"])


def _assert_alert_stored(served, incident_id: int) -> None:
    analyst = f"{login_name()} (local)"
    alert = alerts.get(served["engine"], served["alert"])
    assert (alert["triage_decision"], alert["triage_reason"], alert["triaged_by"]) == ("true-positive", REASON, analyst)
    assert alert["incident_id"] == incident_id != served["unrelated"]
    triaged = [e for e in alert_views.detail(served["engine"], served["alert"])["history"] if e["action"] == "triage"]
    assert [(e["actor"], e["role"], e["note"]) for e in triaged] == [(analyst, "analyst", REASON)]
    assert triaged[0]["after"] == {"triage_decision": "true-positive", "triage_reason": REASON,
                                   "incident_id": incident_id}


def _assert_incident_stored(served, incident_id: int) -> None:
    analyst = f"{login_name()} (local)"
    inc = incidents.detail(served["engine"], incident_id)
    assert (inc["status"], inc["severity"], inc["created_by"]) == ("closed", "high", analyst)
    assert inc["closed_at"] is not None and inc["resolved_at"] is not None
    assert ("alert", str(served["alert"])) in {(link["kind"], link["ref"]) for link in inc["links"]}
    assert (inc["category"], inc["customers_affected"]) == ("credential compromise", 0)
    assert (inc["impact_systems"], inc["impact_data"]) == ("AWS account 111111111111", "none found in CloudTrail")
    assert (inc["root_cause"], inc["lessons_learned"]) == (ROOT_CAUSE, LESSONS)
    assert [(a["owner"], a["text"], a["done_at"]) for a in inc["actions"]] == [(*ACTION, None)]
    trail = incidents.timeline(served["engine"], incident_id)
    assert [e["action"] for e in trail] == ["create", "update", "update", "add action", "update"]
    assert {(e["actor"], e["role"]) for e in trail} == {(analyst, "analyst")}
    assert [e["after"].get("status") for e in trail if e["action"] == "update"] == ["resolved", None, "closed"]
    assert trail[2]["after"]["root_cause"] == ROOT_CAUSE  # the refused close left no entry
    assert incidents.get(served["engine"], served["unrelated"])["status"] == "open"  # untouched
