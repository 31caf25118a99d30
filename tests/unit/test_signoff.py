"""Sign-offs (issue 14 §6): a preparer and a second person reviewing, per criterion, for the packet and
for the management assertion; the order rules (a review needs a preparation, one review per
preparation, a new preparation invalidates the review); who may do what; every sign-off an audit-trail
entry; hostile comments stored as typed and inert in JSON; the assertion's text setting; the command."""
import datetime as dt
import json

import pytest

from auditbook.auth import Actor, PermissionDenied
from auditbook.catalog.model import load_catalog
from auditbook.errors import UserError
from auditbook.history.period import parse_period
from auditbook.history.signoffs import (
    ASSERTION_KEY,
    DEFAULT_ASSERTION,
    assertion,
    prepare,
    review,
    signoffs_for,
    valid_assertion,
)
from auditbook.monitor import settings
from auditbook.store import audit_log
from auditbook.store.session import reading
from tests.conftest import run_main

ALICE, BOB, ADMIN = Actor("alice@example.com", "analyst"), Actor("bob@example.com", "approver"), Actor("root", "admin")
Q3 = parse_period("2026Q3")
T0 = dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.timezone.utc)
HOSTILE = '"}, "state": "reviewed", "x": "<script>alert(1)</script>\n**bold** [link](javascript:x)'  # control and format characters: refused (test_evidence_approval)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    return open_engine(f"sqlite:///{tmp_path}/s.db")


def trail(engine, subject="CC7.3"):
    with reading(engine) as session:
        return audit_log.trail(session, "signoff", f"2026-07-01..2026-09-30:{subject}")


def state(engine, subject="CC7.3"):
    found = signoffs_for(engine, Q3, ["CC7.3"])
    return found["packet"] if subject == "packet" else found["criteria"][subject]


# -- the rules -------------------------------------------------------------------------------------

def test_a_second_person_reviews_and_the_state_names_both(engine, catalog):
    assert state(engine)["state"] == "unsigned"
    prepare(engine, catalog, ALICE, Q3, "CC7.3", "populations attached", at=T0)
    assert state(engine)["state"] == "prepared"
    review(engine, catalog, BOB, Q3, "CC7.3", "approved", at=T0 + dt.timedelta(hours=1))
    s = state(engine)
    assert (s["state"], s["preparer"], s["reviewer"], s["decision"]) == ("reviewed", ALICE.name, BOB.name, "approved")
    assert s["prepared_at"] == T0.isoformat() and s["preparation_comment"] == "populations attached"


@pytest.mark.parametrize("reviewer", [Actor("alice@example.com", "admin"), Actor(" ALICE@example.com ", "approver"),
                                      Actor("alice@example.com (cli)", "approver")])
def test_the_preparer_may_not_review_their_own_preparation(engine, catalog, reviewer):
    prepare(engine, catalog, ALICE, Q3, "CC7.3")
    with pytest.raises(UserError, match="two-person rule"):
        review(engine, catalog, reviewer, Q3, "CC7.3", "approved")
    assert state(engine)["state"] == "prepared" and len(trail(engine)) == 1


def test_a_review_needs_a_preparation_and_each_preparation_is_reviewed_once(engine, catalog):
    with pytest.raises(UserError, match="not prepared yet"):
        review(engine, catalog, BOB, Q3, "packet", "approved")
    assert trail(engine, "packet") == []
    prepare(engine, catalog, ALICE, Q3, "packet")
    review(engine, catalog, BOB, Q3, "packet", "changes-requested", "add the CC7.3 sample")
    with pytest.raises(UserError, match="already reviewed"):
        review(engine, catalog, ADMIN, Q3, "packet", "approved")
    s = state(engine, "packet")
    assert (s["state"], s["review_comment"]) == ("changes requested", "add the CC7.3 sample")


def test_a_new_preparation_invalidates_the_review(engine, catalog):
    prepare(engine, catalog, ALICE, Q3, "CC7.3", at=T0)
    review(engine, catalog, BOB, Q3, "CC7.3", "approved", at=T0 + dt.timedelta(hours=1))
    prepare(engine, catalog, ADMIN, Q3, "CC7.3", "re-ran the scan", at=T0 + dt.timedelta(hours=2))
    s = state(engine)
    assert (s["state"], s["reviewer"], s["decision"], s["needs_review_again"]) == ("prepared", None, None, True)
    assert [h["stage"] for h in s["history"]] == ["prepare", "review", "prepare"]  # nothing is lost
    review(engine, catalog, BOB, Q3, "CC7.3", "rejected", "the scan missed an account")
    assert state(engine)["state"] == "rejected" and not state(engine)["needs_review_again"]


