"""The posture page's drill-down at organisation scale (issue 16 §4): it shows the first rows worst first
(500; 1 here) and says how many there are and where all of them are — never every failing finding of
a 1,000-account organisation in one table."""
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from auditbook.catalog.model import load_catalog
from auditbook.history import posture
from auditbook.store.db import open_engine
from tests.unit.test_app import ENTRY


@pytest.fixture
def page(app_store, monkeypatch):
    monkeypatch.setenv("AUDITBOOK_DB", app_store["db"])
    monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", "viewer")
    st.cache_data.clear()
    yield lambda: AppTest.from_file(ENTRY, default_timeout=60)
    st.cache_data.clear()


def _drill_down(at):
    assert not at.exception, [e.value for e in at.exception]
    next(s for s in at.selectbox if s.label == "Criterion").select("CC6.6").run()
    assert not at.exception, [e.value for e in at.exception]
    return next(d.value for d in at.dataframe if "message" in d.value.columns)


def test_the_drill_down_shows_the_first_rows_worst_first_and_says_how_many(page, app_store, monkeypatch):
    engine, catalog = open_engine(app_store["db"]), load_catalog()
    run = posture.latest_run(engine)["id"]
    whole = posture.failing(engine, catalog, run, "CC6.6")
    assert len(whole) >= 2
    monkeypatch.setattr(posture, "FAILING_SHOWN", 1)
    at = page()
    at.run()
    frame = _drill_down(at)
    assert list(frame["resource"]) == [whole[0]["resource"]]
    note = [c.value for c in at.caption if c.value.startswith("First ")]
    assert note == [f"First 1 of {len(whole)} shown, worst first. All of them: "
                    f"`auditbook findings --run {run} --format csv` (the `controls` column names each "
                    "finding's criteria)."]


def test_a_criterion_within_the_limit_is_shown_whole_without_the_note(page, app_store):
    engine = open_engine(app_store["db"])
    whole = posture.failing(engine, load_catalog(), posture.latest_run(engine)["id"], "CC6.6")
    at = page()
    at.run()
    frame = _drill_down(at)
    assert list(frame["resource"]) == [f["resource"] for f in whole]
    assert not [c.value for c in at.caption if c.value.startswith("First ")]
