"""Starting a scan from the control room: admins only; one at a time (a request holds the store's one
scan slot: two admins or two tabs cannot start two); who started it and how it ended in the audit
trail; progress written as it goes; the result or the error shown on the posture page. The scan itself
is a stand-in for auditbook.scan.run_scan (the same keyword interface), so no AWS is needed."""
import datetime as dt
import re
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from auditbook.auth import Actor, PermissionDenied
from auditbook.catalog.model import load_catalog
from auditbook.errors import UserError
from auditbook.monitor import scan_requests
from auditbook.store import audit_log
from auditbook.store.db import open_engine
from auditbook.store.session import reading
from tests.posture_store import REGION, build

ENTRY = str(Path(__file__).resolve().parents[2] / "app" / "control_room.py")
ADMIN = Actor("adm@soc.example", "admin")
EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture
def store(tmp_path):
    db = f"sqlite:///{tmp_path}/scan.db"
    runs = build(db)
    return {"db": db, "engine": open_engine(db), "runs": runs}


def fake_scan(run_id=42, fail=None, seen=None):
    """A stand-in for run_scan: plans three jobs, reports each, then returns a run id or raises."""
    def scan(**kwargs):
        if seen is not None:
            seen.update(kwargs)
        kwargs["on_plan"](3)
        for label in ("111111111111 us-east-1 aws.s3.bucket", "a", "b"):
            kwargs["on_progress"](label)
        if fail is not None:
            raise fail
        return SimpleNamespace(run_id=run_id)
    return scan


