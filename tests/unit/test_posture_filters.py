"""The posture for analysts: filters by account (with its name), region, environment/owner tag,
severity and check, kept in the page's address; what changed since the previous run or a date (new
failures, regressions, fixes) from the store's intervals; account names from the runs' identities; the
SIMULATED label on every page. The store: tests/posture_store.py (its table of runs is the oracle)."""
import datetime as dt
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from auditbook.catalog.model import load_catalog
from auditbook.history import posture, posture_filters
from auditbook.history.posture_filters import Filters
from auditbook.store.db import open_engine
from tests.posture_store import SG_CHECK, A, B, build

ENTRY = str(Path(__file__).resolve().parents[2] / "app" / "control_room.py")
EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    db = f"sqlite:///{tmp_path_factory.mktemp('posture')}/store.db"
    ids = build(db)
    engine = open_engine(db)
    assert posture_filters.index_tags(engine) == 5  # the tag filters read what index_tags has read
    return {"db": db, "engine": engine, "runs": ids}


@pytest.fixture
def page(store, monkeypatch):
    monkeypatch.setenv("AUDITBOOK_DB", store["db"])

    def make(query=None, role="viewer"):
        monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", role)
        at = AppTest.from_file(ENTRY, default_timeout=60)
        for k, v in (query or {}).items():
            at.query_params[k] = v
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at
    return make


def param(at, name: str) -> list:
    """A query parameter of the page's address as a list (AppTest keeps one value as a string)."""
    value = at.query_params.get(name)
    return [] if value is None else list(value) if isinstance(value, (list, tuple)) else [value]


def changed(engine, a, b, flt=None):
    found = posture_filters.changes(engine, a, b, flt)
    return {kind: sorted((r["resource_name"], r["before"], r["after"]) for r in v["rows"]) for kind, v in found.items()}


def test_changes_between_runs_are_new_failures_regressions_and_fixes(store, monkeypatch):
    from auditbook.store import findings
    monkeypatch.setattr(findings, "at_run", lambda *a, **k: pytest.fail("a run's findings were loaded"))
    e, r = store["engine"], store["runs"]
    assert changed(e, r[1], r[2]) == {"new": [("sg-b2", "—", "FAIL")], "regressed": [("sg-a1", "PASS", "FAIL")],
                                      "fixed": [("sg-a2", "FAIL", "PASS")]}
    assert changed(e, r[2], r[3]) == {"new": [], "regressed": [("sg-b1", "PASS", "FAIL")],
                                      "fixed": [("bucket-a", "FAIL", "PASS")]}
    assert changed(e, r[1], r[3]) == {"new": [("sg-b2", "—", "FAIL")],
                                      "regressed": [("sg-a1", "PASS", "FAIL"), ("sg-b1", "PASS", "FAIL")],
                                      "fixed": [("bucket-a", "FAIL", "PASS"), ("sg-a2", "FAIL", "gone")]}
    assert changed(e, r[1], r[3], Filters(account=A)) == {
        "new": [], "regressed": [("sg-a1", "PASS", "FAIL")], "fixed": [("bucket-a", "FAIL", "PASS"), ("sg-a2", "FAIL", "gone")]}
    assert changed(e, r[1], r[3], Filters(tag=("environment", "prod"))) == {
        "new": [], "regressed": [("sg-a1", "PASS", "FAIL")], "fixed": [("sg-a2", "FAIL", "gone")]}
    assert changed(e, r[1], r[3], Filters(severities=("medium",)))["fixed"] == [("bucket-a", "FAIL", "PASS")]
    found = posture_filters.changes(e, r[1], r[3], limit=1)
    assert found["regressed"]["total"] == 2 and len(found["regressed"]["rows"]) == 1


def test_baseline_is_the_previous_run_or_the_last_run_on_or_before_a_date(store):
    e, r = store["engine"], store["runs"]
    assert posture_filters.baseline(e, r[3])["id"] == r[2]
    first = posture_filters.baseline(e, r[2])["started_at"]
    assert posture_filters.baseline(e, r[3], first.date())["id"] == r[1]
    assert posture_filters.baseline(e, r[3], first.date() - dt.timedelta(days=1)) is None
    assert posture_filters.baseline(e, r[1]) is None


