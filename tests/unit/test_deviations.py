"""Deviations and management responses (issue 14 §5, docs/deviations.md): each failure stretch of a
check in the period, each stretch of days a required manual item was missing, each account the
organisation listed that no run read, with a stable id; a response per deviation, authorised,
versioned, in the audit trail, its text stored as typed; `auditbook deviations`; the control room's
page; migration 0020."""
import datetime as dt
import json
from pathlib import Path

import pytest

from auditbook.auth import Actor, PermissionDenied
from auditbook.catalog.model import load_catalog
from auditbook.errors import UserError
from auditbook.history.deviations import (
    NO_RESPONSE,
    StaleResponse,
    deviations,
    respond,
    response_trail,
)
from auditbook.history.period import parse_period
from auditbook.store.db import open_engine
from auditbook.store.session import writing

A, B = "111111111111", "222222222222"
REGION, SG, CHECK = "us-east-1", "aws.ec2.security_group", "ec2-sg-no-public-ingress"
Q3 = parse_period("2026Q3")
TODAY = dt.date(2026, 7, 4)
ANALYST = Actor("ana@corp.example", "analyst")
EVIL = '<script>alert(1)</script> **bold** [x](javascript:alert(1)) "q" & \'s\' {{x}}\nsecond line'
FIELDS = {"root_cause": "a change outside the pipeline", "response": "the group was closed and the change reverted"}


def finding(resource: str, status: str):
    from auditbook.evaluate.evaluator import Finding
    return Finding(CHECK, ["CC6.6"], status, "high", A, REGION, REGION, SG, resource,
                   f"arn:aws:ec2:{REGION}:{A}:security-group/{resource}",
                   "port 22 open to 0.0.0.0/0" if status == "FAIL" else "ok", resource_name=resource)


def save(engine, day: dt.date, statuses: dict[str, str]) -> int:
    """A --org run at 06:00 on `day`: the organisation lists A and B, the run reads A only."""
    from auditbook.collect.records import Collection, Scope
    from auditbook.store.runs import save_run
    at = dt.datetime.combine(day, dt.time(6), dt.timezone.utc)
    identities = [{"account": a, "name": a, "role": None, "identity": {"Account": a} if a == A else {},
                   "error": None if a == A else "cannot assume role"} for a in (A, B)]
    with writing(engine) as session:
        return save_run(session, catalog_sha256="x", tool_version="test",
                        parameters={"org_role": "AuditRole", "regions": [REGION]}, identities=identities,
                        collection=Collection(scopes=[Scope(A, REGION, SG, None)]),
                        findings=[finding(r, s) for r, s in statuses.items()], started_at=at,
                        finished_at=at + dt.timedelta(seconds=5))


def build_store(folder) -> dict:
    """Daily runs 30 June .. 3 July: sg-old fails from 30 June (before Q3) and is fixed on 3 July;
    sg-new fails from 2 July, still open. CC1.1's two items never evidenced; account B never read."""
    from tests.packet_store import small_catalog
    catalog = load_catalog(small_catalog(Path(folder) / "catalog.yaml"))
    engine = open_engine(f"sqlite:///{folder}/d.db")
    days = {dt.date(2026, 6, 30): {"sg-old": "FAIL", "sg-new": "PASS"},
            dt.date(2026, 7, 1): {"sg-old": "FAIL", "sg-new": "PASS"},
            dt.date(2026, 7, 2): {"sg-old": "FAIL", "sg-new": "FAIL"},
            dt.date(2026, 7, 3): {"sg-old": "PASS", "sg-new": "FAIL"}}
    for day, statuses in days.items():
        save(engine, day, statuses)
    return {"engine": engine, "catalog": catalog}


@pytest.fixture
def store(tmp_path):
    return build_store(tmp_path)


def listed(store, **kw) -> list[dict]:
    return deviations(store["engine"], store["catalog"], Q3, today=TODAY, **kw)


def one(found: list[dict], **match) -> dict:
    (dev,) = [d for d in found if all(d.get(k) == v for k, v in match.items())]
    return dev


