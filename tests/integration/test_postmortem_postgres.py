"""Post-mortems on a real PostgreSQL server: the migration's columns and tables, the same file attached
by concurrent writers (stored once, both attachments kept), and two analysts marking one action item
(exactly one wins, the other gets the current state)."""
import hashlib
import threading

from sqlalchemy import text

from auditbook.auth import Actor
from auditbook.monitor import incident_attachments, incidents, postmortem
from auditbook.store.db import HEAD_REVISION, current_revision, open_engine

ANALYST = Actor("ana", "analyst")


def _together(calls) -> list:
    """Run the calls at the same moment in threads; each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each writer got
            results[i] = exc
    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_postmortem_on_postgres(postgres):
    engine = open_engine(postgres.database())
    assert engine.dialect.name == "postgresql" and current_revision(engine) == HEAD_REVISION
    one = incidents.create(engine, ANALYST, title="keys leaked", severity="critical")
    two = incidents.create(engine, ANALYST, title="same extract", severity="low")
    body = b"CloudTrail extract " * 1000
    made = _together([lambda i=i: incident_attachments.attach(engine, ANALYST, i, "extract.txt", body)
                      for i in (one["id"], two["id"]) for _ in range(3)])
    assert all(isinstance(m, dict) for m in made), made
    sha = hashlib.sha256(body).hexdigest()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM documents WHERE sha256 = :s"), {"s": sha}).scalar() == 1
    assert len(incident_attachments.attachments(engine, one["id"])) == 3
    assert incident_attachments.attachment_content(engine, made[0]["id"])[1] == body

    item = postmortem.add_action(engine, ANALYST, one["id"], owner="kim", due="2026-12-01", text="Rotate keys")
    got = _together([lambda who=who: postmortem.set_action_done(engine, Actor(who, "analyst"), item["id"], 1)
                     for who in ("ana", "bob")])
    winners = [g for g in got if isinstance(g, dict)]
    losers = [g for g in got if isinstance(g, postmortem.ActionConflict)]
    assert len(winners) == 1 and len(losers) == 1 and losers[0].current["done_by"] == winners[0]["done_by"]

    inc = incidents.update(engine, ANALYST, one["id"], one["version"], status="resolved", customers_affected="12",
                           customers_notified_on="2026-11-02", category="credential compromise")
    closed = incidents.update(engine, ANALYST, one["id"], inc["version"], status="closed",
                              root_cause="A key was committed to a public repository.",
                              lessons_learned="Scan commits for secrets before they are pushed.")
    again = incidents.detail(engine, one["id"])
    assert closed["status"] == "closed" and again["customers_affected"] == 12
    assert str(again["customers_notified_on"]) == "2026-11-02" and again["actions"][0]["done_at"] is not None
