"""Reading a run's findings at organisation scale (issue 16 §4): the statuses a caller wants are chosen
by the database, the posture page's drill-down reads only the first rows worst first with the total, and
a packet kernel reads a run's findings once for every criterion — each giving exactly what the whole
read gives, in the same order. The store: the packet tests' history (tests/packet_store.py)."""
import pytest
from sqlalchemy import event

from auditbook.catalog.model import load_catalog
from auditbook.history import posture, type2
from auditbook.history.period import parse_period, period_runs
from auditbook.store import findings
from auditbook.store.db import open_engine
from auditbook.store.session import reading

ORDER = {"FAIL": 0, "ERROR": 1, "EXCEPTED": 2}


@pytest.fixture(scope="module")
def store(history_store):
    engine = open_engine(history_store["db"])
    with reading(engine) as session:
        every = {run: findings.at_run(session, run) for run in history_store["runs"].values()}
    assert any(f["status"] != "PASS" for rows in every.values() for f in rows)
    return {**history_store, "engine": engine, "every": every, "catalog": load_catalog(),
            "small_catalog": load_catalog(history_store["catalog"])}


def test_a_status_or_check_subset_is_the_whole_read_filtered_in_the_same_order(store):
    with reading(store["engine"]) as session:
        for run, every in store["every"].items():
            for statuses in (["FAIL"], ["PASS"], ["FAIL", "ERROR", "EXCEPTED"]):
                assert findings.at_run(session, run, statuses=statuses) == [f for f in every if f["status"] in statuses]
            checks = sorted({f["check"] for f in every})[::2]
            assert findings.at_run(session, run, checks) == [f for f in every if f["check"] in checks]
            assert findings.at_run(session, run, checks, ["FAIL"]) == [
                f for f in every if f["check"] in checks and f["status"] == "FAIL"]


def test_each_finding_has_its_own_controls_list(store):
    """The JSON columns are decoded once per distinct value: no two findings may share the list."""
    with reading(store["engine"]) as session:
        rows = findings.at_run(session, max(store["every"]))
    checks = [f["check"] for f in rows]
    same = [f for f in rows if f["check"] == max(set(checks), key=checks.count)]
    assert len(same) > 1 and same[0]["controls"] == same[1]["controls"]
    same[0]["controls"].append("changed")
    assert "changed" not in same[1]["controls"]


def _failing_as_before(catalog, every: list[dict], criterion: str) -> list[dict]:
    """posture.failing as it was: the whole read, passing dropped, sorted worst first."""
    checks = {c.id for c in catalog.checks_for(criterion)}
    rows = [f for f in every if f["check"] in checks and f["status"] != "PASS"]
    return sorted(rows, key=lambda f: (ORDER.get(f["status"], 3), f["check"], f["account"], f["resource"]))


def test_the_drill_down_page_is_the_head_of_the_whole_list_with_its_total(store):
    catalog, engine, tried = store["catalog"], store["engine"], 0
    for run, every in store["every"].items():
        for control in catalog.controls:
            whole = _failing_as_before(catalog, every, control.id)
            assert posture.failing(engine, catalog, run, control.id) == whole
            for limit in (0, 1, 2, 500):
                rows, total = posture.failing_page(engine, catalog, run, control.id, limit=limit)
                assert (rows, total) == (whole[:limit], len(whole))
            tried += len(whole) > 1
    assert tried  # some criterion had more than one failing finding to order


def test_passing_findings_are_left_out_by_the_database(store):
    """The drill-down's query asks the store for the findings that are not passing (an organisation's
    criterion has tens of thousands of passing ones)."""
    statements = []

    def seen(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)
    event.listen(store["engine"], "before_cursor_execute", seen)
    try:
        posture.failing_page(store["engine"], store["catalog"], max(store["every"]), "CC6.6")
    finally:
        event.remove(store["engine"], "before_cursor_execute", seen)
    read = [s for s in statements if "FROM finding_states" in s]
    assert read and all("finding_states.status !=" in s for s in read)


def test_a_packet_kernel_reads_the_run_once_and_each_criterion_gets_what_it_reads_alone(store, monkeypatch):
    """criterion_history(shared=True), as the packet's criterion notebooks call it: one read of the
    latest run's findings and one of the period's intervals for all criteria, and each criterion's
    history exactly as read alone."""
    from auditbook.store import history as stored
    catalog = store["small_catalog"]  # the packet's
    engine, reads, interval_reads = store["engine"], [], []
    pruns = period_runs(engine, parse_period(start="2026-07-01", end="2026-07-31"))
    alone = {c.id: type2.criterion_history(engine, catalog, c.id, pruns) for c in catalog.controls}
    real, real_intervals = findings.at_run, stored.finding_intervals

    def counted(session, run_id, checks=None, statuses=None):
        reads.append((run_id, checks))
        return real(session, run_id, checks, statuses)

    def counted_intervals(session, check_ids, lo, hi):
        interval_reads.append(check_ids)
        return real_intervals(session, check_ids, lo, hi)
    monkeypatch.setattr(findings, "at_run", counted)
    monkeypatch.setattr(stored, "finding_intervals", counted_intervals)
    from auditbook.history import shared_reads
    with shared_reads.shared_in_this_thread():  # as a packet kernel shares them (share_in_this_process)
        shared = {c.id: type2.criterion_history(engine, catalog, c.id, pruns, shared=True) for c in catalog.controls}
    assert any(h.latest for h in alone.values()) and any(h.failures for h in alone.values())
    for cid, history in alone.items():
        assert vars(shared[cid]) == vars(history), cid
    assert len(reads) == len({r for r, _ in reads}) and all(checks is None for _, checks in reads)
    assert interval_reads == [sorted(c.id for c in catalog.checks)]
    # outside a sharing block (the control room), shared=True reads the criterion's own checks, every time
    reads.clear(), interval_reads.clear()
    with_checks = next(c for c in catalog.controls if alone[c.id].latest)
    again = type2.criterion_history(engine, catalog, with_checks.id, pruns, shared=True)
    assert vars(again) == vars(alone[with_checks.id])
    own = sorted(c.id for c in catalog.checks_for(with_checks.id))
    assert [sorted(checks) for _, checks in reads] == [own] and [sorted(ids) for ids in interval_reads] == [own]


def test_the_overview_counts_what_the_whole_read_counts(store, monkeypatch):
    """The packet index's overview reads only the check and status of the latest runs' findings; its
    rows are those of counting the whole findings."""
    catalog = store["small_catalog"]
    pruns = period_runs(store["engine"], parse_period(start="2026-07-01", end="2026-07-31"))
    light = type2.overview(store["engine"], catalog, pruns)
    monkeypatch.setattr(findings, "statuses_at_run", findings.at_run)
    assert light == type2.overview(store["engine"], catalog, pruns)
    assert any(row["fail"] for row in light)
    with reading(store["engine"]) as session:
        for run, every in store["every"].items():
            assert sorted((f["check"], f["status"]) for f in findings.statuses_at_run(session, run)) == sorted(
                (f["check"], f["status"]) for f in every)