def test_a_failure_stretch_a_missing_item_and_a_missing_account_are_deviations(store):
    found = listed(store)
    old = one(found, kind="failure", resource_name="sg-old")
    assert (old["from"], old["until"], old["state"]) == ("2026-06-30T06:00:00+00:00", "2026-07-03T06:00:00+00:00", "fixed")
    assert old["existed_at_start"] is True and old["criteria"] == ["CC6.6"]  # first seen before 1 July
    new = one(found, kind="failure", resource_name="sg-new")
    assert (new["state"], new["until"], new["existed_at_start"]) == ("open", None, False)
    assert new["what"] == "port 22 open to 0.0.0.0/0"
    item = one(found, kind="manual evidence", item="Code of conduct")
    assert (item["from"], item["until"], item["state"], item["criteria"]) == ("2026-07-01", None, "open", ["CC1.1"])
    account = one(found, kind="account not scanned")
    assert (account["account"], account["from"], account["until"]) == (B, "2026-07-01", "2026-07-03")
    assert {d["response_text"] for d in found} == {NO_RESPONSE} and all(d["response"] is None for d in found)
    assert [d["kind"] for d in listed(store, criterion="CC6.6")].count("failure") == 2
    assert {d["kind"] for d in listed(store, criterion="CC1.1")} == {"manual evidence"}


def test_a_manual_stretch_ends_when_an_approved_document_takes_effect(store, tmp_path):
    from auditbook.scan import add_evidence, decide_evidence
    doc = tmp_path / "coc.txt"
    doc.write_text("code of conduct")
    row = add_evidence(store["engine"], store["catalog"], "CC1.1", doc, effective=dt.date(2026, 7, 3),
                       owner="people ops", item="Code of conduct", actor=ANALYST, today=TODAY)
    from auditbook.history.evidence_events import annotate_evidence
    row = annotate_evidence(store["engine"], store["catalog"], ANALYST, row.id, row.version,
                            explanation="signed in July, filed later")  # uploaded late: explained, then approved
    decide_evidence(store["engine"], Actor("bob@corp.example", "approver"), row.id, row.version, "approve", "read")
    item = one(listed(store), kind="manual evidence", item="Code of conduct")
    assert (item["from"], item["until"], item["state"]) == ("2026-07-01", "2026-07-02", "closed")


def test_ids_are_stable_across_builds_and_stores(store, tmp_path):
    first = [d["id"] for d in listed(store)]
    assert len(set(first)) == len(first) and all(len(i) == 16 for i in first)
    (tmp_path / "again").mkdir()
    other = build_store(tmp_path / "again")
    assert [d["id"] for d in deviations(other["engine"], other["catalog"], Q3, today=TODAY)] == first
    later = deviations(store["engine"], store["catalog"], Q3, today=dt.date(2026, 7, 20))
    assert set(first) <= {d["id"] for d in later}  # a later build: the same deviations keep their ids


def test_a_response_is_versioned_attached_and_in_the_audit_trail(store):
    dev = one(listed(store), kind="failure", resource_name="sg-new")
    done = respond(store["engine"], ANALYST, dev["id"], 0, catalog=store["catalog"], period=Q3, today=TODAY,
                   ticket="CHG-1042", remediated_on="2026-07-04", **FIELDS)
    assert done["response"]["version"] == 1 and done["response"]["responded_by"] == ANALYST.name
    again = one(listed(store), id=dev["id"])
    assert again["response_text"] == FIELDS["response"] and again["response"]["ticket"] == "CHG-1042"
    assert again["response"]["remediated_on"] == "2026-07-04"
    with pytest.raises(StaleResponse, match="version 0, now 1"):
        respond(store["engine"], ANALYST, dev["id"], 0, catalog=store["catalog"], period=Q3, today=TODAY, **FIELDS)
    admin = Actor("ada@corp.example", "admin")
    respond(store["engine"], admin, dev["id"], 1, catalog=store["catalog"], period=Q3, today=TODAY,
            existed_at_start=True, existed_reason="the group was opened in June; the scan missed it", **FIELDS)
    now = one(listed(store), id=dev["id"])
    assert (now["existed_at_start"], now["existed_at_start_overridden"], now["existed_at_start_computed"]) == (
        True, True, False)
    assert now["response"]["version"] == 2 and now["response"]["responded_by"] == admin.name
    trail = response_trail(store["engine"], dev["id"])
    assert [(e["action"], e["actor"]) for e in trail] == [("respond_deviation", ANALYST.name),
                                                         ("respond_deviation", admin.name)]
    assert trail[0]["before"] is None and trail[1]["before"]["ticket"] == "CHG-1042"
    assert trail[1]["after"]["existed_at_start"] is True


