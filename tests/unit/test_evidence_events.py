"""Manual evidence matched to the period's events (issue 14 §2): each change (CC8.1) and access change
(CC6.2) is linked to a ticket, parsed from the event or named by an approved document; each account in
scope has its own approved access review per cycle (CC6.3); a flagged (late, backdated) document
covers its period only with its submitter's explanation approved with it — otherwise the item needs
evidence and says why."""
import datetime as dt
import json

import pytest
from freezegun import freeze_time

from auditbook.auth import Actor, PermissionDenied
from auditbook.catalog.model import CatalogError, load_catalog
from auditbook.errors import UserError
from auditbook.evaluate.evidence_review import StaleEvidence, TwoPersonRule
from auditbook.evaluate.manual_evidence import EvidenceRecord, item_states
from auditbook.history.evidence_events import annotate_evidence
from auditbook.scan import add_evidence, decide_evidence, evidence_trail
from auditbook.scan import evidence_status as evidence_states
from auditbook.store.item_populations import item_populations
from auditbook.store.session import reading
from tests.conftest import CliResult, run_main
from tests.evidence_items import ITEM

ALICE = Actor("alice@corp.example", "analyst")
BOB = Actor("bob@corp.example", "approver")
CHANGES = ("CC8.1", "Sample of approved change tickets")
ACCESS = ("CC6.2", "Joiner and leaver access tickets")
REVIEW = ("CC6.3", "Quarterly access review sign-off")
A, B = "111111111111", "222222222222"
UTC = dt.timezone.utc
EVIL = "<img src=x onerror=alert(1)> **bold** [x](javascript:alert(1)) =HYPERLINK(\"http://x\")"


@pytest.fixture
def cli(capsys, monkeypatch):
    return lambda *args: CliResult(*run_main(capsys, monkeypatch, *args))


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    return open_engine(f"sqlite:///{tmp_path}/e.db")


def record(n, criterion, item, *, effective=dt.date(2026, 11, 20), expires=None, subject=None, status="approved",
           uploaded=dt.datetime(2026, 11, 25, tzinfo=UTC), explanation=None, incident=None):
    return EvidenceRecord(n, criterion, item, f"doc{n}.pdf", f"{n:064x}", "owner", "alice", uploaded, effective,
                          expires, status, incident_id=incident, subject=subject, explanation=explanation)


def state(states, key):
    return next(s for s in states if (s.criterion, s.item) == key)


def test_each_change_is_linked_to_a_ticket_parsed_or_named_by_an_approved_document():
    catalog, on = load_catalog(), dt.date(2026, 12, 1)
    changes = [("ev-1", dt.date(2026, 11, 2), "CHG-1"), ("ev-2", dt.date(2026, 11, 3), None),
               ("ev-3", dt.date(2026, 11, 4), None), ("ev-late", dt.date(2026, 12, 2), None)]
    got = state(item_states(catalog, [], on, changes=changes), CHANGES)
    assert (got.state, got.per, got.events, got.missing_events) == ("missing", "change", ["ev-1", "ev-2", "ev-3"],
                                                                     ["ev-2", "ev-3"])
    assert got.reasons == ["changes linked to no ticket: ev-2, ev-3"]
    named = [record(1, *CHANGES, subject="ev-2"), record(2, *CHANGES, subject="ev-3", status="pending")]
    got = state(item_states(catalog, named, on, changes=changes), CHANGES)
    assert (got.state, got.missing_events) == ("missing", ["ev-3"])  # a pending document links nothing
    assert "evidence 2: pending: only an approved document counts" in got.reasons
    named[1] = record(2, *CHANGES, subject="ev-3")
    got = state(item_states(catalog, named, on, changes=changes), CHANGES)
    assert (got.state, got.missing_events, got.due) == ("current", [], None)
    assert state(item_states(catalog, named, on), CHANGES).state == "missing"  # the population unknown: never passed
    assert state(item_states(catalog, [], on, changes=[]), CHANGES).state == "current"  # no change: nothing to link


def test_access_changes_need_their_ticket_too_and_only_they():
    catalog, on = load_catalog(), dt.date(2026, 12, 1)
    access = [("ev-iam", dt.date(2026, 11, 2), None)]
    got = state(item_states(catalog, [], on, changes=access + [("ev-ec2", dt.date(2026, 11, 2), "CHG-2")],
                            access_changes=access), ACCESS)
    assert (got.state, got.per, got.missing_events) == ("missing", "access-change", ["ev-iam"])
    linked = state(item_states(catalog, [record(1, *ACCESS, subject="ev-iam")], on, access_changes=access), ACCESS)
    assert linked.state == "current"