def shown(markdown: str) -> str:
    """What a reader sees of markdown written through ui.md (backslash escapes removed)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def trail(engine, request_id):
    with reading(engine) as session:
        return audit_log.trail(session, "scan", request_id)


def test_one_scan_at_a_time_and_the_slot_is_freed_when_it_ends(store):
    e = store["engine"]
    options = scan_requests.scan_options(e, load_catalog())
    assert options["regions"] == REGION  # the latest run's regions by default
    made = scan_requests.request_scan(e, ADMIN, options)
    assert made["state"] == "queued" and made["requested_by"] == ADMIN.name and made["active"]
    with pytest.raises(scan_requests.ScanBusy, match=f"requested by {ADMIN.name}"):
        scan_requests.request_scan(e, Actor("other@soc.example", "admin"), options)
    assert [r["id"] for r in scan_requests.recent(e, 10)] == [made["id"]]  # the refused one left nothing
    done = scan_requests.execute(e, store["db"], made["id"], scan=fake_scan())
    assert (done["state"], done["run_id"], done["active"]) == ("done", 42, False)
    assert scan_requests.current(e) is None
    again = scan_requests.request_scan(e, Actor("other@soc.example", "admin"), options)
    assert again["id"] != made["id"] and scan_requests.current(e)["id"] == again["id"]


def test_two_admins_asking_at_the_same_moment_start_one_scan(store):
    e, options = store["engine"], scan_requests.scan_options(store["engine"], load_catalog())
    barrier, outcomes = threading.Barrier(4), []

    def ask(i):
        barrier.wait()
        try:
            outcomes.append(scan_requests.request_scan(e, Actor(f"admin{i}", "admin"), options)["id"])
        except scan_requests.ScanBusy:
            outcomes.append("busy")
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes, key=str).count("busy") == 3 and len(scan_requests.recent(e, 10)) == 1


@pytest.mark.parametrize("role", ["viewer", "analyst", "auditor", "wall"])
def test_only_admins_start_scans(store, role):
    with pytest.raises(PermissionDenied):
        scan_requests.request_scan(store["engine"], Actor("x", role), {"regions": REGION})
    assert scan_requests.recent(store["engine"]) == []


def test_progress_result_and_who_started_it_are_recorded(store):
    e, seen = store["engine"], {}
    made = scan_requests.request_scan(e, ADMIN, scan_requests.scan_options(e, load_catalog(), criterion="CC6.6"))
    done = scan_requests.execute(e, store["db"], made["id"], scan=fake_scan(seen=seen))
    assert (done["planned"], done["done"], done["current"]) == (3, 3, "b")
    assert seen["criterion"] == "CC6.6" and seen["regions"] == REGION and seen["db"] == store["db"]
    entries = trail(e, made["id"])
    assert [(x["action"], x["actor"], x["role"]) for x in entries] == [
        ("start_scan", ADMIN.name, "admin"), ("finish_scan", "auditbook", "system")]
    assert entries[1]["after"] == {"state": "done", "run_id": 42}


@pytest.mark.parametrize("error, shown", [(UserError(f"regions: {EVIL} is not a region"), f"regions: {EVIL} is not a region"),
                                          (RuntimeError("boom\nsecond line"), "RuntimeError: boom second line")])
def test_a_failed_scan_records_its_error_and_frees_the_slot(store, error, shown):
    e = store["engine"]
    made = scan_requests.request_scan(e, ADMIN, {"regions": REGION})
    done = scan_requests.execute(e, store["db"], made["id"], scan=fake_scan(fail=error))
    assert (done["state"], done["error"], done["active"]) == ("failed", shown, False)
    assert trail(e, made["id"])[-1]["note"] == shown and scan_requests.current(e) is None


def test_a_request_whose_server_stopped_is_abandoned_by_the_next(store, monkeypatch):
    e = store["engine"]
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    monkeypatch.setattr(scan_requests, "now", lambda: long_ago)
    stuck = scan_requests.request_scan(e, ADMIN, {"regions": REGION})
    monkeypatch.setattr(scan_requests, "now", lambda: long_ago + dt.timedelta(minutes=5))
    with pytest.raises(scan_requests.ScanBusy):  # five minutes without a heartbeat: still running
        scan_requests.request_scan(e, ADMIN, {"regions": REGION})
    monkeypatch.undo()
    fresh = scan_requests.request_scan(e, ADMIN, {"regions": REGION})
    old = next(r for r in scan_requests.recent(e, 5) if r["id"] == stuck["id"])
    assert old["state"] == "abandoned" and "no progress since" in old["error"] and fresh["active"]
    assert [x["action"] for x in trail(e, stuck["id"])] == ["start_scan", "abandon_scan"]


@pytest.mark.parametrize("regions, criterion, message", [(EVIL, "", "region"), ("", EVIL, "not a criterion")])
def test_bad_scan_options_are_refused_before_anything_is_stored(store, regions, criterion, message):
    with pytest.raises(UserError, match=message):
        scan_requests.scan_options(store["engine"], load_catalog(), regions=regions, criterion=criterion)
    assert scan_requests.recent(store["engine"]) == []


# -- the posture page ----------------------------------------------------------------------------

@pytest.fixture
def page(store, monkeypatch):
    monkeypatch.setenv("AUDITBOOK_DB", store["db"])

    def make(role):
        monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", role)
        at = AppTest.from_file(ENTRY, default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return make


@pytest.mark.parametrize("role", ["viewer", "analyst", "auditor"])
def test_only_admins_see_the_start_scan_form(page, role):
    assert "Start scan" not in {b.label for b in page(role).button}
    assert "Start scan" in {b.label for b in page("admin").button}


def test_admin_starts_a_scan_from_the_page_and_sees_its_result(page, store, monkeypatch):
    started = []

    def run_now(engine, db_url, request_id, **kwargs):  # the background thread, run in this one
        started.append(request_id)
        scan_requests.execute(engine, db_url, request_id, scan=fake_scan(run_id=store["runs"][3]), **kwargs)
    monkeypatch.setattr(scan_requests, "start_in_background", run_now)
    at = page("admin")
    next(b for b in at.button if b.label == "Start scan").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(started) == 1
    assert trail(store["engine"], started[0])[0]["actor"].endswith("(local)")
    assert any(f"Scan {started[0]} requested by" in shown(s.value) and f"done, run {store['runs'][3]} stored" in shown(s.value)
               for s in at.success)


def test_a_running_scan_shows_its_progress_and_no_second_can_start(page, store, monkeypatch):
    e, seen = store["engine"], {}
    monkeypatch.setattr(scan_requests, "PROGRESS_SECONDS", 0.0)  # every step written at once

    def scan(**kwargs):  # the page is looked at while the scan runs, after four of ten jobs
        kwargs["on_plan"](10)
        for label in ("111111111111 us-east-1 aws.s3.bucket", "x", "y", "z"):
            kwargs["on_progress"](label)
        seen["page"] = page("admin")
        return SimpleNamespace(run_id=store["runs"][3])
    made = scan_requests.request_scan(e, ADMIN, {"regions": REGION})
    scan_requests.execute(e, store["db"], made["id"], scan=scan)
    at = seen["page"]
    bar = at.get("progress")
    assert bar and "4 of 10 collection jobs" in bar[0].proto.text and bar[0].proto.value == 40
    assert next(b for b in at.button if b.label == "Start scan").disabled
    assert scan_requests.current(e) is None  # ended: the slot is free again


def test_a_failed_scan_is_shown_escaped(page, store):
    e = store["engine"]
    made = scan_requests.request_scan(e, ADMIN, {"regions": REGION})
    scan_requests.execute(e, store["db"], made["id"], scan=fake_scan(fail=UserError(f"profile {EVIL} unknown")))
    at = page("viewer")
    error = next(x.value for x in at.error if f"Scan {made['id']}" in shown(x.value))
    assert "failed" in error and "\\<img src" in error and "<img src" not in error.replace("\\<img src", "")
