"""The deviations an auditor expects beyond failure stretches and manual items (AUD findings 2, 5, 9;
docs/deviations.md): alerts not triaged in time (CC7.3), intervals no CloudTrail log covered (CC7.2,
CC8.1) — each with a stable id and a management response like the others."""
import datetime as dt

import pytest

from auditbook.auth import Actor
from auditbook.catalog.model import load_catalog
from auditbook.history import deviation_kinds as kinds
from auditbook.history.deviations import deviations, for_criterion, respond
from auditbook.history.period import parse_period, period_runs
from auditbook.store import alerts as stored_alerts
from auditbook.store import changes as stored_changes
from auditbook.store import settings as stored_settings
from auditbook.store.db import open_engine
from auditbook.store.session import writing
from tests.unit.test_deviations import (
    ANALYST,
    FIELDS,
    Q3,
    REGION,
    TODAY,
    A,
    build_store,
    one,
)

CLOSED = dt.date(2026, 12, 1)  # Q3 judged after it ended


def at(day: int, hour: int = 0, minute: int = 0, month: int = 8) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=dt.timezone.utc)


def add_alert(engine, rule: str, fired: dt.datetime, severity: str = "high", **values) -> int:
    from auditbook.monitor.alerts import fire
    with writing(engine) as session:
        made = fire(session, rule=rule, labels={"account": A, "resource": rule}, severity=severity,
                    soc2_control="CC7.3", summary=f"{rule} <b>fired</b>", at=fired)
        stored_alerts.change(session, made["id"], {"fired_at": fired, **values}, bump=False)
    return made["id"]


@pytest.fixture
def alerting(tmp_path):
    """The full catalog (CC7.3 and its neighbours) over an empty store with six alerts of Q3 (high: 60 min)."""
    engine = open_engine(f"sqlite:///{tmp_path}/a.db")
    ids = {
        "untriaged": add_alert(engine, "Untriaged", at(1, 10)),
        "on time": add_alert(engine, "OnTime", at(2, 10), triage_decision="false-positive", triage_reason="test",
                             triaged_by="ana", triaged_at=at(2, 10, 30)),
        "late": add_alert(engine, "Late", at(3, 10), triage_decision="benign-true-positive", triage_reason="ok",
                          triaged_by="ana", triaged_at=at(3, 13)),
        "resolved": add_alert(engine, "Resolved", at(4, 10), state="resolved", resolved_at=at(4, 10, 20)),
        "escalation": add_alert(engine, kinds.ESCALATION_RULE, at(1, 11)),
        "suppressed": add_alert(engine, "Suppressed", at(5, 10)),
    }
    from auditbook.monitor.suppressions import suppress
    suppress(engine, Actor("root", "admin"), rule="Suppressed", labels={"account": A}, until=dt.datetime(2026, 8, 20,
             tzinfo=dt.timezone.utc), reason="known noisy probe; ticket OPS-9", at=at(5, 10, 5))
    return {"engine": engine, "catalog": load_catalog(), "ids": ids}


def triage_devs(store, **kw) -> dict[int, dict]:
    found = deviations(store["engine"], store["catalog"], Q3, criterion="CC7.3", today=kw.pop("today", CLOSED), **kw)
    return {int(d["resource"].split("-")[1]): d for d in found if d["kind"] == "alert triage"}


def test_alerts_not_triaged_in_time_are_cc73_deviations(alerting):
    ids = alerting["ids"]
    found = triage_devs(alerting)
    assert set(found) == {ids["untriaged"], ids["late"], ids["resolved"]}
    assert {i: d["state"] for i, d in found.items()} == {ids["untriaged"]: "not triaged", ids["late"]: "triaged late",
                                                         ids["resolved"]: "resolved without triage"}
    late = found[ids["late"]]
    assert late["criteria"] == ["CC7.3"] and late["from"] == at(3, 10).isoformat()
    assert late["triage"]["target_minutes"] == 60 and late["triage"]["triaged_by"] == "ana"
    assert "due 2026-08-03T11:00:00+00:00" in late["what"] and late["response"] is None
    assert all(len(d["id"]) == 16 for d in found.values())
    assert triage_devs(alerting) == found  # built again: the same ids


def test_a_suppressed_alert_is_not_a_deviation_and_shows_its_reason(alerting):
    shown = kinds.suppressed_alerts(alerting["engine"], Q3)
    assert [(s["alert"], s["reason"]) for s in shown] == [(alerting["ids"]["suppressed"],
                                                           "known noisy probe; ticket OPS-9")]


