"""Manual evidence with an approval and a timeline (issue 14 §2): a document is submitted by a named
person and counts only once a second person with the approve_evidence permission approves it (two-person
rule, a reason, the audit trail, versioned); pending or rejected ones never satisfy an item; late and
backdated uploads are flagged, not refused; a per-incident item needs an approved record for every
incident; old stores' documents are migrated as pending."""
import datetime as dt
import json
import re

import pytest
from freezegun import freeze_time

from auditbook.auth import Actor, PermissionDenied
from auditbook.catalog.model import load_catalog
from auditbook.errors import UserError
from auditbook.evaluate.evidence_review import (
    StaleEvidence,
    TwoPersonRule,
    quarter_end,
    upload_flags,
)
from auditbook.evaluate.manual_evidence import (
    EvidenceRecord,
    criteria_needing,
    item_states,
)
from auditbook.monitor import incidents
from auditbook.scan import (
    add_evidence,
    decide_evidence,
    evidence_documents,
    evidence_status,
    evidence_trail,
)
from auditbook.store.db import open_engine
from tests.conftest import CliResult, run_main
from tests.evidence_items import ITEM, item_state

EVIL = "<img src=x onerror=alert(1)> **bold** [x](javascript:alert(1))"
ALICE = Actor("alice@corp.example", "analyst")
BOB = Actor("bob@corp.example", "approver")
RECORDS = "Incident records"


@pytest.fixture
def engine(tmp_path):
    return open_engine(f"sqlite:///{tmp_path}/a.db")


def submit(engine, tmp_path, *, effective=dt.date(2026, 7, 15), actor=ALICE, criterion="CC1.2", item=ITEM,
           incident=None, name="minutes.txt"):
    doc = tmp_path / name
    doc.write_text(f"evidence for {criterion} {item} {incident}")
    return add_evidence(engine, load_catalog(), criterion, doc, effective=effective, owner="company secretary",
                        item=item, actor=actor, incident=incident, today=dt.date(2026, 12, 1))


def test_a_document_counts_only_once_a_second_person_approves_it(engine, tmp_path):
    with freeze_time("2026-07-20 09:00:00"):  # uploaded in time: no flag, so no explanation is needed
        row = submit(engine, tmp_path)
    assert row.flags == []
    assert (row.status, row.submitted_by, row.version) == ("pending", ALICE.name, 1)
    assert item_state(engine, dt.date(2026, 9, 30)).state == "missing"  # pending: as good as missing
    assert [w.id for w in item_state(engine, dt.date(2026, 9, 30)).waiting] == [row.id]
    done = decide_evidence(engine, BOB, row.id, 1, "approve", "minutes read: security was on the agenda")
    assert (done.status, done.decided_by, done.version) == ("approved", BOB.name, 2)
    assert done.reason == "minutes read: security was on the agenda"
    assert item_state(engine, dt.date(2026, 9, 30)).state == "current"
    assert item_state(engine, dt.date(2026, 9, 30)).evidence.decided_by == BOB.name
    trail = evidence_trail(engine, row.id)
    assert [(e["action"], e["actor"], e["role"]) for e in trail] == [
        ("submit_evidence", ALICE.name, "analyst"), ("approve_evidence", BOB.name, "approver")]
    assert trail[1]["note"] == "minutes read: security was on the agenda"
    assert (trail[1]["before"]["status"], trail[1]["after"]["status"]) == ("pending", "approved")


@pytest.mark.parametrize("decider", [Actor("alice@corp.example", "admin"), Actor(" ALICE@corp.example ", "approver")])
def test_the_submitter_may_never_decide_on_their_own_document(engine, tmp_path, decider):
    row = submit(engine, tmp_path)
    with pytest.raises(TwoPersonRule, match="submitted it, so a second person must approve it"):
        decide_evidence(engine, decider, row.id, 1, "approve", "looks fine to me")
    assert evidence_documents(engine)[0].status == "pending"
    assert [e["action"] for e in evidence_trail(engine, row.id)] == ["submit_evidence"]


def test_a_cli_submitter_is_the_same_person_at_the_terminal(engine, tmp_path):
    row = submit(engine, tmp_path, actor=Actor("kim (cli)", "analyst"))
    with pytest.raises(TwoPersonRule):
        decide_evidence(engine, Actor("Kim", "approver"), row.id, 1, "reject", "no")


