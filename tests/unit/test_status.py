"""One status per criterion (issue 14 §1): the rule (history.status.status_of over evaluate's
criterion_status), and every service that shows a criterion's status — the packet's overview and
criterion history, the control room's posture and tiles, the exports — giving the same one from the
same store. The packet's closed-period wording (§9) is at the end."""
import datetime as dt

import pytest

from auditbook.auth import Actor
from auditbook.catalog.model import load_catalog
from auditbook.history.status import NO_DATA, status_of
from auditbook.history.type2 import CriterionHistory

RUN_DAY = dt.datetime(2026, 7, 6, 6, 0, tzinfo=dt.timezone.utc)
ALICE, BOB = Actor("alice@corp.example", "analyst"), Actor("bob@corp.example", "approver")


@pytest.mark.parametrize("counts, manual, expected", [
    ({"PASS": 3}, [], "PASS"),
    ({"PASS": 3}, ["current", "current"], "PASS"),
    ({"PASS": 3}, ["current", "missing"], "NEEDS_EVIDENCE"),
    ({"PASS": 3}, ["expired"], "NEEDS_EVIDENCE"),
    ({}, ["missing"], "NEEDS_EVIDENCE"),  # no check at all: the document decides, never a pass without it
    ({"PASS": 1, "EXCEPTED": 1}, ["missing"], "NEEDS_EVIDENCE"),  # an accepted exception does not hide it
    ({"PASS": 1, "EXCEPTED": 1}, ["current"], "EXCEPTED"),
    ({"PASS": 1, "ERROR": 1}, ["missing"], "ERROR"),  # an evidence gap outranks it
    ({"FAIL": 1, "ERROR": 1}, ["missing"], "FAIL"),  # and a failure outranks everything
    (None, [], NO_DATA),  # the run recorded nothing for the criterion
    (None, ["missing"], "NEEDS_EVIDENCE"),
])
def test_the_rule(counts, manual, expected):
    assert status_of(counts, manual) == expected


def _history(latest: list[dict], manual: list[str]) -> CriterionHistory:
    return CriterionHistory("CC1.2", [], [], [], [], [], 1 if latest else None, latest, manual)


def test_a_criterion_page_is_never_pass_while_its_manual_evidence_is_missing():
    """The regression: the page's status used the latest run's findings only (CC1.2 has no check, so
    it said "pass" while both its required items were missing)."""
    assert _history([], ["missing", "missing"]).status == "NEEDS_EVIDENCE"
    assert _history([{"status": "PASS"}], ["current", "expired"]).status == "NEEDS_EVIDENCE"
    assert _history([{"status": "PASS"}, {"status": "FAIL"}], ["missing"]).status == "FAIL"
    assert _history([{"status": "PASS"}], ["current"]).status == "PASS"


# -- every service, one store ---------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    """One run on 6 July (nothing collected) with a catalog of CC1.1, CC6.6 and A1.2; then CC1.1's two
    documents, effective in June, submitted and approved after the run."""
    from auditbook.collect.records import Collection
    from auditbook.evaluate.risk_register import load_register
    from auditbook.history.evidence_events import annotate_evidence
    from auditbook.scan import add_evidence, decide_evidence, record_run
    from auditbook.store.db import open_engine
    from tests.packet_store import small_catalog
    catalog = load_catalog(small_catalog(tmp_path / "catalog.yaml"))
    engine = open_engine(f"sqlite:///{tmp_path}/status.db")
    params = {"catalog": catalog.path, "regions": ["us-east-1"], "resource_types": [], "simulated": None}
    run_id, _, summary = record_run(engine, catalog, load_register(tmp_path / "none.yaml"), Collection(), [], params,
                                    RUN_DAY, RUN_DAY + dt.timedelta(minutes=1))
    recorded = {s["control"]: s["status"] for s in summary}
    for item in catalog.control("CC1.1").manual_evidence:
        doc = tmp_path / f"{item.name}.txt"
        doc.write_text(f"CC1.1: {item.name}")
        row = add_evidence(engine, catalog, "CC1.1", doc, effective=dt.date(2026, 6, 20), owner="people ops",
                           item=item.name, actor=ALICE, today=dt.date(2026, 9, 1))
        row = annotate_evidence(engine, catalog, ALICE, row.id, row.version,  # backdated: explained
                                explanation="signed copies collected after the July review")
        decide_evidence(engine, BOB, row.id, row.version, "approve", "read and accepted")
    return {"engine": engine, "catalog": catalog, "run": run_id, "recorded_at_scan": recorded}


def _everywhere(store) -> dict[str, dict[str, str]]:
    from auditbook.history import posture
    from auditbook.history.period import parse_period, period_runs
    from auditbook.history.type2 import criterion_history, overview
    from auditbook.report.exports.view import load_view, render
    engine, catalog, run = store["engine"], store["catalog"], store["run"]
    runs = period_runs(engine, parse_period(start="2026-07-01", end="2026-07-06"))
    today = dt.date(2026, 9, 1)
    oscal = render(engine, run, "oscal", catalog)["assessment-results"]["results"][0]["findings"]
    return {
        "packet index": {r["criterion"]: r["status"] for r in overview(engine, catalog, runs, today=today)},
        "criterion pages": {c.id: criterion_history(engine, catalog, c.id, runs, today=today).status
                            for c in catalog.controls},
        "posture": {r["criterion"]: r["status"] for r in posture.criteria(engine, catalog, run)},
        "export summary": {r["control"]: r["status"] for r in load_view(engine, run, catalog).summary()},
        "oscal": {f["target"]["target-id"]: f["target"]["status"]["remarks"] for f in oscal},
    }


def test_every_service_gives_the_same_status(store):
    seen = _everywhere(store)
    expected = {"CC1.1": "PASS", "CC6.6": "NEEDS_EVIDENCE", "A1.2": "NEEDS_EVIDENCE"}
    for where, statuses in seen.items():
        assert statuses == expected, where
    # the scan itself saw CC1.1's documents missing (they came later, backdated): the status read
    # now is the one status, the same in the control room as in the packet
    assert store["recorded_at_scan"]["CC1.1"] == "NEEDS_EVIDENCE"


def test_a_run_stored_before_counts_were_kept_gets_the_same_status(store):
    """Older stores have no per-run criterion counts: the status is counted from the run's findings."""
    from sqlalchemy import delete

    from auditbook.store.models import CriterionCount
    from auditbook.store.session import writing
    before = _everywhere(store)
    with writing(store["engine"]) as session:
        session.execute(delete(CriterionCount).where(CriterionCount.run_id == store["run"]))
    assert _everywhere(store) == before