def test_rejecting_or_requesting_changes_needs_a_comment_and_a_known_decision(engine, catalog):
    prepare(engine, catalog, ALICE, Q3, "CC7.3")
    for decision in ("rejected", "changes-requested"):
        with pytest.raises(UserError, match="--comment: give the reason"):
            review(engine, catalog, BOB, Q3, "CC7.3", decision, "  ")
    with pytest.raises(UserError, match="--decision: 'approve' is not one of"):
        review(engine, catalog, BOB, Q3, "CC7.3", "approve")
    with pytest.raises(UserError, match="--comment: 2001 characters"):
        prepare(engine, catalog, ALICE, Q3, "CC7.3", "x" * 2001)
    with pytest.raises(UserError, match="SUBJECT: 'CC9.9' is not a criterion"):
        prepare(engine, catalog, ALICE, Q3, "CC9.9")
    assert len(trail(engine)) == 1


@pytest.mark.parametrize("actor,call", [
    (Actor("v", "viewer"), "prepare"), (Actor("a", "auditor"), "prepare"), (Actor("w", "wall"), "prepare"),
    (Actor("p", "approver"), "prepare"), (Actor("v", "viewer"), "review"), (Actor("a", "auditor"), "review"),
    (Actor("w", "wall"), "review"), (Actor("ana", "analyst"), "review")])
def test_roles_that_may_not_sign_are_refused_and_nothing_is_written(engine, catalog, actor, call):
    if call == "review":
        prepare(engine, catalog, ALICE, Q3, "CC7.3")
    with pytest.raises(PermissionDenied):
        if call == "prepare":
            prepare(engine, catalog, actor, Q3, "CC7.3")
        else:
            review(engine, catalog, actor, Q3, "CC7.3", "approved")
    assert len(trail(engine)) == (1 if call == "review" else 0)


def test_each_sign_off_is_an_audit_trail_entry_with_who_when_and_what(engine, catalog):
    prepare(engine, catalog, ALICE, Q3, "CC7.3", "ready", at=T0)
    review(engine, catalog, BOB, Q3, "CC7.3", "approved", "ok", at=T0 + dt.timedelta(minutes=5))
    entries = trail(engine)
    assert [(e["action"], e["actor"], e["role"], e["at"]) for e in entries] == [
        ("prepare", ALICE.name, "analyst", T0), ("review", BOB.name, "approver", T0 + dt.timedelta(minutes=5))]
    assert entries[1]["after"]["preparation"] == {"by": ALICE.name, "at": T0.isoformat()}
    assert entries[1]["after"]["decision"] == "approved" and entries[0]["after"]["period"]["label"] == "2026Q3"


def test_a_hostile_comment_is_stored_as_typed_and_inert_in_json(engine, catalog):
    prepare(engine, catalog, ALICE, Q3, "CC7.3", HOSTILE)
    review(engine, catalog, BOB, Q3, "CC7.3", "changes-requested", HOSTILE)
    found = json.loads(json.dumps(signoffs_for(engine, Q3, ["CC7.3"])))
    s = found["criteria"]["CC7.3"]
    assert s["preparation_comment"] == HOSTILE.strip() and s["review_comment"] == HOSTILE.strip()
    assert s["state"] == "changes requested" and set(found) == {"period", "decisions", "states", "criteria",
                                                                "packet", "assertion"}


# -- the management assertion ----------------------------------------------------------------------

def test_the_assertion_text_is_an_audited_admin_setting_rendered_for_the_period(engine, catalog):
    text = assertion(engine, Q3)["text"]
    assert "2026-07-01 to 2026-09-30 (2026Q3)" in text and DEFAULT_ASSERTION["organisation"] in text
    with pytest.raises(PermissionDenied):
        settings.put(engine, ALICE, ASSERTION_KEY, {"text": "x"})
    settings.put(engine, ADMIN, ASSERTION_KEY, {"text": "$organisation asserts $period.", "organisation": "Acme"})
    assert assertion(engine, Q3)["text"] == "Acme asserts 2026Q3."
    with reading(engine) as session:
        entry = audit_log.trail(session, "setting", ASSERTION_KEY)[-1]
    assert entry["actor"] == "root" and entry["after"]["text"] == "$organisation asserts $period."
    assert entry["before"]["text"] == DEFAULT_ASSERTION["text"]


