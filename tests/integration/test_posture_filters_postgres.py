"""The posture filters, the changes between runs, the wall's counts and the one-scan slot on a real
PostgreSQL (tests/pgserver.py): the same answers as SQLite gives for tests/wall_store.py's known
history (the changes' materialized CTEs and the slot's unique index are the database's work)."""
import threading

from auditbook.auth import Actor
from auditbook.catalog.model import load_catalog
from auditbook.history import posture_filters
from auditbook.history.posture_filters import Filters
from auditbook.monitor import scan_requests
from auditbook.monitor import wall as board
from auditbook.store.db import open_engine
from tests.posture_store import REGION, A
from tests.wall_store import build


def test_filters_changes_wall_and_scan_slot_on_postgres(postgres):
    db = postgres.database()
    made = build(db)
    engine, r = open_engine(db), made["runs"]
    assert posture_filters.index_tags(engine) == 5
    found = posture_filters.changes(engine, r[1], r[3])
    assert {k: sorted((x["resource_name"], x["before"], x["after"]) for x in v["rows"]) for k, v in found.items()} == {
        "new": [("sg-b2", "—", "FAIL")], "regressed": [("sg-a1", "PASS", "FAIL"), ("sg-b1", "PASS", "FAIL")],
        "fixed": [("bucket-a", "FAIL", "PASS"), ("sg-a2", "FAIL", "gone")]}
    tagged = posture_filters.changes(engine, r[1], r[3], Filters(account=A, tag=("environment", "prod")))
    assert [x["resource_name"] for x in tagged["regressed"]["rows"]] == ["sg-a1"] and tagged["fixed"]["total"] == 1
    cc66 = next(c for c in posture_filters.criteria(engine, load_catalog(), r[3], Filters(tag=("env", "staging")), set())
                if c["criterion"] == "CC6.6")
    assert (cc66["pass"], cc66["fail"]) == (0, 1)
    shown = board.board(engine, alerts=7)
    assert shown["alerts"]["total"] == 11 and shown["alerts"]["more"] == 4 and shown["critical"]["total"] == 1
    assert [a["severity"] for a in shown["alerts"]["shown"]][:2] == ["critical", "high"]
    outcomes, barrier = [], threading.Barrier(4)

    def ask(i):
        barrier.wait()
        try:
            outcomes.append(scan_requests.request_scan(engine, Actor(f"admin{i}", "admin"), {"regions": REGION})["id"])
        except scan_requests.ScanBusy:
            outcomes.append("busy")
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert outcomes.count("busy") == 3 and len(scan_requests.recent(engine, 10)) == 1