@pytest.mark.parametrize("submitter, decider", [("kim (cli)", "kim (local)"), ("kim (local)", "KIM (cli)"),
                                                ("kim (local)", "kim")])
def test_one_person_on_two_front_ends_is_still_one_person(engine, tmp_path, submitter, decider):
    """An attack pass approved alice (cli)'s document as alice (local): the command line and the local
    control room are one person at one login."""
    row = submit(engine, tmp_path, actor=Actor(submitter, "analyst"))
    with pytest.raises(TwoPersonRule):
        decide_evidence(engine, Actor(decider, "approver"), row.id, 1, "approve", "fine")


def test_the_login_name_is_the_accounts_not_the_environments(monkeypatch):
    """USER / LOGNAME are the caller's to set: the name at the terminal is the passwd entry's."""
    import os
    import pwd

    from auditbook.auth import login_name
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    assert login_name() == pwd.getpwuid(os.getuid()).pw_name != "mallory"


@pytest.mark.parametrize("role", ["viewer", "analyst", "auditor", "wall"])
def test_only_approvers_and_admins_decide(engine, tmp_path, role):
    row = submit(engine, tmp_path)
    with pytest.raises(PermissionDenied, match="may not approve evidence"):
        decide_evidence(engine, Actor("carol@corp.example", role), row.id, 1, "approve", "ok")
    assert evidence_documents(engine)[0].status == "pending"
    decide_evidence(engine, Actor("carol@corp.example", "admin"), row.id, 1, "approve", "ok")
    assert evidence_documents(engine)[0].status == "approved"


@pytest.mark.parametrize("reason", [None, "", "   \n", "r" * 2001])
def test_a_decision_needs_a_reason(engine, tmp_path, reason):
    row = submit(engine, tmp_path)
    with pytest.raises(UserError, match="^--reason: "):
        decide_evidence(engine, BOB, row.id, 1, "reject", reason)
    assert evidence_documents(engine)[0].status == "pending"


def test_a_rejected_document_never_counts_and_is_final(engine, tmp_path):
    row = submit(engine, tmp_path)
    done = decide_evidence(engine, BOB, row.id, 1, "reject", "these are the minutes of 2025")
    assert (done.status, done.reason) == ("rejected", "these are the minutes of 2025")
    assert item_state(engine, dt.date(2026, 9, 30)).state == "missing"
    with pytest.raises(UserError, match="already rejected"):
        decide_evidence(engine, Actor("dee@corp.example", "admin"), row.id, 2, "approve", "overrule")
    assert evidence_documents(engine, "rejected")[0].id == row.id and not evidence_documents(engine, "approved")


def test_a_decision_at_a_stale_version_is_refused(engine, tmp_path):
    row = submit(engine, tmp_path)
    with pytest.raises(StaleEvidence, match="changed since it was read"):
        decide_evidence(engine, BOB, row.id, 5, "approve", "ok")
    decide_evidence(engine, BOB, row.id, 1, "approve", "first")  # the other approver, who read version 1 too:
    with pytest.raises(UserError):
        decide_evidence(engine, Actor("dee@corp.example", "approver"), row.id, 1, "reject", "second")
    assert (evidence_documents(engine)[0].status, evidence_documents(engine)[0].reason) == ("approved", "first")
    assert [e["action"] for e in evidence_trail(engine, row.id)] == ["submit_evidence", "approve_evidence"]


def test_unknown_document_and_decision_are_refused(engine):
    with pytest.raises(UserError, match="no document 9"):
        decide_evidence(engine, BOB, 9, 1, "approve", "ok")


def record(n, status, effective=dt.date(2026, 8, 1), item=ITEM, incident=None):
    return EvidenceRecord(n, "CC1.2" if item == ITEM else "CC7.4", item, "d.pdf", f"{n:064x}", "o", "alice",
                          dt.datetime(2026, 8, 2, tzinfo=dt.timezone.utc), effective, None if incident else
                          dt.date(2026, 11, 1), status, incident_id=incident)