@pytest.mark.parametrize("value,message", [
    ({"text": "${__class__} $period"}, r"management_assertion.text: '\$__class__'"),
    ({"text": "costs $5"}, "management_assertion.text"),
    ({"text": "ok", "organisation": "Acme\x1b[2J"}, "management_assertion.organisation: contains the control"),
    ({"text": ""}, "management_assertion.text: '' is not text"),
    ({"text": "x" * 20001}, "management_assertion.text"),
    ({"body": "x"}, "management_assertion.'body': not a field"),
    (["x"], "management_assertion: list is not a mapping"),
])
def test_a_bad_assertion_setting_is_refused_naming_the_field(engine, value, message):
    with pytest.raises(UserError, match=message):
        settings.put(engine, ADMIN, ASSERTION_KEY, value)
    assert valid_assertion({"text": "costs $$5 in $period"})["text"] == "costs $$5 in $period"


def test_the_assertion_is_signed_off_with_the_text_it_signed(engine, catalog):
    prepare(engine, catalog, ALICE, Q3, "assertion", at=T0)
    review(engine, catalog, ADMIN, Q3, "assertion", "approved")
    found = assertion(engine, Q3)
    assert found["signoff"]["state"] == "reviewed" and found["signed_text"] == found["text"]
    assert not found["text_changed"]
    settings.put(engine, ADMIN, ASSERTION_KEY, {"text": "Changed for $period."})
    assert assertion(engine, Q3)["text_changed"] and signoffs_for(engine, Q3)["assertion"]["text_changed"]


# -- the command -----------------------------------------------------------------------------------

def run(capsys, monkeypatch, *args, user="alice") -> tuple[int, str, str]:
    monkeypatch.setattr("auditbook.auth.login_name", lambda: user)
    return run_main(capsys, monkeypatch, *args)


def test_the_command_prepares_reviews_and_shows_the_state(engine, capsys, monkeypatch):
    db = str(engine.url)
    code, out, err = run(capsys, monkeypatch, "signoff", "prepare", "CC7.3", "--period", "2026Q3",
                         "--comment", HOSTILE, "--db", db)
    assert code == 0 and "CC7.3: prepared · prepared by alice (cli)" in out, err
    code, out, err = run(capsys, monkeypatch, "signoff", "review", "CC7.3", "--period", "2026-07-01..2026-09-30",
                         "--decision", "approved", "--db", db, user="bob")
    assert code == 0 and "approved by bob (cli)" in out, err
    code, out, err = run(capsys, monkeypatch, "signoff", "status", "--period", "2026Q3", "--db", db)
    assert code == 0 and "\x1b" not in out and "reviewed" in out
    code, out, err = run(capsys, monkeypatch, "signoff", "status", "--period", "2026Q3", "--format", "json",
                         "--db", db)
    shown = json.loads(out)["criteria"]["CC7.3"]
    assert shown["preparation_comment"] == HOSTILE.strip() and shown["reviewer"] == "bob (cli)"


@pytest.mark.parametrize("args,message", [
    (("prepare", "CC9.9", "--period", "2026Q3"), "error: SUBJECT: 'CC9.9' is not a criterion"),
    (("prepare", "CC7.3", "--period", "2026Q9"), "error: --period: '2026Q9' is not a quarter"),
    (("prepare", "CC7.3", "--period", "2026Q3", "--comment", "x" * 2001), "error: --comment: 2001 characters"),
    (("review", "CC7.3", "--period", "2026Q3", "--decision", "rejected"), "error: --comment: give the reason"),
    (("review", "CC7.3", "--period", "2026Q3", "--decision", "approved"), "error: CC7.3: not prepared yet"),
    (("assertion-text", "--organisation", "A\x1b[2J"), "error: management_assertion.organisation: contains"),
])
def test_bad_input_is_one_line_and_exit_2_and_records_nothing(engine, capsys, monkeypatch, args, message):
    code, out, err = run(capsys, monkeypatch, "signoff", *args, "--db", str(engine.url))
    assert code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert "Traceback" not in err and trail(engine) == []