def test_an_untriaged_alert_within_its_target_is_not_yet_a_deviation(tmp_path):
    engine = open_engine(f"sqlite:///{tmp_path}/b.db")
    fresh = add_alert(engine, "Fresh", dt.datetime(2026, 9, 30, 23, 30, tzinfo=dt.timezone.utc))
    store = {"engine": engine, "catalog": load_catalog()}
    assert triage_devs(store, today=dt.date(2026, 9, 30)) == {}  # due 00:30 on 1 October: not yet
    assert triage_devs(store) == {}  # nor when Q3 is judged after its end: it was within its target then
    q4 = deviations(engine, store["catalog"], parse_period("2026Q4"), criterion="CC7.3", today=CLOSED)
    assert one(q4, kind="alert triage")["resource"] == f"alert-{fresh:09d}"  # still open, past its target


def test_triage_targets_are_the_control_rooms_setting(alerting):
    with writing(alerting["engine"]) as session:
        stored_settings.write(session, "triage", {"high": 240})
    assert alerting["ids"]["late"] not in triage_devs(alerting)  # 3 hours is within 4


def test_an_alert_deviation_takes_a_management_response(alerting):
    dev = triage_devs(alerting)[alerting["ids"]["untriaged"]]
    respond(alerting["engine"], ANALYST, dev["id"], 0, catalog=alerting["catalog"], period=Q3, today=CLOSED,
            ticket="OPS-1", **FIELDS)
    again = triage_devs(alerting)[alerting["ids"]["untriaged"]]
    assert again["response"]["ticket"] == "OPS-1" and again["response_text"] == FIELDS["response"]


# -- log coverage (CC7.2, CC8.1) -------------------------------------------------------------------------

def coverage(engine, first: dt.datetime, last: dt.datetime) -> None:
    with writing(engine) as session:
        stored_changes.add_coverage(session, [{"account": A, "region": REGION, "first_at": first, "last_at": last,
                                               "source": "s3://trail/x.json.gz", "records": 1, "unread": 0}])


def test_an_interval_no_cloudtrail_log_covered_is_a_deviation(tmp_path):
    store = build_store(tmp_path)  # runs read account A in us-east-1 on 1..3 July; no CloudTrail input yet
    catalog = load_catalog()
    (whole,) = kinds.log_coverage_deviations(store["engine"], catalog, Q3, TODAY)
    assert (whole["kind"], whole["criteria"], whole["account"], whole["region"]) == (
        "log coverage", ["CC7.2", "CC8.1"], A, REGION)
    assert whole["from"] == "2026-07-01T00:00:00+00:00" and whole["existed_at_start_computed"] is True
    assert "never logged" in whole["what"]
    coverage(store["engine"], at(1, 0, month=7), at(2, 12, month=7))
    coverage(store["engine"], at(3, 0, month=7), at(5, 0, month=7))
    (gap,) = kinds.log_coverage_deviations(store["engine"], catalog, Q3, TODAY)
    assert (gap["from"], gap["until"], gap["existed_at_start_computed"]) == (
        "2026-07-02T12:00:00+00:00", "2026-07-03T00:00:00+00:00", False)
    listed = deviations(store["engine"], catalog, Q3, criterion="CC8.1", today=TODAY)
    assert one(listed, kind="log coverage")["id"] == gap["id"]
    assert one(deviations(store["engine"], catalog, Q3, criterion="CC7.2", today=TODAY), kind="log coverage")[
        "id"] == gap["id"]
    assert all(d["kind"] != "log coverage"
               for d in deviations(store["engine"], catalog, Q3, criterion="CC6.6", today=TODAY))
    done = respond(store["engine"], ANALYST, gap["id"], 0, catalog=catalog, period=Q3, today=TODAY, **FIELDS)
    assert done["response"]["version"] == 1


def test_a_criterion_page_lists_the_period_wide_kinds_like_the_list(alerting):
    from auditbook.history.type2 import criterion_history
    engine, catalog = alerting["engine"], alerting["catalog"]
    for criterion in ("CC7.3", "CC8.1"):
        report = criterion_history(engine, catalog, criterion, period_runs(engine, Q3), today=CLOSED)
        page = for_criterion(engine, catalog, Q3, criterion, report.failures, today=CLOSED)
        assert page == deviations(engine, catalog, Q3, criterion=criterion, today=CLOSED)
    assert {d["kind"] for d in for_criterion(engine, catalog, Q3, "CC7.3", [], today=CLOSED)} >= {"alert triage",
                                                                                                  "monitoring gap"}