def test_the_control_room_counts_the_same_statuses(store):
    from auditbook.history import posture
    engine, catalog, run = store["engine"], store["catalog"], store["run"]
    assert posture.latest_run(engine, catalog)["needs_evidence"] == ["A1.2", "CC6.6"]
    tiles = {t["category"]: t for t in posture.wall_tiles(engine, catalog, run)}
    assert (tiles["security"]["PASS"], tiles["security"]["NEEDS_EVIDENCE"]) == (1, 1)
    assert (tiles["availability"]["PASS"], tiles["availability"]["NEEDS_EVIDENCE"]) == (0, 1)


def test_a_pending_document_leaves_the_criterion_needing_evidence_everywhere(store, tmp_path):
    from auditbook.scan import add_evidence
    engine, catalog = store["engine"], store["catalog"]
    item = catalog.control("CC6.6").manual_evidence[0]
    doc = tmp_path / "diagram.txt"
    doc.write_text("network diagram")
    add_evidence(engine, catalog, "CC6.6", doc, effective=dt.date(2026, 7, 1), owner="platform", item=item.name,
                 actor=ALICE, today=dt.date(2026, 9, 1))  # submitted, never approved
    assert {statuses["CC6.6"] for statuses in _everywhere(store).values()} == {"NEEDS_EVIDENCE"}


# -- §9: a closed period is described as closed ---------------------------------------------------

def _runs(days: list[int], end: int = 10):
    from auditbook.history.period import Period, PeriodRuns, RunInfo
    period = Period(dt.date(2026, 7, 1), dt.date(2026, 7, end), "p")
    runs = [RunInfo(i, dt.datetime(2026, 7, d, 6, tzinfo=dt.timezone.utc), frozenset(), False)
            for i, d in enumerate(days, 1)]
    return PeriodRuns(period, runs)


def _line(cov) -> str:
    from auditbook.report import page_helpers as nbh
    return nbh.coverage(cov).data


def test_a_closed_period_says_closed_and_names_its_gap_days():
    cov = _runs([1, 2, 3, 5, 6, 7, 10]).coverage(dt.date(2026, 8, 1))
    assert (cov["closed"], cov["days"], cov["observed"]) == (True, 10, 7)
    line = _line(cov)
    assert "7 of the 10 days of the period (closed 2026-07-10) had a scan" in line and "so far" not in line
    assert "days without a scan: 2026-07-04, 2026-07-08 to 2026-07-09" in line


def test_a_running_period_says_so_far():
    cov = _runs([1, 2, 3]).coverage(dt.date(2026, 7, 3))
    line = _line(cov)
    assert cov["closed"] is False
    assert "3 of the 3 days of the period so far (it ends 2026-07-10) had a scan" in line
    assert "a scan ran on every day so far" in line and "closed" not in line


def test_a_long_list_of_gaps_is_cut_and_counted():
    cov = _runs(list(range(1, 31, 2)), end=30).coverage(dt.date(2026, 8, 1))  # every other day
    assert len(cov["gaps"]) == 15
    assert "and 3 more" in _line(cov)