@pytest.mark.parametrize("role", ["viewer", "auditor", "approver", "wall"])
def test_roles_without_the_permission_are_refused(store, role):
    dev = listed(store)[0]
    with pytest.raises(PermissionDenied, match="may not respond deviation"):
        respond(store["engine"], Actor("someone", role), dev["id"], 0, catalog=store["catalog"], period=Q3,
                today=TODAY, **FIELDS)
    assert one(listed(store), id=dev["id"])["response"] is None


def test_hostile_text_is_stored_as_typed_and_inert_in_json(store):
    dev = one(listed(store), kind="account not scanned")
    evil = {"root_cause": EVIL, "response": EVIL, "ticket": "<b>T-1</b>&amp;", "compensating": EVIL,
            "remediation": EVIL}
    respond(store["engine"], Actor(f"ana {EVIL.splitlines()[0]}", "analyst"), dev["id"], 0,
            catalog=store["catalog"], period=Q3, today=TODAY, **evil)
    got = one(listed(store), id=dev["id"])["response"]
    assert {k: got[k] for k in evil} == evil
    text = json.dumps(listed(store), default=str)
    assert json.loads(text) == json.loads(json.dumps(listed(store), default=str))
    assert "<script>" in json.loads(text)[[d["id"] for d in listed(store)].index(dev["id"])]["response"]["root_cause"]


@pytest.mark.parametrize("fields, message", [
    ({"root_cause": "", "response": "r"}, "--root-cause: required"),
    ({"root_cause": "c", "response": "  "}, "--response: required"),
    ({**FIELDS, "remediated_on": "2026-02-30"}, "--remediated-on: '2026-02-30' is not a date"),
    ({**FIELDS, "remediated_on": "2027-01-01"}, "--remediated-on: 2027-01-01 is not between"),
    ({**FIELDS, "ticket": "T-1\nT-2"}, "--ticket: 'T-1\\nT-2' contains the control character"),
    ({**FIELDS, "response": "x\x1b[31m"}, "--response: "),
    ({**FIELDS, "response": "x" * 4001}, "--response: 4001 characters; at most 4000"),
    ({**FIELDS, "existed_at_start": False}, "--existed-reason: required"),
    ({**FIELDS, "existed_reason": "because"}, "--existed-reason: give it with --existed-at-start"),
])
def test_bad_fields_are_one_line_errors_and_nothing_is_written(store, fields, message):
    dev = listed(store)[0]
    with pytest.raises(UserError) as caught:
        respond(store["engine"], ANALYST, dev["id"], 0, catalog=store["catalog"], period=Q3, today=TODAY, **fields)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert one(listed(store), id=dev["id"])["response"] is None and response_trail(store["engine"], dev["id"]) == []


@pytest.mark.parametrize("ident, version, message", [
    ("not-an-id", 0, "is not a deviation id"),
    ("0123456789abcdef", 0, "is not a deviation of 2026Q3"),
    ("VALID", -1, "--version: -1 is not a version"),
])
def test_an_unknown_id_or_bad_version_is_refused(store, ident, version, message):
    ident = listed(store)[0]["id"] if ident == "VALID" else ident
    with pytest.raises(UserError, match=message):
        respond(store["engine"], ANALYST, ident, version, catalog=store["catalog"], period=Q3, today=TODAY, **FIELDS)


def test_an_unknown_criterion_is_refused(store):
    with pytest.raises(UserError, match="--criterion: 'CC99' is not a criterion"):
        listed(store, criterion="CC99")