def test_filtered_counts_are_the_databases_and_match_the_runs_own_counts(store):
    catalog, e, run = load_catalog(), store["engine"], store["runs"][3]
    everything = {r["criterion"]: r for r in posture.criteria(e, catalog, run)}
    latest = posture.latest_run(e, catalog)  # the criteria needing manual evidence, as posture judges them
    assert latest["id"] == run and latest["needs_evidence"]
    unfiltered = posture_filters.criteria(e, catalog, run, Filters(), set(latest["needs_evidence"]))
    for row in unfiltered:
        if row["status"] != "NO_DATA":
            want = everything[row["criterion"]]
            assert (row["pass"], row["fail"], row["error"], row["excepted"], row["status"]) == \
                   (want["pass"], want["fail"], want["error"], want["excepted"], want["status"])
    cc66 = {f.__repr__(): next(r for r in posture_filters.criteria(e, catalog, run, f, set()) if r["criterion"] == "CC6.6")
            for f in (Filters(account=A), Filters(account=B), Filters(tag=("env", "staging")), Filters(severities=("medium",)))}
    assert [(r["pass"], r["fail"], r["status"]) for r in cc66.values()] == [(0, 1, "FAIL"), (0, 2, "FAIL"),
                                                                             (0, 1, "FAIL"), (0, 0, "NO_DATA")]


def test_tags_are_read_once_per_record_in_lower_case(store):
    e = store["engine"]
    assert posture_filters.index_tags(e) == 0  # nothing left to read: records are content-addressed
    values = posture_filters.filter_values(e, store["runs"][3])
    assert values["tag"] == [("env", "staging", 1), ("environment", "prod", 1), ("owner", "team-data", 1)]
    assert values["account"] == [A, B] and values["severity"] == ["high", "medium"]
    assert posture_filters.record_tag_values("aws.ec2.security_group",
                                             {"Tags": [{"Key": "Name", "Value": "x"}, {"Key": "OWNER", "Value": EVIL}]}) \
        == {"owner": EVIL}


def test_account_names_come_from_the_runs_identities(store):
    assert posture_filters.account_names(store["engine"]) == {A: "production", B: "staging"}


def test_filters_start_from_the_address_and_narrow_the_page(page, store):
    at = page({"account": B, "severity": "high", "tag": "env=staging"})
    assert next(s for s in at.selectbox if s.label == "Account").value == B
    assert next(s for s in at.selectbox if s.label == "Environment / owner tag").value == "env=staging"
    assert next(m for m in at.multiselect if m.label == "Severity").value == ["high"]
    table = at.dataframe[0].value.set_index("criterion")
    assert (table.loc["CC6.6", "fail"], table.loc["CC6.6", "pass"]) == (1, 0)
    assert table.loc["A1.2", "status"] == "NO_DATA"  # the bucket's check is medium: filtered out
    assert [m.value for m in at.metric] == ["0", "1", "0"]  # new failures, regressions, fixes since run 2
    regressions = at.dataframe[2].value
    assert list(regressions["resource_name"]) == ["sg-b1"] and list(regressions["account"]) == [f"{B} · staging"]
    assert regressions["timeline"][0].startswith("resource?arn=")


def test_choosing_a_filter_writes_it_into_the_address(page):
    at = page()
    next(s for s in at.selectbox if s.label == "Account").select(B).run()
    next(s for s in at.selectbox if s.label == "Check").select(SG_CHECK).run()
    assert not at.exception
    assert param(at, "account") == [B] and param(at, "check") == [SG_CHECK]
    next(m for m in at.multiselect if m.label == "Severity").select("high").select("medium").run()
    assert param(at, "severity") == ["high", "medium"]
    next(s for s in at.selectbox if s.label == "Account").select("").run()
    assert param(at, "account") == [] and param(at, "check") == [SG_CHECK]


def test_changes_since_a_date_from_the_address(page, store):
    first_day = posture_filters.baseline(store["engine"], store["runs"][2])["started_at"].date()
    at = page({"since": first_day.isoformat()})
    assert next(r for r in at.radio if r.label == "Since").value == "a date"
    assert [m.value for m in at.metric] == ["1", "2", "2"]


@pytest.mark.parametrize("query, shown", [({"account": EVIL}, "account"), ({"since": EVIL}, "since"),
                                          ({"severity": [EVIL, "high"]}, "severity")])
def test_hostile_addresses_are_refused_as_text(page, query, shown):
    at = page(query)
    warning = next(w.value for w in at.warning if "address asks for" in w.value)
    assert "\\<img src" in warning and not re.search(r"(?<!\\)[<>]", warning)  # every < and > escaped: text
    assert EVIL not in param(at, shown)


