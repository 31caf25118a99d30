"""One status, the remaining holes (issue 14 §1): a criterion whose checks' resource types the run did not
read shows NO_DATA (not attempted) or ERROR (attempted, never read: an evidence gap) — never PASS, even
with its manual evidence current; and the posture trend judges each run by the one status rule (the run's
counts, the manual evidence on the run's day, the types it read), not by the status saved at scan time."""
import datetime as dt

import pytest
from freezegun import freeze_time

from auditbook.auth import Actor
from auditbook.catalog.model import load_catalog
from auditbook.history.status import (
    COLLECTED,
    FAILED,
    NOT_COLLECTED,
    coverage_of,
    status_of,
)

ALICE, BOB = Actor("alice@corp.example", "analyst"), Actor("bob@corp.example", "approver")
DAY = dt.datetime(2026, 7, 6, 6, 0, tzinfo=dt.timezone.utc)
SG, RDS = "aws.ec2.security_group", "aws.rds.instance"


def test_no_finding_is_pass_only_when_the_types_were_read():
    zero = {"PASS": 0, "FAIL": 0, "ERROR": 0, "EXCEPTED": 0}
    assert status_of(zero, ["current"], COLLECTED) == "PASS"  # read, nothing of that kind exists
    assert status_of(zero, ["current"], NOT_COLLECTED) == "NO_DATA"
    assert status_of(zero, ["missing"], NOT_COLLECTED) == "NEEDS_EVIDENCE"
    assert status_of(zero, ["current"], FAILED) == "ERROR"
    assert status_of(zero, ["missing"], FAILED) == "ERROR"  # a gap outranks missing manual evidence
    assert status_of({**zero, "FAIL": 1}, ["current"], NOT_COLLECTED) == "FAIL"  # findings speak for themselves
    assert status_of(zero, ["current"]) == "PASS"  # coverage unknown: as before
    assert coverage_of([], {}) is None
    assert coverage_of([SG], {SG: True}) == COLLECTED
    assert coverage_of([SG, RDS], {SG: True}) == NOT_COLLECTED
    assert coverage_of([SG, RDS], {SG: True, RDS: False}) == FAILED


@pytest.fixture
def store(tmp_path):
    """The small catalog (CC1.1, CC6.6, A1.2); CC6.6's and A1.2's manual items approved on 5 July, CC1.1's
    never submitted; two runs stored with zero findings and the status saved at scan time PASS for every
    criterion: on 6 July CC6.6's types were read (nothing found) and A1.2's own types not attempted, on
    7 July A1.2's own types were attempted and every scope failed."""
    from auditbook.collect.records import Collection, Gap, Scope
    from auditbook.evaluate.evaluator import summarise
    from auditbook.scan import add_evidence, decide_evidence
    from auditbook.store.db import open_engine
    from auditbook.store.runs import save_run
    from auditbook.store.session import writing
    from tests.packet_store import small_catalog
    catalog = load_catalog(small_catalog(tmp_path / "catalog.yaml"))
    engine = open_engine(f"sqlite:///{tmp_path}/coverage.db")
    with freeze_time("2026-07-05 10:00:00"):
        for criterion in ("CC6.6", "A1.2"):
            for item in catalog.control(criterion).manual_evidence:
                doc = tmp_path / f"{criterion}-{item.name}.txt"
                doc.write_text(item.name)
                row = add_evidence(engine, catalog, criterion, doc, effective=dt.date(2026, 7, 5), owner="ops",
                                   item=item.name, actor=ALICE, today=dt.date(2026, 7, 5))
                decide_evidence(engine, BOB, row.id, row.version, "approve", "read and accepted")
    cc66 = sorted({c.resource for c in catalog.checks_for("CC6.6")})
    a12 = sorted({c.resource for c in catalog.checks_for("A1.2")} - set(cc66))  # DynamoDB, Backup...
    assert a12
    read = [Scope("123456789012", "us-east-1", t) for t in cc66]
    failed = [Scope("123456789012", "us-east-1", t, Gap("123456789012", "us-east-1", t, "List", "AccessDenied", "no"))
              for t in a12]
    runs = {}
    for offset, scopes in ((0, read), (1, read + failed)):
        at = DAY + dt.timedelta(days=offset)
        with writing(engine) as session:
            runs[offset] = save_run(session, catalog_sha256="x", tool_version="test", parameters={},
                                    identities=[], collection=Collection(scopes=scopes), findings=[], started_at=at,
                                    finished_at=at + dt.timedelta(minutes=1), summary=summarise(catalog, []))
    return {"engine": engine, "catalog": catalog, "runs": runs}


def test_a_criterion_whose_types_were_not_read_is_no_data_or_error_never_pass(store):
    from auditbook.history import posture
    engine, catalog = store["engine"], store["catalog"]
    first = {r["criterion"]: r["status"] for r in posture.criteria(engine, catalog, store["runs"][0])}
    second = {r["criterion"]: r["status"] for r in posture.criteria(engine, catalog, store["runs"][1])}
    assert first == {"CC1.1": "NEEDS_EVIDENCE", "CC6.6": "PASS", "A1.2": "NO_DATA"}
    assert second == {"CC1.1": "NEEDS_EVIDENCE", "CC6.6": "PASS", "A1.2": "ERROR"}


def test_the_trend_judges_each_run_by_the_one_status_not_the_one_saved_at_scan_time(store):
    from auditbook.history import posture
    engine, catalog = store["engine"], store["catalog"]
    trend = {(r["run"], r["category"]): r for r in posture.trend(engine, catalog)}
    first, second = store["runs"][0], store["runs"][1]
    # saved at scan time: PASS for all three; by the one rule:
    assert (trend[(first, "security")]["PASS"], trend[(first, "security")]["NEEDS_EVIDENCE"]) == (1, 1)
    assert (trend[(first, "availability")]["PASS"], trend[(first, "availability")]["NO_DATA"]) == (0, 1)
    assert (trend[(second, "availability")]["PASS"], trend[(second, "availability")]["ERROR"]) == (0, 1)
    # and the same as the posture of each run
    for run in (first, second):
        statuses = [r["status"] for r in posture.criteria(engine, catalog, run)]
        for category in ("security", "availability"):
            row = trend[(run, category)]
            assert sum(row.get(s, 0) for s in set(statuses)) == sum(
                1 for r in posture.criteria(engine, catalog, run) if r["category"] == category)


def test_the_packet_gives_the_same_status_as_the_posture_for_types_not_read(store):
    from auditbook.history import posture
    from auditbook.history.period import parse_period, period_runs
    from auditbook.history.type2 import criterion_history, overview
    engine, catalog = store["engine"], store["catalog"]
    for day, run in (("2026-07-06", store["runs"][0]), ("2026-07-07", store["runs"][1])):
        runs = period_runs(engine, parse_period(start="2026-07-01", end=day))
        today = dt.date(2026, 7, 8)
        index = {r["criterion"]: r["status"] for r in overview(engine, catalog, runs, today=today)}
        pages = {c.id: criterion_history(engine, catalog, c.id, runs, today=today).status for c in catalog.controls}
        control_room = {r["criterion"]: r["status"] for r in posture.criteria(engine, catalog, run)}
        assert index == pages == control_room, day
    assert index["A1.2"] == "ERROR"