def test_the_same_person_at_the_terminal_cannot_review_their_preparation(engine, capsys, monkeypatch):
    db = str(engine.url)
    run(capsys, monkeypatch, "signoff", "prepare", "packet", "--period", "2026Q3", "--db", db)
    code, out, err = run(capsys, monkeypatch, "signoff", "review", "packet", "--period", "2026Q3",
                         "--decision", "approved", "--db", db)
    assert code == 2 and "two-person rule" in err and err.count("\n") == 1
    assert [e["action"] for e in trail(engine, "packet")] == ["prepare"]


def test_the_assertion_text_command_shows_and_sets_it_in_the_trail(engine, capsys, monkeypatch, tmp_path):
    db = str(engine.url)
    (tmp_path / "a.txt").write_text("$organisation asserts for $period_start..$period_end.\n")
    code, out, err = run(capsys, monkeypatch, "signoff", "assertion-text", "--text-file", str(tmp_path / "a.txt"),
                         "--organisation", "Acme", "--period", "2026Q3", "--db", db)
    assert code == 0 and "Acme asserts for 2026-07-01..2026-09-30." in out, err
    with reading(engine) as session:
        assert audit_log.trail(session, "setting", ASSERTION_KEY)[-1]["actor"] == "alice (cli)"
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe")
    code, out, err = run(capsys, monkeypatch, "signoff", "assertion-text", "--text-file", str(tmp_path / "b.txt"),
                         "--db", db)
    assert code == 2 and "is not UTF-8 text" in err and err.count("\n") == 1


def test_the_assertion_reads_the_same_however_the_period_is_given(engine, catalog):
    from auditbook.history.sampling import parse_audit_period
    prepare(engine, catalog, ALICE, parse_audit_period("2026Q3"), "assertion")
    by_dates = parse_period(start="2026-07-01", end="2026-09-30")  # as the packet's notebooks give it
    found = assertion(engine, by_dates)
    assert "(2026Q3)" in found["text"] and not found["text_changed"]
    assert found["signoff"]["state"] == "prepared"
    assert "(2026)" in assertion(engine, parse_audit_period("2026"))["text"]
    assert "(2026-07-01 to 2026-08-15)" in assertion(engine, parse_audit_period("2026-07-01..2026-08-15"))["text"]


def test_a_criterion_pages_sign_off_line_names_both_people_and_stays_escaped(engine, catalog):
    from auditbook.history.signoffs import signoff_line, signoff_of
    from auditbook.report import page_helpers as nbh
    assert signoff_line(signoff_of(engine, Q3, "CC7.3")) == "unsigned: not prepared for review yet"
    prepare(engine, catalog, ALICE, Q3, "CC7.3", at=T0)
    assert signoff_line(signoff_of(engine, Q3, "CC7.3")).endswith("· waiting for review")
    review(engine, catalog, BOB, Q3, "CC7.3", "changes-requested", HOSTILE, at=T0 + dt.timedelta(hours=1))
    line = signoff_line(signoff_of(engine, Q3, "CC7.3"))
    assert line.startswith("changes requested · prepared by alice@example.com at 2026-10-05 09:00 UTC · "
                           "changes-requested by bob@example.com at 2026-10-05 10:00 UTC: ")
    shown = nbh.text('<p id="signoff">Sign-off: {line}</p>', line=line).data
    assert "<script>" not in shown and "&lt;script&gt;" in shown


def test_the_assertion_is_not_reviewed_when_its_text_changed_after_preparation(engine, catalog):
    prepare(engine, catalog, ALICE, Q3, "assertion")
    settings.put(engine, ADMIN, ASSERTION_KEY, {"text": "Another text for $period."})
    with pytest.raises(UserError, match="assertion: its text changed since it was prepared"):
        review(engine, catalog, BOB, Q3, "assertion", "approved")
    prepare(engine, catalog, ALICE, Q3, "assertion")
    assert review(engine, catalog, BOB, Q3, "assertion", "approved")["state"] == "reviewed"
    assert assertion(engine, Q3)["signed_text"] == "Another text for 2026Q3."