@pytest.mark.parametrize("status", ["pending", "rejected", "anything else"])
def test_pending_or_rejected_never_satisfies_an_item(status):
    states = item_states(load_catalog(), [record(1, status)], dt.date(2026, 9, 1))
    mine = next(s for s in states if s.criterion == "CC1.2" and s.item == ITEM)
    assert (mine.state, mine.evidence, [w.id for w in mine.waiting]) == ("missing", None, [1])
    assert "CC1.2" in criteria_needing(states)
    approved = item_states(load_catalog(), [record(1, status), record(2, "approved")], dt.date(2026, 9, 1))
    assert next(s for s in approved if s.criterion == "CC1.2" and s.item == ITEM).evidence.id == 2


def test_late_and_backdated_uploads_are_flagged_not_refused(engine, tmp_path):
    assert quarter_end(dt.date(2026, 7, 15)) == dt.date(2026, 9, 30) and quarter_end(dt.date(2026, 12, 1)) == dt.date(2026, 12, 31)
    at = dt.datetime(2026, 12, 1, 9, tzinfo=dt.timezone.utc)
    late = upload_flags(dt.date(2026, 7, 15), at)
    assert late[0].startswith("late upload: uploaded 2026-12-01, 62 days after the quarter of its effective date (2026-Q3)")
    assert late[1] == "backdated: effective 139 days before its upload (more than 30)"
    assert upload_flags(dt.date(2026, 11, 20), at) == []  # in its quarter, 11 days before
    with freeze_time("2026-12-01 09:00:00"):
        row = submit(engine, tmp_path, effective=dt.date(2026, 7, 15))
    unexplained = [*late, f"no explanation: it covers its period only with an explanation approved with it "
                          f"(auditbook evidence explain {row.id})"]
    assert row.timeline_flags == late and row.flags == unexplained and evidence_documents(engine)[0].flags == unexplained
    assert evidence_trail(engine, row.id)[0]["after"]["flags"] == unexplained


def test_backdate_threshold_is_strictly_more_than_n_days():
    at = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    assert upload_flags(dt.date(2026, 10, 31), at) == ["backdated: effective 31 days before its upload (more than 30)"]
    assert upload_flags(dt.date(2026, 11, 1), at) == []  # 30 days: not more than 30
    assert upload_flags(dt.date(2026, 11, 1), at, backdate_days=10)[0].startswith("backdated")


def test_per_incident_records_each_incident_needs_its_own_approved_record(engine, tmp_path):
    catalog = load_catalog()
    assert next(m for m in catalog.control("CC7.4").manual_evidence if m.name == RECORDS).per == "incident"

    def state():
        return next(s for s in evidence_status(engine, catalog, dt.date(2026, 12, 1))
                    if s.criterion == "CC7.4" and s.item == RECORDS)
    assert (state().state, state().events) == ("current", [])  # no incident: nothing to evidence
    with freeze_time("2026-11-10 10:00:00"):
        one = incidents.create(engine, ALICE, title="S3 bucket public", severity="high")
        two = incidents.create(engine, ALICE, title="Root sign-in", severity="critical")
    assert (state().state, state().missing_events) == ("missing", [one["id"], two["id"]])
    first = submit(engine, tmp_path, criterion="CC7.4", item=RECORDS, incident=one["id"], effective=dt.date(2026, 11, 12))
    assert state().missing_events == [one["id"], two["id"]]  # pending counts for nothing
    decide_evidence(engine, BOB, first.id, 1, "approve", "timeline and containment recorded")
    assert (state().state, state().missing_events) == ("missing", [two["id"]])
    second = submit(engine, tmp_path, criterion="CC7.4", item=RECORDS, incident=two["id"],
                    effective=dt.date(2026, 11, 13), name="root.txt")
    decide_evidence(engine, BOB, second.id, 1, "approve", "recorded")
    assert (state().state, state().missing_events, state().events) == ("current", [], [one["id"], two["id"]])
    later = next(s for s in evidence_status(engine, catalog, dt.date(2026, 12, 1), since=dt.date(2026, 11, 11))
                 if s.criterion == "CC7.4" and s.item == RECORDS)
    assert later.events == []  # a period starting after both incidents has none to evidence
    before = next(s for s in evidence_status(engine, catalog, dt.date(2026, 11, 9)) if s.item == RECORDS)
    assert before.events == []  # nor does a day before they were opened


