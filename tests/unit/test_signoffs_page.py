"""The Sign-offs page of the control room (issue 14 §6): every criterion, the packet and the assertion
with preparer, reviewer, times, decision and comments; an analyst prepares, an approver reviews (the
two-person rule enforced by history.signoffs, the page showing its refusal); roles without the
permission see no form; hostile names and comments are shown as text, never markup."""
import datetime as dt
import re
from pathlib import Path

import pytest

from auditbook.auth import Actor
from auditbook.catalog.model import load_catalog
from auditbook.history.period import parse_period
from auditbook.history.signoffs import prepare, review, signoffs_for

APP = Path(__file__).resolve().parents[2] / "app"
Q3 = parse_period("2026Q3")
EVIL = "<img src=x onerror=alert(1)> **bold** [link](http://198.51.100.1/)"
ANA, BOB = Actor(f"ana {EVIL}", "analyst"), Actor("bob@example.com", "approver")
T0 = dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    return open_engine(f"sqlite:///{tmp_path}/s.db")


@pytest.fixture
def page(engine, catalog, monkeypatch):
    import importlib

    from streamlit.testing.v1 import AppTest
    monkeypatch.syspath_prepend(str(APP))
    ui = importlib.import_module("ui")

    def make(actor: Actor):
        at = AppTest.from_file(str(APP / "views" / "signoffs.py"), default_timeout=60)
        at.session_state["ab_ctx"] = ui.Context(actor, "oidc", str(engine.url), engine, catalog)
        at.run()
        at.text_input[0].input("2026Q3")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return make


def _texts(at) -> str:
    return " ".join(str(e.value) for e in (*at.markdown, *at.caption, *at.error, *at.success, *at.warning,
                                            *at.info, *at.subheader))


def _errors(at) -> str:
    """The page's error messages, without the backslashes that escape them for markdown."""
    return " ".join(e.value for e in at.error).replace("\\", "")


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _frame(at):
    return at.dataframe[0].value.set_index("subject")


def test_the_table_lists_every_criterion_the_packet_and_the_assertion_with_both_people(page, engine, catalog):
    prepare(engine, catalog, ANA, Q3, "CC7.3", f"populations attached {EVIL}", at=T0)
    review(engine, catalog, BOB, Q3, "CC7.3", "approved", "sample of 25 alerts inspected", at=T0 + dt.timedelta(hours=2))
    prepare(engine, catalog, ANA, Q3, "packet", at=T0)
    at = page(Actor("viewer@example.com", "viewer"))
    frame = _frame(at)
    assert list(frame.index) == [c.id for c in catalog.controls] + ["packet", "assertion"]
    cc73 = frame.loc["CC7.3"]
    assert (cc73["state"], cc73["preparer"], cc73["prepared at"], cc73["reviewer"], cc73["decision"]) == (
        "reviewed", ANA.name, "2026-10-05 09:00 UTC", BOB.name, "approved")
    assert cc73["preparation comment"] == f"populations attached {EVIL}"  # as typed, in a cell (text)
    assert cc73["review comment"] == "sample of 25 alerts inspected" and cc73["reviewed at"] == "2026-10-05 11:00 UTC"
    assert (frame.loc["packet", "state"], frame.loc["assertion", "state"], frame.loc["CC1.1", "state"]) == (
        "prepared", "unsigned", "unsigned")
    assert "1 reviewed" in _texts(at) and f"of {len(catalog.controls)} criteria" in _texts(at)
    packet_line = next(m.value for m in at.markdown if m.value.startswith("**Packet**"))
    assert "prepared by ana \\<img" in packet_line and "\\*\\*bold\\*\\* \\[link\\]" in packet_line
    assert not re.search(r"(?<!\\)<", " ".join(m.value for m in at.markdown))  # markup shown escaped
    assert not [b for b in at.button if b.label in ("Sign as prepared", "Save review")]  # a viewer: no forms
    at.selectbox(key="history_subject").set_value("CC7.3").run()
    history = at.dataframe[1].value
    assert list(zip(history["stage"], history["by"], history["comment"])) == [
        ("prepare", ANA.name, f"populations attached {EVIL}"), ("review", BOB.name, "sample of 25 alerts inspected")]


