"""Alert triage on a real PostgreSQL (tests/pgserver.py): the filters on JSON labels, the severity
order, the overdue and suppressed filters, escalation, and two analysts triaging the same alert at
the same moment — exactly one wins, the other is told, nothing is lost (UPDATE … WHERE version)."""
import datetime as dt
import threading

from auditbook.auth import Actor
from auditbook.monitor import alert_views, alerts, incidents, suppressions, triage
from auditbook.store.db import open_engine
from auditbook.store.session import writing


def _fill(engine) -> list[int]:
    at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)
    ids = []
    with writing(engine) as session:
        for n, (severity, account) in enumerate((("low", "111111111111"), ("critical", "111111111111"),
                                                 ("high", "222222222222"), ("critical", "222222222222"))):
            ids.append(alerts.fire(session, rule="RootAccountUsage", labels={"account": account, "region": "eu-west-1",
                                                                             "n": str(n)},
                                   severity=severity, soc2_control="CC7.2", summary=f"alert {n}",
                                   at=at + dt.timedelta(minutes=n))["id"])
    return ids


def test_filters_suppressions_and_concurrent_triage_on_postgres(postgres):
    engine = open_engine(postgres.database())
    i = _fill(engine)
    page = alert_views.page(engine, alert_views.parse_filters({})[0])
    assert [a["id"] for a in page["rows"]] == [i[1], i[3], i[2], i[0]] and page["by_state"] == {"firing": 4}
    query, _ = alert_views.parse_filters({"account": ["222222222222"], "region": ["eu-west-1"]})
    assert [a["id"] for a in alert_views.page(engine, query)["rows"]] == [i[3], i[2]]
    assert alert_views.facets(engine)["accounts"] == ["111111111111", "222222222222"]
    ana, bob = Actor("ana", "analyst"), Actor("bob", "analyst")
    made = suppressions.suppress(engine, ana, rule="RootAccountUsage", labels={"account": "111111111111"},
                                 until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1), reason="drill")
    assert made["alerts"] == [i[0], i[1]]
    query, _ = alert_views.parse_filters({"suppressed": ["no"]})
    assert [a["id"] for a in alert_views.page(engine, query)["rows"]] == [i[3], i[2]]
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)  # critical (15 min), high (60 min) missed
    escalated = triage.escalate_triage_breaches(engine, later)
    assert sorted(e["alert"] for e in escalated) == [i[2], i[3]]  # the suppressed ones are not escalated

    version = alerts.get(engine, i[3])["version"]
    outcomes, barrier = [], threading.Barrier(2)

    def decide(actor, decision):
        barrier.wait()
        try:
            triage.triage(engine, actor, i[3], version, decision=decision, reason=f"{actor.name} says so")
            outcomes.append(actor.name)
        except alerts.StaleAlert:
            outcomes.append("stale")

    threads = [threading.Thread(target=decide, args=(ana, "true-positive")),
               threading.Thread(target=decide, args=(bob, "false-positive"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes).count("stale") == 1, outcomes
    winner = next(o for o in outcomes if o != "stale")
    final = alerts.get(engine, i[3])
    assert final["triaged_by"] == winner and final["version"] == version + 1
    assert len(incidents.list_incidents(engine)) == (1 if winner == "ana" else 0)  # the loser's incident rolled back


def test_a_later_occurrence_reopens_triage_and_a_lift_hands_over_on_postgres(postgres):
    engine = open_engine(postgres.database())
    i = _fill(engine)
    ana = Actor("ana", "analyst")
    decided = triage.triage(engine, ana, i[1], alerts.get(engine, i[1])["version"], decision="false-positive",
                            reason="drill")
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    with writing(engine) as session:
        alerts.fire(session, rule="RootAccountUsage", labels={"account": "111111111111", "region": "eu-west-1",
                                                              "n": "1"},
                    severity="critical", soc2_control="CC7.2", summary="alert 1", at=later)
    again = alerts.get(engine, i[1])
    assert again["triage_decision"] is None and again["fired_at"] == later
    assert again["version"] == decided["version"] + 1
    now = dt.datetime.now(dt.timezone.utc)
    long = suppressions.suppress(engine, ana, rule="RootAccountUsage", labels={"account": "111111111111"},
                                 until=now + dt.timedelta(days=30), reason="migration")
    short = suppressions.suppress(engine, ana, rule="RootAccountUsage", labels={"region": "eu-west-1"},
                                  until=now + dt.timedelta(days=10), reason="drill")
    suppressions.lift(engine, ana, long["id"], long["version"], "done")
    assert [alerts.get(engine, n)["suppressed_until"] for n in i] == [short["until"]] * 4