def test_each_account_in_scope_needs_its_own_current_review():
    catalog, on = load_catalog(), dt.date(2026, 12, 1)
    reviews = [record(1, *REVIEW, subject=A, effective=dt.date(2026, 10, 5), expires=dt.date(2027, 1, 5),
                      uploaded=dt.datetime(2026, 10, 6, tzinfo=UTC))]
    got = state(item_states(catalog, reviews, on, accounts=[A, B]), REVIEW)
    assert (got.state, got.per, got.events, got.missing_events) == ("missing", "account", [A, B], [B])
    assert got.reasons == [f"no current approved review for account: {B}"]
    reviews.append(record(2, *REVIEW, subject=B, effective=dt.date(2026, 8, 1), expires=dt.date(2026, 11, 1),
                          uploaded=dt.datetime(2026, 8, 2, tzinfo=UTC)))
    got = state(item_states(catalog, reviews, on, accounts=[A, B]), REVIEW)
    assert (got.state, got.missing_events) == ("expired", [B])  # B's review lapsed with its cycle
    reviews.append(record(3, *REVIEW, subject=B, effective=dt.date(2026, 11, 28), expires=dt.date(2027, 2, 28)))
    got = state(item_states(catalog, reviews, on, accounts=[A, B]), REVIEW)
    assert (got.state, got.due) == ("current", dt.date(2027, 1, 5))  # the first of the reviews to lapse
    assert state(item_states(catalog, reviews, on), REVIEW).state == "missing"


def test_a_flagged_document_counts_only_with_an_explanation_approved_with_it():
    catalog, on = load_catalog(), dt.date(2026, 9, 30)
    late = record(1, "CC1.2", ITEM, effective=dt.date(2026, 7, 15), expires=dt.date(2026, 10, 15),
                  uploaded=dt.datetime(2026, 12, 1, tzinfo=UTC))
    got = state(item_states(catalog, [late], on), ("CC1.2", ITEM))
    assert (got.state, [w.id for w in got.waiting]) == ("missing", [1])
    assert got.reasons == ["evidence 1: flagged (late upload; backdated) and approved without an explanation: it "
                           "does not cover the period (submit it again with an explanation)"]
    explained = record(1, "CC1.2", ITEM, effective=dt.date(2026, 7, 15), expires=dt.date(2026, 10, 15),
                       uploaded=dt.datetime(2026, 12, 1, tzinfo=UTC), explanation="signed late by the chair")
    assert state(item_states(catalog, [explained], on), ("CC1.2", ITEM)).state == "current"
    assert explained.flags[-1] == "explanation: signed late by the chair"
    on_time = record(2, "CC1.2", ITEM, effective=dt.date(2026, 7, 15), expires=dt.date(2026, 10, 15),
                     uploaded=dt.datetime(2026, 7, 20, tzinfo=UTC))
    assert (on_time.flags, on_time.counts) == ([], True)  # in time: no explanation needed


@pytest.mark.parametrize("yaml_item,message", [
    ("cadence: per-event\n      per: account", "per: account is one review per account per cycle"),
    ("cadence: quarterly\n      per: change", "per: change needs cadence per-event"),
    ("cadence: per-event\n      per: everyone", "per"),
])
def test_the_catalog_says_what_each_item_is_matched_to(tmp_path, yaml_item, message):
    from auditbook.catalog.model import DEFAULT_PATH
    text = DEFAULT_PATH.read_text().replace("cadence: per-event\n      per: change", yaml_item, 1)
    assert yaml_item in text
    path = tmp_path / "controls.yaml"
    path.write_text(text)
    for extra in DEFAULT_PATH.parent.glob("company-*.yaml"):  # the bundled catalog's include and parameters_file
        (tmp_path / extra.name).write_text(extra.read_text())
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def submit(engine, tmp_path, criterion, item, *, effective, actor=ALICE, name="doc.txt"):
    doc = tmp_path / name
    doc.write_text(f"{criterion} {item} {effective}")
    return add_evidence(engine, load_catalog(), criterion, doc, effective=effective, owner="owner", item=item,
                        actor=actor, today=dt.date(2027, 3, 1))


