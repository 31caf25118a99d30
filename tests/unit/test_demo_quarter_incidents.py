"""The demo quarter's incidents (auditor's finding 1: CC7.4 passed on an empty incident population while
the quarter's changes and management's responses cite INC-2041 and INC-2077). The on-call opens each
from the alert that raised it and closes it, on the simulated incident clock, so both are incidents of
the period; their records (CC7.4's per-incident item) are uploaded after the quarter, explained and
approved — and CC7.4's per-incident item is judged on a population of two."""
import datetime as dt

import pytest

from auditbook.catalog.model import load_catalog
from auditbook.demo import quarter_incidents as qi
from auditbook.demo.clock import alert_clock, incident_clock
from auditbook.demo.quarter import APPROVER, LATE_UPLOAD, SUBMITTER
from auditbook.history.incidents import incidents_in_period
from auditbook.history.period import quarter
from auditbook.monitor import alerts
from auditbook.monitor import incidents as incident_service
from auditbook.scan import evidence_documents, evidence_status
from auditbook.store.session import writing

Q = quarter(2026, 3)
DAY = dt.timedelta(days=1)


def _fire(engine, at: dt.datetime, rule: str, summary: str) -> None:
    with alert_clock(at), writing(engine) as session:
        alerts.fire(session, rule=rule, labels={"summary": summary}, severity="high", soc2_control="CC6.6",
                    summary=summary, at=at)


@pytest.fixture(scope="module")
def worked(tmp_path_factory):
    from auditbook.store.db import open_engine
    engine, catalog = open_engine(f"sqlite:///{tmp_path_factory.mktemp('incidents')}/i.db"), load_catalog()
    start = dt.datetime.combine(Q.start, dt.time(), dt.timezone.utc)
    _fire(engine, start + 16 * DAY + dt.timedelta(hours=17, minutes=58), "SecurityGroupOpenedToWorld",
          "a security group was opened to 0.0.0.0/0 or ::/0")
    _fire(engine, start + 38 * DAY + dt.timedelta(hours=6), "CheckRegressed",
          "s3-bucket-public-access-block passed in the previous run and fails now on prod-customer-data")
    made = qi.QuarterIncidents(engine, Q.start)
    for day in range(92):
        made.after_scan(day)
    return {"engine": engine, "catalog": catalog, "made": made, "records": made.records(catalog)}


def test_the_incident_clock_stamps_the_simulated_moment_and_is_restored(tmp_path):
    from auditbook.auth import Actor
    from auditbook.store.db import open_engine
    engine, moment = open_engine(f"sqlite:///{tmp_path}/c.db"), dt.datetime(2026, 7, 18, 6, 40, tzinfo=dt.timezone.utc)
    real = incident_service.now
    with incident_clock(moment):
        made = incident_service.create(engine, Actor("a (SIMULATED)", "analyst"), title="t", severity="low")
    assert moment <= made["created_at"] < moment + dt.timedelta(seconds=5)
    assert incident_service.now is real
    with pytest.raises(RuntimeError), incident_clock(moment):
        raise RuntimeError("a failed simulated day")
    assert incident_service.now is real


def test_the_tickets_the_quarter_cites_are_incidents_of_the_period_opened_from_their_alerts(worked):
    found = incidents_in_period(worked["engine"], Q)
    assert [i["id"] for i in found] == [worked["made"].opened["INC-2041"], worked["made"].opened["INC-2077"]]
    first, second = found
    assert first["title"].startswith("SIMULATED INC-2041: SecurityGroupOpenedToWorld")
    assert second["title"].startswith("SIMULATED INC-2077: CheckRegressed: s3-bucket-public-access-block")
    assert [(i["created_at"].date(), i["resolved_at"].date(), i["closed_at"].date(), i["status"]) for i in found] == [
        (dt.date(2026, 7, 18), dt.date(2026, 7, 21), dt.date(2026, 7, 21), "closed"),
        (dt.date(2026, 8, 8), dt.date(2026, 8, 15), dt.date(2026, 8, 15), "closed")]
    assert all(i["acknowledged_at"] - i["created_at"] < dt.timedelta(minutes=60) for i in found)
    assert all("SIMULATED" in i["root_cause"] and "SIMULATED" in i["lessons_learned"] for i in found)
    assert all(i["created_by"] == qi.ONCALL.name and "SIMULATED" in i["created_by"] for i in found)
    assert all(Q.start <= e["at"].date() <= Q.end for i in found for e in i["timeline"])  # in the period
    assert all(any(link["kind"] == "alert" for link in i["links"]) for i in found)


def test_each_incident_has_its_record_explained_and_approved_so_cc74_is_judged_on_two(worked):
    docs = [d for d in evidence_documents(worked["engine"]) if d.item == qi.RECORDS_ITEM]
    assert worked["records"] == len(docs) == 2
    assert sorted(d.incident_id for d in docs) == sorted(worked["made"].opened.values())
    assert all((d.status, d.submitted_by, d.decided_by, d.explanation) == ("approved", SUBMITTER.name, APPROVER.name,
                                                                          LATE_UPLOAD) for d in docs)
    (state,) = [s for s in evidence_status(worked["engine"], worked["catalog"], Q.end, since=Q.start)
                if (s.criterion, s.item) == (qi.RECORDS_CRITERION, qi.RECORDS_ITEM)]
    assert state.state == "current" and sorted(state.events) == sorted(worked["made"].opened.values())

    for day in (dt.date(2026, 7, 18), dt.date(2026, 7, 20), dt.date(2026, 8, 8), dt.date(2026, 8, 14)):  # while open
        (state,) = [s for s in evidence_status(worked["engine"], worked["catalog"], day, since=Q.start)
                    if (s.criterion, s.item) == (qi.RECORDS_CRITERION, qi.RECORDS_ITEM)]
        assert state.state == "current", (day, state)  # never an incident without its record (no deviation)


def test_an_incident_without_its_alert_is_an_error_not_an_empty_story(tmp_path):
    from auditbook.store.db import open_engine
    made = qi.QuarterIncidents(open_engine(f"sqlite:///{tmp_path}/e.db"), Q.start)
    with pytest.raises(RuntimeError, match="no SecurityGroupOpenedToWorld alert for INC-2041"):
        made.after_scan(17)
