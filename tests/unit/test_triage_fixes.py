"""Regressions from the issue-13 attack pass on triage and suppressions: a decision does not absorb
later occurrences (they reopen the triage), lifting a suppression is on each alert's trail and hands
its alerts to an overlapping suppression still in force, and dates at the edge of the calendar are
named errors, not OverflowError tracebacks."""
import datetime as dt
import re

import pytest
from freezegun import freeze_time

from auditbook.auth import Actor
from auditbook.errors import UserError
from auditbook.monitor import alert_views, alerts, suppressions, triage, wall
from auditbook.store import audit_log
from auditbook.store.session import reading, writing

ANALYST = Actor("ana", "analyst")
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)
LABELS = {"account": "111111111111", "region": "eu-west-1"}


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    return open_engine(f"sqlite:///{tmp_path}/s.db")


def occurrence(engine, at, severity="critical") -> dict:
    with writing(engine) as session:
        made = alerts.fire(session, rule="RootAccountUsage", labels=LABELS, severity=severity, soc2_control="CC7.2",
                           summary="root used", at=at)
    return alerts.get(engine, made["id"])


def trail(engine, object_type, object_id) -> list[dict]:
    with reading(engine) as session:
        return audit_log.trail(session, object_type, object_id)


def test_a_new_occurrence_after_a_decision_reopens_the_triage(engine):
    with freeze_time(T0):
        first = occurrence(engine, T0)
    with freeze_time(T0 + dt.timedelta(minutes=10)):
        decided = triage.triage(engine, ANALYST, first["id"], first["version"], decision="false-positive",
                                reason="break-glass drill", assignee="bob")
    later = T0 + dt.timedelta(days=30)
    with freeze_time(later):
        again = occurrence(engine, later)
        assert again["id"] == first["id"] and again["count"] == 2
        assert (again["triage_decision"], again["triage_reason"], again["triaged_by"], again["triaged_at"]) == \
            (None, None, None, None)
        assert again["fired_at"] == later and again["triage_escalated_at"] is None and again["assignee"] == "bob"
        assert again["version"] == decided["version"] + 1  # a form still showing the decision is stale
        assert wall.board(engine, at=later)["critical"]["total"] == 1  # the wall shows it again
    retriage = [e for e in trail(engine, "alert", first["id"]) if e["action"] == "retriage"]
    assert len(retriage) == 1 and retriage[0]["actor"] == "auditbook"
    assert retriage[0]["before"]["triage_decision"] == "false-positive"
    assert retriage[0]["after"]["triage_decision"] is None
    assert "new occurrence" in retriage[0]["note"] and "after the decision" in retriage[0]["note"]
    escalated = triage.escalate_triage_breaches(engine, later + dt.timedelta(minutes=20))  # critical: 15 min
    assert [e["alert"] for e in escalated] == [first["id"]]
    with pytest.raises(alerts.StaleAlert):
        triage.triage(engine, ANALYST, first["id"], decided["version"], decision="false-positive", reason="still")


def test_a_reopened_true_positive_keeps_its_incident_and_an_earlier_event_reopens_nothing(engine):
    with freeze_time(T0):
        first = occurrence(engine, T0, severity="high")
    with freeze_time(T0 + dt.timedelta(minutes=10)):
        decided = triage.triage(engine, ANALYST, first["id"], first["version"], decision="true-positive",
                                reason="real")
        late_report = occurrence(engine, T0 + dt.timedelta(minutes=5))  # happened before the decision
    assert late_report["triage_decision"] == "true-positive" and late_report["version"] == decided["version"]
    with freeze_time(T0 + dt.timedelta(hours=1)):
        again = occurrence(engine, T0 + dt.timedelta(hours=1))
    assert again["triage_decision"] is None and again["incident_id"] == decided["incident_id"]


def test_lifting_a_suppression_is_on_each_alert_and_an_overlapping_one_takes_over(engine):
    now = dt.datetime.now(dt.timezone.utc)
    a = occurrence(engine, now)
    month = suppressions.suppress(engine, ANALYST, rule="RootAccountUsage", labels={"account": "111111111111"},
                                  until=now + dt.timedelta(days=30), reason="migration")
    drill = suppressions.suppress(engine, ANALYST, rule="RootAccountUsage", labels={"region": "eu-west-1"},
                                  until=now + dt.timedelta(days=10), reason="region drill")
    suppressions.lift(engine, ANALYST, month["id"], month["version"], "migration done early")
    after = alerts.get(engine, a["id"])
    assert after["suppression_id"] == drill["id"] and after["suppressed_until"] == drill["until"]
    lifts = [e for e in trail(engine, "alert", a["id"]) if e["action"] == "lift"]
    assert [(e["note"], e["before"]["suppression"], e["after"]["suppression"]) for e in lifts] == [
        ("migration done early", month["id"], drill["id"])]
    suppressions.lift(engine, ANALYST, drill["id"], drill["version"], "drill over")
    assert alerts.get(engine, a["id"])["suppressed_until"] is None
    lifts = [e for e in trail(engine, "alert", a["id"]) if e["action"] == "lift"]
    assert [(e["note"], e["after"]) for e in lifts][-1] == ("drill over", {"suppression": None, "until": None})


@pytest.mark.parametrize("name, value", [("until", "9999-12-31"), ("since", "0001-01-01T00:00:00+01:00"),
                                         ("until", "9999-12-31T23:59:59-01:00")])
def test_calendar_edge_filter_dates_are_named_errors(name, value):
    with pytest.raises(UserError, match=re.escape(f"{name}: '{value}' is out of range")):
        alert_views.parse_filters({name: [value]})


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_calendar_edge_suppression_until_is_a_named_error(value):
    with pytest.raises(UserError, match=re.escape(f"--until: '{value}' is out of range")):
        suppressions.parse_until(value)


def test_an_alert_reopened_by_a_new_occurrence_is_announced_again(engine, monkeypatch):
    from auditbook.monitor import notify
    sent = []
    monkeypatch.setattr(notify, "_post", lambda url, body, **kw: sent.append(body) or (200, "ok", 1))
    channel = notify.Channel(name="soc", kind="slack", url="https://hooks.example.invalid/x")
    with freeze_time(T0):
        first = occurrence(engine, T0)
        assert notify.dispatch(engine, [channel])["sent"] == 1
    with freeze_time(T0 + dt.timedelta(minutes=10)):
        triage.triage(engine, ANALYST, first["id"], first["version"], decision="false-positive", reason="drill")
        assert notify.dispatch(engine, [channel])["sent"] == 0  # a decision is not news
    later = T0 + dt.timedelta(days=30)
    with freeze_time(later):
        occurrence(engine, later)
        assert notify.dispatch(engine, [channel])["sent"] == 1  # reopened: announced again, once
        assert notify.dispatch(engine, [channel])["sent"] == 0
    assert len(sent) == 2
