"""The alerts page under Streamlit's AppTest (issue 13 §1): an analyst triages one alert (a true
positive opens a linked incident), acts on a selection, suppresses; filters come from and go to the
URL; viewers and auditors read and cannot change anything; the wall never reaches the page;
untrusted text is shown as text."""
import datetime as dt
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from auditbook.auth import Actor
from auditbook.monitor import alerts, incidents, suppressions
from auditbook.store import audit_log
from auditbook.store.session import reading, writing

APP = Path(__file__).resolve().parents[2] / "app"
EVIL = "<img src=x onerror=alert(1)> **bold**"
EDITING = ("Acknowledge", "Save triage", "Suppress", "Lift")


@pytest.fixture
def store(tmp_path):
    from auditbook.store.db import open_engine
    db = f"sqlite:///{tmp_path}/s.db"
    engine = open_engine(db)
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    made = []
    with writing(engine) as session:
        for n, severity in enumerate(("low", "critical", "high")):
            made.append(alerts.fire(session, rule="RootAccountUsage", labels={"account": str(n + 1) * 12,
                                                                              "region": "eu-west-1"},
                                    severity=severity, soc2_control="CC7.2", summary=f"root used {EVIL} {n}",
                                    at=at + dt.timedelta(minutes=n))["id"])
    return {"db": db, "engine": engine, "ids": made}


@pytest.fixture
def page(store, monkeypatch):
    """The alerts page as `role` (the context a sign-in would make), with URL query parameters."""
    import importlib
    monkeypatch.syspath_prepend(str(APP))
    ui = importlib.import_module("ui")

    def make(role: str, query=None) -> AppTest:
        at = AppTest.from_file(str(APP / "views" / "alerts.py"), default_timeout=60)
        at.session_state["ab_ctx"] = ui.Context(Actor(f"{role}@soc.example", role), "oidc", store["db"],
                                                store["engine"], None)
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.run()
        _no_errors(at)
        return at
    return make


def _no_errors(at):
    assert not at.exception, [e.value for e in at.exception]