def test_every_page_labels_the_demos_data_simulated(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path}/demo.db"
    build(db, simulated="demo quarter")
    monkeypatch.setenv("AUDITBOOK_DB", db)
    monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", "admin")
    at = AppTest.from_file(ENTRY, default_timeout=60)
    at.run()
    for page_file in (None, "views/alerts.py", "views/incidents.py", "views/evidence.py", "views/packets.py",
                      "views/settings.py"):
        if page_file:
            at.switch_page(page_file).run()
        assert not at.exception, page_file
        assert any(w.value.startswith("SIMULATED") and "demo quarter" in w.value for w in at.warning), page_file
    at.switch_page("views/wall.py").run()
    assert any('data-testid="wall-simulated"' in m.value for m in at.markdown)


def test_a_real_store_is_not_labelled(page):
    at = page()
    assert not [w for w in at.warning if w.value.startswith("SIMULATED")]


def test_the_evidence_explorer_names_the_accounts(page):
    at = page()
    at.switch_page("views/evidence.py").run()
    assert not at.exception
    account = next(s for s in at.selectbox if s.label == "Account")
    assert account.format_func(B) == f"{B} · staging"
    assert set(at.dataframe[0].value["account"]) == {f"{A} · production", f"{B} · staging"}


@pytest.mark.parametrize("since", ["2999-01-01", "2026-02-30"])
def test_a_date_after_the_latest_run_or_no_date_is_refused(page, since):
    at = page({"since": since})
    assert any("address asks for changes since" in w.value for w in at.warning)
    assert param(at, "since") == [] and next(r for r in at.radio if r.label == "Since").value == "the previous run"


def test_changes_join_the_few_rows_that_changed_not_every_row_of_a_check(store):
    """The other side of a change is read once by its run index (a materialized CTE), never probed
    through the check index row by row: 1.7 s → 0.05 s on a year of daily runs (bench/posture.py)."""
    from auditbook.store import posture_changes
    from auditbook.store.session import reading
    e, r = store["engine"], store["runs"]
    with reading(e) as session:
        for kind in posture_changes.KINDS:
            _subject, _other, q = posture_changes._query(kind, r[1], r[3], Filters())  # noqa: SLF001
            sql = str(q.compile(e, compile_kwargs={"literal_binds": True}))
            plan = " | ".join(row[3] for row in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "MATERIALIZE" in plan and "USING INDEX ix_finding_check" not in plan, (kind, plan)


def test_filtered_tiles_count_only_criteria_with_matching_findings(page):
    at = page({"account": B, "severity": "high"})
    tiles = {re.search(r'data-tile="([^"]+)"', m.value).group(1): m.value for m in at.markdown if "data-tile=" in m.value}
    assert "✕ FAILING" in tiles["security"] and ">0 / 2</span> passing" in tiles["security"]  # CC6.1, CC6.6
    assert "– NO MATCH" in tiles["availability"] and ">0 / 0</span>" in tiles["availability"]
    assert "ATTENTION" not in " ".join(tiles.values())  # nothing matching is not a gap


def test_a_busy_store_leaves_the_tags_for_later_and_says_so(tmp_path, monkeypatch):
    import sqlite3
    db = f"sqlite:///{tmp_path}/busy.db"
    build(db)  # tags not read yet
    monkeypatch.setenv("AUDITBOOK_DB", db)
    monkeypatch.setenv("AUDITBOOK_LOCAL_ROLE", "viewer")
    writer = sqlite3.connect(f"{tmp_path}/busy.db", timeout=0.1)
    writer.execute("BEGIN IMMEDIATE")  # a scan storing its run holds SQLite's one write lock
    try:
        with pytest.raises(posture_filters.TagsBusy):
            posture_filters.index_tags(open_engine(db))
        at = AppTest.from_file(ENTRY, default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("tags of the newest records could not be read now" in w.value for w in at.warning)
        assert next(s for s in at.selectbox if s.label == "Environment / owner tag").options == ["any tag"]
    finally:
        writer.rollback()
        writer.close()
    at.run()  # the lock is gone: read now, and offered
    assert not any("could not be read now" in w.value for w in at.warning)
    assert "env=staging" in next(s for s in at.selectbox if s.label == "Environment / owner tag").options