# -- the migration -------------------------------------------------------------------------------------

def test_migration_0020_keeps_the_data_of_a_0019_store(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, text

    from auditbook.store.db import HEAD_REVISION, alembic_config, current_revision
    url = f"sqlite:///{tmp_path}/old.db"
    old = create_engine(url)
    with old.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0019")
        conn.execute(text("INSERT INTO settings (key, value) VALUES ('kept', '{\"a\": 1}')"))
    old.dispose()
    engine = open_engine(url)
    assert current_revision(engine) == HEAD_REVISION
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM settings WHERE key = 'kept'")).scalar_one() in ('{"a": 1}', {"a": 1})
        assert conn.execute(text("SELECT count(*) FROM deviation_responses")).scalar_one() == 0


def test_a_criterion_page_gets_the_same_deviations_from_its_own_failures(store):
    from auditbook.history.deviations import for_criterion
    from auditbook.history.period import period_runs
    from auditbook.history.type2 import criterion_history
    respond(store["engine"], ANALYST, listed(store, criterion="CC6.6")[0]["id"], 0, catalog=store["catalog"],
            period=Q3, today=TODAY, **FIELDS)
    for criterion in ("CC6.6", "CC1.1", "A1.2"):
        report = criterion_history(store["engine"], store["catalog"], criterion, period_runs(store["engine"], Q3),
                                   today=TODAY)
        page = for_criterion(store["engine"], store["catalog"], Q3, criterion, report.failures, today=TODAY)
        assert page == listed(store, criterion=criterion)


def test_a_failure_the_periods_first_run_found_existed_at_the_start(tmp_path):
    """The auditor's reading: no run before the period, the first run (06:00 on its first day) finds
    the group open — it existed at the start as far as the evidence says, never "no"."""
    from tests.packet_store import small_catalog
    catalog = load_catalog(small_catalog(tmp_path / "catalog.yaml"))
    engine = open_engine(f"sqlite:///{tmp_path}/first.db")
    for day, statuses in ((dt.date(2026, 7, 1), {"sg-x": "FAIL", "sg-y": "PASS"}),
                          (dt.date(2026, 7, 2), {"sg-x": "FAIL", "sg-y": "FAIL"})):
        save(engine, day, statuses)
    found = deviations(engine, catalog, Q3, today=TODAY)
    assert one(found, kind="failure", resource_name="sg-x")["existed_at_start"] is True
    assert one(found, kind="failure", resource_name="sg-y")["existed_at_start"] is False


def test_days_without_a_scan_are_a_deviation_with_their_reason(store):
    """The auditor: a day without monitoring is never a pass and needs an explanation — it is a
    deviation of the period, carrying the recorded reason (or saying none was recorded)."""
    from auditbook.history.gaps import explain_gap
    later = dt.date(2026, 7, 6)
    gap = one(deviations(store["engine"], store["catalog"], Q3, today=later), kind="monitoring gap")
    # every criterion with automated checks (AUD finding 9): each criterion page lists it
    assert (gap["from"], gap["until"], gap["criteria"]) == ("2026-07-04", "2026-07-06", ["CC6.6", "A1.2"])
    assert "no reason recorded" in gap["what"] and gap["response"] is None
    explain_gap(store["engine"], Actor("root", "admin"), "2026-07-04", "2026-07-06", "scanner role rotated",
                today=later)
    gap = one(deviations(store["engine"], store["catalog"], Q3, today=later), kind="monitoring gap")
    assert gap["what"] == "no scan on 3 day(s); reason: scanner role rotated"
    assert gap["reason"] == "scanner role rotated" and gap["explained_by"] == "root"
    of_cc66 = one(deviations(store["engine"], store["catalog"], Q3, criterion="CC6.6", today=later),
                  kind="monitoring gap")
    assert (of_cc66["id"], of_cc66["reason"]) == (gap["id"], "scanner role rotated")
    assert all(d["kind"] != "monitoring gap"  # CC1.1 has no automated checks: a day without a scan is not its
               for d in deviations(store["engine"], store["catalog"], Q3, criterion="CC1.1", today=later))