def shown(markdown: str) -> str:
    """What a reader sees of markdown written through ui.md (backslash escapes removed)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _labelled(widgets, label):
    return next(w for w in widgets if w.label == label)


def _trail(engine, object_type, object_id):
    with reading(engine) as session:
        return audit_log.trail(session, object_type, object_id)


def test_sorted_by_severity_then_age_and_the_filters_in_the_url(page, store):
    at = page("analyst")
    low, critical, high = store["ids"]
    assert list(at.dataframe[0].value["id"]) == [critical, high, low]
    assert at.query_params["state"] == ["firing", "acknowledged"] and at.query_params["alert"] == str(critical)
    at = page("viewer", {"severity": ["high", "low"], "alert": str(low)})
    assert list(at.dataframe[0].value["id"]) == [high, low]
    assert _labelled(at.multiselect, "Severity").value == ["high", "low"]
    assert at.subheader[0].value == f"Alert {low}"  # the shared link opens the alert it names


def test_a_bad_filter_in_the_url_is_named_and_nothing_is_listed(page):
    at = page("analyst", {"since": "2026-13-45"})
    assert any("since" in shown(w.value) for w in at.warning)  # the date widget leaves it out, says so
    at = page("analyst", {"triage": "maybe"})
    assert any("triage: 'maybe' is not one of" in shown(e.value) for e in at.error) and not at.dataframe


def test_analyst_triages_a_true_positive_into_a_linked_incident(page, store):
    critical = store["ids"][1]
    at = page("analyst")
    _labelled(at.selectbox, "Decision").select("true-positive")
    _labelled(at.text_area, "Reason (required with a decision)").input(f"root login {EVIL}")
    _labelled(at.text_input, "Assignee").input("ana")
    _labelled(at.button, "Save triage").click().run()
    _no_errors(at)
    saved = alerts.get(store["engine"], critical)
    assert (saved["triage_decision"], saved["triage_reason"], saved["assignee"]) == \
        ("true-positive", f"root login {EVIL}", "ana")
    inc = incidents.get(store["engine"], saved["incident_id"])
    assert ("alert", str(critical)) in {(link["kind"], link["ref"]) for link in inc["links"]}
    assert [e["actor"] for e in _trail(store["engine"], "alert", critical)] == ["analyst@soc.example"] * 2
    assert any(f"Alert {critical} saved" in shown(s.value) for s in at.success)
    assert any(f"incident {inc['id']}" in shown(c.value) and "time to triage" in shown(c.value) for c in at.caption)
    assert not [m.value for m in [*at.markdown, *at.caption] if "<img src=x" in m.value]  # shown as text


def test_a_decision_without_a_reason_is_refused_on_the_page(page, store):
    at = page("analyst")
    _labelled(at.selectbox, "Decision").select("false-positive")
    _labelled(at.button, "Save triage").click().run()
    _no_errors(at)
    assert any("reason: required" in shown(e.value) for e in at.error)
    assert alerts.get(store["engine"], store["ids"][1])["triage_decision"] is None


def test_bulk_action_on_a_selection(page, store):
    at = page("analyst")
    low, critical, high = store["ids"]
    _labelled(at.multiselect, "Selected alerts (this page)").select(low).select(high).run()
    _no_errors(at)
    _labelled(at.radio, "Action").set_value("Triage")
    _labelled(at.selectbox, "Decision").set_value("benign-true-positive")  # the bulk form's, listed first
    _labelled(at.text_area, "Reason (a decision or a suppression needs one)").input("scheduled drill")
    _labelled(at.button, "Apply to 2 selected").click().run()
    _no_errors(at)
    decided = {i: alerts.get(store["engine"], i)["triage_decision"] for i in store["ids"]}
    assert decided == {low: "benign-true-positive", critical: None, high: "benign-true-positive"}


def test_analyst_suppresses_alerts_like_this_one(page, store):
    at = page("analyst")
    critical = store["ids"][1]
    form = _labelled(at.multiselect, "Suppress RootAccountUsage for alerts carrying")
    form.set_value(["account=222222222222"])
    _labelled(at.text_area, "Reason").input("pen test")
    _labelled(at.button, "Suppress").click().run()
    _no_errors(at)
    found = suppressions.list_suppressions(store["engine"])
    assert [(s["labels"], s["reason"], s["alerts"]) for s in found] == [({"account": "222222222222"}, "pen test",
                                                                         [critical])]
    assert any("Suppressions in force (1)" == e.label for e in at.expander)
    assert "suppressed until" in at.dataframe[0].value.set_index("id").loc[critical, "triage"]


@pytest.mark.parametrize("role", ["viewer", "auditor"])
def test_read_only_roles_see_alerts_and_cannot_change_them(page, role):
    at = page(role)
    assert at.dataframe and at.subheader
    assert not [b.label for b in at.button if b.label in EDITING or b.label.startswith("Apply to")]
    assert "Bulk actions" not in [e.label for e in at.expander]
    assert not [t for t in at.text_area]


def test_the_wall_never_reaches_the_alerts_page(page, store, monkeypatch):
    import importlib
    ui = importlib.import_module("ui")
    at = AppTest.from_file(str(APP / "views" / "alerts.py"), default_timeout=60)
    at.session_state["ab_ctx"] = ui.Context(Actor("wall screen", "wall"), "wall-token", store["db"],
                                            store["engine"], None)
    at.run()
    assert [e.value for e in at.error] == ["Your role (wall) may not view alerts."]
    assert not at.dataframe and not at.button


def test_only_an_admin_sets_the_triage_targets(page, store):
    assert "Triage targets (minutes from first sighting to a decision)" not in [e.label for e in page("analyst").expander]
    at = page("admin")
    _labelled(at.number_input, "critical").set_value(5)
    _labelled(at.button, "Save triage targets").click().run()
    _no_errors(at)
    from auditbook.monitor import triage
    assert triage.targets(store["engine"])["critical"] == 5
    assert [e["actor"] for e in _trail(store["engine"], "setting", "triage")] == ["admin@soc.example"]


def test_a_bulk_action_on_alerts_changed_meanwhile_saves_nothing(page, store):
    from auditbook.monitor import triage
    at = page("analyst")
    low, critical, high = store["ids"]
    _labelled(at.multiselect, "Selected alerts (this page)").select(low).select(high).run()
    current = alerts.get(store["engine"], high)
    triage.triage(store["engine"], Actor("bob", "analyst"), high, current["version"], assignee="bob")  # meanwhile
    _labelled(at.radio, "Action").set_value("Resolve")
    _labelled(at.button, "Apply to 2 selected").click().run()
    _no_errors(at)
    assert any("changed meanwhile" in shown(w.value) for w in at.warning)
    assert [alerts.get(store["engine"], i)["state"] for i in (low, high)] == ["firing", "firing"]
    assert alerts.get(store["engine"], high)["assignee"] == "bob"  # bob's change survived


def test_the_detail_links_the_resources_to_their_timeline(page, store):
    with writing(store["engine"]) as session:
        labels = {"check": "s3-public", "account": "111111111111", "region": "eu-west-1",
                  "resource_type": "aws.s3.bucket", "resource": "arn:aws:s3:::logs"}
        made = alerts.fire(session, rule="CheckRegressed", labels=labels, severity="critical", soc2_control="CC6.1",
                           summary="regressed", at=dt.datetime.now(dt.timezone.utc))
    at = page("viewer", {"alert": str(made["id"]), "rule": "CheckRegressed"})
    shown_resources = next(d.value for d in at.dataframe if "timeline" in d.value.columns)
    assert list(shown_resources["resource"]) == ["arn:aws:s3:::logs"]
    assert list(shown_resources["timeline"]) == ["resource?arn=arn%3Aaws%3As3%3A%3A%3Alogs"]


def _decide(at, decision, reason):
    _labelled(at.selectbox, "Decision").select(decision)
    _labelled(at.text_area, "Reason (required with a decision)").input(reason)
    _labelled(at.button, "Save triage").click().run()
    _no_errors(at)


def test_a_triage_is_saved_against_the_version_seen_not_one_read_on_the_click(page, store):
    from auditbook.monitor import triage
    at = page("analyst")
    shown_id = int(at.query_params["alert"])
    current = alerts.get(store["engine"], shown_id)
    triage.triage(store["engine"], Actor("bob", "analyst"), shown_id, current["version"], decision="true-positive",
                  reason="B: real")  # meanwhile, in another browser
    _decide(at, "false-positive", "A: drill")
    assert any("changed meanwhile" in shown(w.value) for w in at.warning) and not at.success
    now = alerts.get(store["engine"], shown_id)
    assert (now["triage_decision"], now["triage_reason"]) == ("true-positive", "B: real")


def test_a_bulk_action_after_the_page_cache_expired_still_checks_the_versions_shown(page, store):
    import streamlit as st

    from auditbook.monitor import triage
    at = page("analyst")
    low = store["ids"][0]
    _labelled(at.multiselect, "Selected alerts (this page)").select(low).run()
    current = alerts.get(store["engine"], low)
    triage.triage(store["engine"], Actor("bob", "analyst"), low, current["version"], decision="true-positive",
                  reason="B: real")
    st.cache_data.clear()  # the page cache (10 s) expired while the analyst filled the form
    _labelled(at.radio, "Action").set_value("Triage")
    _labelled(at.selectbox, "Decision").set_value("false-positive")
    _labelled(at.text_area, "Reason (a decision or a suppression needs one)").input("A: bulk drill")
    _labelled(at.button, "Apply to 1 selected").click().run()
    _no_errors(at)
    assert any("changed meanwhile" in shown(w.value) for w in at.warning) and not at.success
    assert alerts.get(store["engine"], low)["triage_decision"] == "true-positive"


def test_a_triage_that_changes_nothing_says_so_and_not_saved(page, store):
    from auditbook.monitor import triage
    first = store["ids"][1]  # critical: the page opens it first
    current = alerts.get(store["engine"], first)
    triage.triage(store["engine"], Actor("bob", "analyst"), first, current["version"], decision="false-positive",
                  reason="noise")
    at = page("analyst", {"alert": str(first)})
    _decide(at, "false-positive", "noise")
    assert not at.success and any("Nothing changed" in shown(i.value) for i in at.info)
    assert [e["action"] for e in _trail(store["engine"], "alert", first)] == ["triage"]


@pytest.mark.parametrize("query, named", [({"until": "9999-12-31"}, "until: '9999-12-31' is out of range"),
                                          ({"alert": "²"}, None), ({"alert": "١٢"}, None)])
def test_hostile_dates_and_ids_in_the_url_are_named_not_a_crash(page, store, query, named):
    at = page("viewer", query)  # page() asserts no exception
    if named:
        assert any(named in shown(e.value) for e in at.error)
    else:  # not an id: the first alert on the page is opened instead
        assert _labelled(at.selectbox, "Alert").value == store["ids"][1]