def test_per_incident_item_without_its_population_is_missing_never_pass():
    states = item_states(load_catalog(), [record(1, "approved", item=RECORDS, incident=4)], dt.date(2026, 9, 1))
    mine = next(s for s in states if s.criterion == "CC7.4" and s.item == RECORDS)
    assert mine.state == "missing"  # incidents not given: one document alone does not pass it
    given = item_states(load_catalog(), [record(1, "approved", item=RECORDS, incident=4)], dt.date(2026, 9, 1),
                        incidents=[(4, dt.date(2026, 8, 1)), (5, dt.date(2026, 9, 2))])
    mine = next(s for s in given if s.criterion == "CC7.4" and s.item == RECORDS)
    assert (mine.state, mine.events) == ("current", [4])  # incident 5 was opened after the day


@pytest.mark.parametrize("incident,message", [(None, "is one document per incident: name the incident"),
                                              (77, "there is no incident 77")])
def test_a_per_incident_document_names_an_existing_incident(engine, tmp_path, incident, message):
    with pytest.raises(UserError, match=f"^--incident: .*{message}"):
        submit(engine, tmp_path, criterion="CC7.4", item=RECORDS, incident=incident)
    assert evidence_documents(engine) == []


def test_only_per_incident_items_take_an_incident(engine, tmp_path):
    with pytest.raises(UserError, match="is not one document per incident"):
        submit(engine, tmp_path, incident=1)


def test_per_needs_a_per_event_cadence(tmp_path):
    import yaml

    from auditbook.catalog.model import DEFAULT_PATH
    raw = yaml.safe_load(DEFAULT_PATH.read_text())
    raw.pop("parameters_file", None)  # the thresholds' defaults: the company file is not copied
    next(c for c in raw["controls"] if c["id"] == "CC1.2")["manual_evidence"][0]["per"] = "incident"
    path = tmp_path / "controls.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(UserError, match="control CC1.2: field manual_evidence.0: .*per: incident needs cadence per-event"):
        load_catalog(path)


def test_hostile_strings_are_stored_as_typed(engine, tmp_path):
    row = submit(engine, tmp_path, actor=Actor(EVIL, "analyst"), name="x.txt")
    done = decide_evidence(engine, BOB, row.id, 1, "reject", EVIL)
    assert (done.submitted_by, done.reason) == (EVIL, EVIL)


# -- the command line ----------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, capsys):
    """`auditbook ARGS` through cli.main.main (its error mapping: exit 2 and one line for bad input)."""
    return lambda *args: CliResult(*run_main(capsys, monkeypatch, *args, width=None))


def test_cli_submit_list_pending_approve(tmp_path, monkeypatch, cli):
    db = f"sqlite:///{tmp_path}/c.db"
    doc = tmp_path / "charter.txt"
    doc.write_text("board charter")
    monkeypatch.setattr("auditbook.auth.login_name", lambda: "kim")
    added = cli("evidence", "add", "CC1.2", str(doc), "--item", "Board charter", "--owner", "chair",
                "--effective-date", "2026-01-05", "--db", db)
    assert added.exit_code == 0 and "pending approval" in added.output and "late upload" in added.output
    pending = json.loads(cli("evidence", "list", "--pending", "--format", "json", "--db", db).stdout)
    assert [(p["id"], p["submitted_by"], p["status"]) for p in pending] == [(1, "kim (cli)", "pending")]
    assert any(f.startswith("late upload") for f in pending[0]["flags"])
    own = cli("evidence", "approve", "1", "--reason", "mine", "--db", db)
    assert own.exit_code == 2 and "two-person rule" in own.output
    monkeypatch.setattr("auditbook.auth.login_name", lambda: "lee")
    ok = cli("evidence", "approve", "1", "--reason", "charter v3 checked", "--db", db)
    assert ok.exit_code == 0 and "approved by lee (cli)" in ok.output
    assert json.loads(cli("evidence", "list", "--pending", "--format", "json", "--db", db).stdout) == []