def test_the_submitter_explains_a_pending_document_and_the_approver_approves_it_with_it(engine, tmp_path):
    catalog = load_catalog()
    with freeze_time("2026-12-01 09:00:00"):
        row = submit(engine, tmp_path, "CC1.2", ITEM, effective=dt.date(2026, 7, 15))
    assert row.timeline_flags and not row.counts
    with pytest.raises(TwoPersonRule, match="only its submitter"):
        annotate_evidence(engine, catalog, Actor("bob@corp.example", "analyst"), row.id, row.version,
                          explanation="I say so")
    with pytest.raises(PermissionDenied):  # an approver submits nothing, so explains nothing
        annotate_evidence(engine, catalog, BOB, row.id, row.version, explanation="I say so")
    with pytest.raises(PermissionDenied):
        annotate_evidence(engine, catalog, Actor(ALICE.name, "viewer"), row.id, row.version, explanation="x")
    with pytest.raises(UserError, match="^--explanation: 2001 characters, more than the 2000 allowed"):
        annotate_evidence(engine, catalog, ALICE, row.id, row.version, explanation="x" * 2001)
    with pytest.raises(UserError, match="^--explanation: give the explanation"):
        annotate_evidence(engine, catalog, ALICE, row.id, row.version, explanation="  ")
    done = annotate_evidence(engine, catalog, ALICE, row.id, row.version, explanation=EVIL)
    assert (done.explanation, done.version, done.status) == (EVIL, 2, "pending")  # stored as typed
    with pytest.raises(StaleEvidence):
        annotate_evidence(engine, catalog, ALICE, row.id, 1, explanation="again")
    decide_evidence(engine, BOB, row.id, done.version, "approve", "explanation accepted")
    on = dt.date(2026, 9, 30)
    assert state(evidence_states(engine, catalog, on), ("CC1.2", ITEM)).state == "current"
    with pytest.raises(UserError, match="already approved"):
        annotate_evidence(engine, catalog, ALICE, row.id, 3, explanation="later")
    trail = evidence_trail(engine, row.id)
    assert [e["action"] for e in trail] == ["submit_evidence", "annotate_evidence", "approve_evidence"]
    assert trail[1]["after"]["explanation"] == EVIL and trail[1]["actor"] == ALICE.name


def test_approved_without_explanation_it_needs_evidence_and_says_why_everywhere(engine, tmp_path, cli):
    with freeze_time("2026-12-01 09:00:00"):
        row = submit(engine, tmp_path, "CC1.2", ITEM, effective=dt.date(2026, 7, 15))
    decide_evidence(engine, BOB, row.id, row.version, "approve", "read")
    got = state(evidence_states(engine, load_catalog(), dt.date(2026, 9, 30)), ("CC1.2", ITEM))
    assert got.state == "missing" and "approved without an explanation" in got.reasons[0]
    db = str(engine.url)
    listed = cli("evidence", "list", "--on", "2026-09-30", "--format", "json", "--db", db)
    assert listed.exit_code == 0, listed.output
    item = next(r for r in json.loads(listed.stdout) if (r["criterion"], r["item"]) == ("CC1.2", ITEM))
    assert item["state"] == "missing" and "approved without an explanation" in item["reasons"][0]
    assert item["not_counted"][0]["does_not_count"].startswith("flagged (late upload; backdated)")
    table = cli("evidence", "list", "--on", "2026-09-30", "--db", db)
    assert "approved without an explanation" in " ".join(table.stdout.split())


def test_a_per_change_document_is_linked_by_its_submitter_and_counts_once_approved(engine, tmp_path):
    from tests.unit.test_populations import write_event
    catalog = load_catalog()
    with freeze_time("2026-11-05 09:00:00"):
        unlinked = write_event(engine, at=dt.datetime(2026, 11, 2, 9, tzinfo=UTC))
        write_event(engine, at=dt.datetime(2026, 11, 2, 10, tzinfo=UTC), session_name="deploy-CHG-1187")
        row = submit(engine, tmp_path, *CHANGES, effective=dt.date(2026, 11, 3))
    on = dt.date(2026, 11, 30)
    got = state(evidence_states(engine, catalog, on, since=dt.date(2026, 10, 1)), CHANGES)
    assert (got.state, got.missing_events) == ("missing", [unlinked["event_id"]])
    with pytest.raises(UserError, match=r"^--account: CC8.1 / .* is evidenced per change: give --change"):
        annotate_evidence(engine, catalog, ALICE, row.id, row.version, account=A)
    with pytest.raises(UserError, match=r"^--change: '\$\(rm -rf /\)' is not a CloudTrail event id or a ticket"):
        annotate_evidence(engine, catalog, ALICE, row.id, row.version, change="$(rm -rf /)")
    linked = annotate_evidence(engine, catalog, ALICE, row.id, row.version, change=unlinked["event_id"])
    assert linked.subject == unlinked["event_id"]
    decide_evidence(engine, BOB, row.id, linked.version, "approve", "ticket CHG-1200 seen")
    got = state(evidence_states(engine, catalog, on, since=dt.date(2026, 10, 1)), CHANGES)
    assert (got.state, len(got.events)) == ("current", 2)