def test_an_analyst_prepares_and_an_approver_reviews_from_the_page(page, engine):
    at = page(ANA)
    assert not [b for b in at.button if b.label == "Save review"]  # an analyst does not review
    box = next(s for s in at.selectbox if s.label == "Subject to prepare")
    box.set_value("CC8.1")
    next(a for a in at.text_area if a.label == "Preparation comment (optional)").input(f"changes listed {EVIL}")
    _button(at, "Sign as prepared").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "CC8.1: prepared — now prepared." in _texts(at).replace("\\", "")  # (escaped for markdown)
    cc81 = signoffs_for(engine, Q3, ["CC8.1"])["criteria"]["CC8.1"]
    assert (cc81["state"], cc81["preparer"], cc81["preparation_comment"]) == ("prepared", ANA.name,
                                                                             f"changes listed {EVIL}")
    at = page(BOB)
    assert not [b for b in at.button if b.label == "Sign as prepared"]  # an approver does not prepare
    assert next(s for s in at.selectbox if s.label == "Subject to review").options == ["CC8.1 · prepared"]
    next(s for s in at.selectbox if s.label == "Decision").set_value("changes-requested")
    _button(at, "Save review").click()
    at.run()
    assert "comment" in _errors(at)  # a comment is required unless approved
    assert signoffs_for(engine, Q3, ["CC8.1"])["criteria"]["CC8.1"]["state"] == "prepared"
    next(a for a in at.text_area if a.label.startswith("Review comment")).input("link the tickets <b>CHG-1</b>")
    _button(at, "Save review").click()
    at.run()
    assert not at.error, [e.value for e in at.error]
    cc81 = signoffs_for(engine, Q3, ["CC8.1"])["criteria"]["CC8.1"]
    assert (cc81["state"], cc81["reviewer"], cc81["review_comment"]) == (
        "changes requested", BOB.name, "link the tickets <b>CHG-1</b>")
    assert _frame(at).loc["CC8.1", "review comment"] == "link the tickets <b>CHG-1</b>"


def test_the_preparer_cannot_review_their_own_preparation_on_the_page(page, engine, catalog):
    admin = Actor("ana@example.com", "admin")
    prepare(engine, catalog, admin, Q3, "packet", "ready", at=T0)
    at = page(Actor("Ana@Example.com ", "admin"))  # the same person, however the name is typed
    next(s for s in at.selectbox if s.label == "Subject to review").set_value("packet")
    _button(at, "Save review").click()
    at.run()
    assert "two-person rule" in _errors(at)
    assert signoffs_for(engine, Q3)["packet"]["state"] == "prepared"


def test_a_review_of_a_preparation_the_page_did_not_show_is_refused(page, engine, catalog):
    prepare(engine, catalog, ANA, Q3, "CC6.1", "first", at=T0)
    at = page(BOB)
    prepare(engine, catalog, ANA, Q3, "CC6.1", "second, with more evidence", at=T0 + dt.timedelta(hours=1))
    next(s for s in at.selectbox if s.label == "Subject to review").set_value("CC6.1")
    _button(at, "Save review").click()
    at.run()
    assert "prepared again since this page was read" in _errors(at)
    assert signoffs_for(engine, Q3, ["CC6.1"])["criteria"]["CC6.1"]["reviewer"] is None


def test_a_bad_period_is_one_line_and_no_table(page, engine, catalog, monkeypatch):
    at = page(BOB)
    at.text_input[0].input("2026Q5")
    at.run()
    assert at.error and "2026Q5" in at.error[0].value and not at.dataframe