@pytest.mark.parametrize("args,message", [
    (["evidence", "approve", "1"], "--reason: give the reason"),
    (["evidence", "reject", "1", "--reason", " "], "--reason: give the reason"),
    (["evidence", "reject", "9", "--reason", "no"], "ID: there is no document 9"),
    (["evidence", "approve", "0", "--reason", "no"], "Invalid value for 'ID'"),
    (["evidence", "approve", "x", "--reason", "no"], "Invalid value for 'ID'"),
    (["evidence", "add", "CC7.4", "DOC", "--item", RECORDS, "--owner", "o", "--effective-date", "2026-07-01"],
     "--incident: CC7.4 / Incident records is one document per incident"),
    (["evidence", "add", "CC7.4", "DOC", "--item", RECORDS, "--owner", "o", "--effective-date", "2026-07-01",
      "--incident", "-3"], "Invalid value for '--incident'"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, args, message, cli):
    db = f"sqlite:///{tmp_path}/c.db"
    doc = tmp_path / "d.txt"
    doc.write_text("d")
    open_engine(db)
    done = cli(*[str(doc) if a == "DOC" else a for a in args], "--db", db)
    assert done.exit_code == 2 and message in done.output and "Traceback" not in done.output


# -- the migration -------------------------------------------------------------------------------------

def test_documents_of_an_old_store_are_migrated_pending(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine, text

    from auditbook.store.db import alembic_config
    url = f"sqlite:///{tmp_path}/old.db"
    old = create_engine(url)
    with old.begin() as conn:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0018")
        conn.execute(text("INSERT INTO documents (sha256, size, content) VALUES (:s, 1, :c)"),
                     {"s": "a" * 64, "c": b"x"})
        conn.execute(text("INSERT INTO manual_evidence (criterion, item, filename, sha256, owner, uploaded_by, "
                          "uploaded_at, effective_date, expires_on) VALUES ('CC1.2', :i, 'm.pdf', :s, 'o', 'olduser', "
                          "'2026-08-01 10:00:00', '2026-08-01', '2026-11-01')"), {"i": ITEM, "s": "a" * 64})
    old.dispose()
    engine = open_engine(url)
    (doc,) = evidence_documents(engine)
    assert (doc.status, doc.submitted_by, doc.decided_by) == ("pending", "olduser", None)
    assert "migration 0019" in doc.note
    assert item_state(engine, dt.date(2026, 9, 1)).state == "missing"


# -- the evidence page ---------------------------------------------------------------------------------

APP = __import__("pathlib").Path(__file__).resolve().parents[2] / "app"


@pytest.fixture
def page(engine, tmp_path, monkeypatch):
    """The evidence page as an actor (the context a sign-in would make), over a store holding one
    pending, late-uploaded document with hostile text."""
    import importlib

    from streamlit.testing.v1 import AppTest
    monkeypatch.syspath_prepend(str(APP))
    ui = importlib.import_module("ui")
    submit(engine, tmp_path, actor=Actor(f"alice {EVIL}", "analyst"), name="evil-<b>name<i>.txt")
    db = str(engine.url)

    def make(actor: Actor) -> AppTest:
        at = AppTest.from_file(str(APP / "views" / "evidence.py"), default_timeout=60)
        at.session_state["ab_ctx"] = ui.Context(actor, "oidc", db, engine, None)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return make


def _texts(at) -> str:
    return " ".join(str(e.value) for e in (*at.markdown, *at.caption, *at.error, *at.success, *at.warning))


@pytest.mark.parametrize("role", ["approver", "admin"])
def test_page_an_approver_approves_with_a_reason(page, engine, role):
    at = page(Actor(f"{role}@corp.example", role))
    frame = at.dataframe[0].value
    assert list(frame["status"]) == ["pending"] and frame["flags"][0].startswith("late upload")
    assert frame["submitted by"][0] == f"alice {EVIL}" and frame["file"][0] == "evil-<b>name<i>.txt"
    at.text_area[0].input(EVIL)
    next(b for b in at.button if b.label == "Approve").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (doc,) = evidence_documents(engine)
    assert (doc.status, doc.decided_by, doc.reason) == ("approved", f"{role}@corp.example", EVIL)
    assert not re.search(r"(?<!\\)<", _texts(at))  # text is shown escaped, never as markup


def test_page_reject_without_reason_is_refused(page, engine):
    at = page(Actor("bob@corp.example", "approver"))
    next(b for b in at.button if b.label == "Reject").click()
    at.run()
    assert "reason" in " ".join(e.value for e in at.error)
    assert evidence_documents(engine)[0].status == "pending"
    at.text_area[0].input("not the minutes of this board")
    next(b for b in at.button if b.label == "Reject").click()
    at.run()
    assert evidence_documents(engine)[0].status == "rejected"


def test_page_the_submitter_is_refused(page, engine):
    at = page(Actor(f"alice {EVIL}", "admin"))
    at.text_area[0].input("mine, fine")
    next(b for b in at.button if b.label == "Approve").click()
    at.run()
    shown_error = " ".join(e.value for e in at.error)
    assert "two\\-person rule" in shown_error and "\\<img src" in shown_error  # escaped for markdown
    assert not re.search(r"(?<!\\)[<*\[]", shown_error)  # no markup starts unescaped
    assert evidence_documents(engine)[0].status == "pending"


@pytest.mark.parametrize("role", ["viewer", "analyst", "auditor"])
def test_page_without_the_permission_shows_no_decision(page, engine, role):
    at = page(Actor(f"{role}@corp.example", role))
    assert not [b for b in at.button if b.label in ("Approve", "Reject")] and not at.text_area
    assert at.dataframe[0].value["status"][0] == "pending"


def test_the_demo_documents_are_submitted_and_approved_by_two_simulated_people(engine):
    """demo/quarter.demo_documents: uploaded after the quarter (the flags show it), each submitted by
    one SIMULATED person and approved by another; the per-incident item gets none (no incident)."""
    from auditbook.demo.quarter import demo_documents
    from auditbook.history.period import quarter
    with freeze_time("2026-12-01 08:00:00"):
        count = demo_documents(engine, load_catalog(), quarter(2026, 3))
    docs = evidence_documents(engine)
    assert count == len(docs) > 0 and {d.status for d in docs} == {"approved"}
    assert all("SIMULATED" in d.submitted_by and "SIMULATED" in d.decided_by and d.submitted_by != d.decided_by
               for d in docs)
    assert all(d.flags and d.flags[0].startswith("late upload: uploaded 2026-12-01") for d in docs)
    assert not [d for d in docs if d.item == RECORDS]
    cc74 = next(s for s in evidence_status(engine, load_catalog(), dt.date(2026, 9, 30))
                if s.criterion == "CC7.4" and s.item == RECORDS)
    assert (cc74.state, cc74.events) == ("current", [])


@pytest.mark.parametrize("text", ["ok\x00then", "ok\x1b[31mred", "evil\u202egnp.exe", "zero\u200bwidth", "c1\x85c1"])
def test_a_reason_explanation_or_comment_with_an_unsafe_character_is_refused_in_one_line(text):
    """PostgreSQL refuses NUL (a traceback on the page), terminals obey escapes, and bidi/zero-width
    characters make text read other than it is: refused, naming the option and the character."""
    from auditbook.evaluate.evidence_review import checked_explanation, checked_reason
    from auditbook.history.signoffs import checked_comment
    for check, option in ((checked_reason, "--reason"), (checked_explanation, "--explanation"),
                          (checked_comment, "--comment")):
        with pytest.raises(UserError, match=f"^{option}: .* contains the character"):
            check(text)
    assert checked_reason("two lines\nand a\ttab") == "two lines\nand a\ttab"


def test_an_approver_decides_on_the_version_they_read_once_the_submitter_has_changed_it(tmp_path, monkeypatch, cli):
    """An attack pass: the submitter explained (or re-linked) a pending document between the approver's
    read and their approval, and the approval covered text they never saw."""
    db = f"sqlite:///{tmp_path}/c.db"
    doc = tmp_path / "charter.txt"
    doc.write_text("board charter")
    monkeypatch.setattr("auditbook.auth.login_name", lambda: "kim")
    assert cli("evidence", "add", "CC1.2", str(doc), "--item", "Board charter", "--owner", "chair",
               "--effective-date", "2026-01-05", "--db", db).exit_code == 0
    assert cli("evidence", "explain", "1", "--explanation", "signed at the January board", "--db", db).exit_code == 0
    pending = json.loads(cli("evidence", "list", "--pending", "--format", "json", "--db", db).stdout)
    assert (pending[0]["version"], pending[0]["explanation"]) == (2, "signed at the January board")
    monkeypatch.setattr("auditbook.auth.login_name", lambda: "lee")
    blind = cli("evidence", "approve", "1", "--reason", "ok", "--db", db)
    assert blind.exit_code == 2 and "--version 2" in blind.output
    stale = cli("evidence", "approve", "1", "--reason", "ok", "--version", "1", "--db", db)
    assert stale.exit_code == 2 and "changed since it was read" in stale.output
    ok = cli("evidence", "approve", "1", "--reason", "charter and its explanation read", "--version", "2", "--db", db)
    assert ok.exit_code == 0 and "approved by lee (cli)" in ok.output