def test_a_document_of_an_item_not_matched_per_change_cannot_be_linked(engine, tmp_path):
    with freeze_time("2026-11-05 09:00:00"):
        row = submit(engine, tmp_path, "CC1.2", ITEM, effective=dt.date(2026, 11, 3))
    with pytest.raises(UserError, match="^--change: CC1.2 / .* is not evidenced per change or per account"):
        annotate_evidence(engine, load_catalog(), ALICE, row.id, row.version, change="CHG-1")


def test_failed_calls_changed_nothing_and_need_no_ticket(engine):
    from auditbook.demo import trail as trailgen
    from auditbook.monitor.cloudtrail_changes import change_of
    from auditbook.store import changes as stored_changes
    from auditbook.store.session import writing
    at = dt.datetime(2026, 11, 2, 9, tzinfo=UTC)
    denied = trailgen.record(at, A, "eu-west-1", "iam.amazonaws.com", "CreateUser", user="intruder",
                             error="AccessDenied", request={"userName": "backdoor"})
    done = trailgen.record(at, A, "eu-west-1", "iam.amazonaws.com", "CreateUser", user="ops",
                           request={"userName": "new-joiner"})
    with writing(engine) as session:
        stored_changes.insert_changes(session, [change_of(r, at, "test") for r in (denied, done)])
    with reading(engine) as session:
        pops = item_populations(session, dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert [c[0] for c in pops["changes"]] == [done["eventID"]] == [c[0] for c in pops["access_changes"]]
    assert pops["accounts"] is None and pops["incidents"] == []  # no run read any account: not known


def test_with_no_log_read_and_no_run_the_populations_are_not_known_and_the_items_need_evidence(engine):
    """An empty list would pass every per-change and per-account item on nothing: not known instead."""
    catalog = load_catalog()
    with reading(engine) as session:
        pops = item_populations(session, dt.date(2026, 10, 1), dt.date(2026, 12, 31))
    assert pops["changes"] is None and pops["access_changes"] is None and pops["accounts"] is None
    got = state(evidence_states(engine, catalog, dt.date(2026, 12, 31), since=dt.date(2026, 10, 1)), CHANGES)
    assert got.state == "missing" and "not known" in got.reasons[0]


def test_accounts_in_scope_are_those_read_less_those_put_out_of_scope(engine, tmp_path):
    from auditbook.collect.records import Collection, Scope
    from auditbook.evaluate.risk_register import load_register
    from auditbook.history.scope import exclude
    from auditbook.scan import record_run
    catalog = load_catalog()
    at = dt.datetime(2026, 11, 2, 6, tzinfo=UTC)
    collection = Collection(scopes=[Scope(a, "eu-west-1", "aws.ec2.security_group") for a in (A, B)])
    record_run(engine, catalog, load_register(tmp_path / "none.yaml"), collection, [], {"regions": ["eu-west-1"]},
               at, at + dt.timedelta(minutes=1))
    with reading(engine) as session:
        assert item_populations(session, dt.date(2026, 10, 1), dt.date(2026, 12, 31))["accounts"] == [A, B]
    from auditbook.history.scope import include
    with freeze_time("2026-11-10 10:00:00"):  # out of scope for a minute inside the quarter: still owes its review
        exclude(engine, Actor("root", "admin"), "account", B, reason="sandbox, no customer data")
    with freeze_time("2026-11-10 10:01:00"):
        include(engine, Actor("root", "admin"), "account", B, reason="back in")
    with reading(engine) as session:
        assert item_populations(session, dt.date(2026, 10, 1), dt.date(2026, 12, 31))["accounts"] == [A, B]
    with freeze_time("2026-09-30 10:00:00"):  # out of scope since before the quarter: dropped from it
        exclude(engine, Actor("root", "admin"), "account", B, reason="sandbox, no customer data")
    with reading(engine) as session:
        assert item_populations(session, dt.date(2026, 10, 1), dt.date(2026, 12, 31))["accounts"] == [A]
        assert item_populations(session, dt.date(2027, 1, 1), dt.date(2027, 1, 31))["accounts"] is None  # no run


@pytest.mark.parametrize("args,message", [
    (["link", "1"], "give one of --change or --account"),
    (["link", "1", "--change", "a", "--account", A], "give one of --change or --account"),
    (["explain", "1"], "--explanation: give the explanation"),
    (["explain", "1", "--explanation", "x" * 2001], "--explanation: 2001 characters"),
    (["explain", "99", "--explanation", "late"], "ID: there is no document 99"),
    (["list", "--since", "2026-12-02", "--on", "2026-12-01"], "--since: 2026-12-02 is after --on 2026-12-01"),
    (["list", "--since", "July"], "--since: 'July' is not a date"),
])
def test_cli_usage_mistakes_are_one_line_exit_2(engine, cli, args, message):
    got = cli("evidence", *args, "--db", str(engine.url))
    assert got.exit_code == 2 and message in got.output and "Traceback" not in got.output


def test_page_the_submitter_explains_and_the_items_say_why_they_need_evidence(engine, tmp_path, monkeypatch):
    import importlib
    import re
    from pathlib import Path

    from streamlit.testing.v1 import AppTest
    app = Path(__file__).resolve().parents[2] / "app"
    monkeypatch.syspath_prepend(str(app))
    ui = importlib.import_module("ui")
    submitter = Actor(f"alice {EVIL}", "analyst")
    with freeze_time("2026-12-01 09:00:00"):
        row = submit(engine, tmp_path, "CC1.2", ITEM, effective=dt.date(2026, 7, 15), actor=submitter)
    at = AppTest.from_file(str(app / "views" / "evidence.py"), default_timeout=60)
    at.session_state["ab_ctx"] = ui.Context(submitter, "oidc", str(engine.url), engine, None)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "no explanation" in at.dataframe[0].value["flags"][0]
    at.text_area[0].input(EVIL)
    next(b for b in at.button if b.label == "Save").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (doc,) = [d for d in evidence_states(engine, load_catalog(), dt.date(2026, 9, 30))
              if (d.criterion, d.item) == ("CC1.2", ITEM)][0].waiting
    assert (doc.id, doc.explanation, doc.version) == (row.id, EVIL, 2)  # stored as typed
    why = at.dataframe[-1].value
    assert "evidence 1: pending" in " ".join(why["why"])
    texts = " ".join(str(e.value) for e in (*at.markdown, *at.caption, *at.error, *at.success, *at.warning))
    assert not re.search(r"(?<!\\)<", texts)  # shown as text, never markup


def test_cli_links_a_review_to_its_account_and_lists_why_it_does_not_count(engine, tmp_path, cli):
    db = str(engine.url)
    doc = tmp_path / "review.txt"
    doc.write_text("access review of the prod account")
    added = cli("evidence", "add", "CC6.3", str(doc), "--effective-date", "2026-07-01", "--owner", "security", "--db", db)
    assert added.exit_code == 0, added.output
    assert "auditbook evidence link 1 --account ACCOUNT" in " ".join(added.stderr.split())
    wrong = cli("evidence", "link", "1", "--change", "CHG-1", "--db", db)
    assert wrong.exit_code == 2 and "evidenced per account: give --account" in wrong.output
    linked = cli("evidence", "link", "1", "--account", A, "--db", db)
    assert linked.exit_code == 0 and f"evidences {A}" in linked.stdout, linked.output
    decide_evidence(engine, BOB, 1, 2, "approve", "review read")  # uploaded today for 1 July: flagged, unexplained
    listed = cli("evidence", "list", "--pending", "--format", "json", "--db", db)
    assert json.loads(listed.stdout) == []
    docs = json.loads(cli("evidence", "list", "--on", "2026-07-02", "--format", "json", "--db", db).stdout)
    review = next(r for r in docs if r["criterion"] == "CC6.3")
    assert review["per"] == "account" and review["not_counted"][0]["subject"] == A
    assert review["not_counted"][0]["counts"] is False


@pytest.mark.parametrize("entry", ["not an entry", {"id": 7, "kind": "account", "value": A, "excluded": {"at": "yesterday"}}])
def test_a_malformed_stored_scope_entry_is_one_line_not_a_traceback_or_a_wrong_population(engine, entry):
    from auditbook.store.item_populations import _excluded_accounts
    with pytest.raises(UserError, match="^scope: "):
        _excluded_accounts([entry], dt.date(2026, 10, 1), dt.date(2026, 12, 31))
