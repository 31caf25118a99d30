"""Manual evidence: stored with SHA-256, owner and effective date; the effective date (not the upload
date) places it in a period; missing or expired evidence makes a criterion NEEDS_EVIDENCE."""
import datetime as dt
import hashlib

import pytest
from typer.testing import CliRunner

from auditbook.catalog.model import load_catalog
from auditbook.cli.main import registered_app

app = registered_app()
from auditbook.auth import Actor
from auditbook.errors import UserError
from auditbook.evaluate.evaluator import Finding, summarise
from auditbook.evaluate.manual_evidence import add_months, expiry
from auditbook.history.evidence_events import annotate_evidence
from auditbook.scan import add_evidence, decide_evidence, document_bytes
from auditbook.store.db import open_engine
from tests.evidence_items import ITEM, item_state


@pytest.fixture
def engine(tmp_path):
    return open_engine(f"sqlite:///{tmp_path}/m.db")


def test_expiry_follows_cadence():
    assert expiry(dt.date(2026, 1, 31), "monthly") == dt.date(2026, 2, 28)
    assert expiry(dt.date(2026, 11, 30), "quarterly") == dt.date(2027, 2, 28)
    assert expiry(dt.date(2024, 2, 29), "annual") == dt.date(2025, 2, 28)
    assert expiry(dt.date(2026, 5, 1), "per-event") is None
    assert add_months(dt.date(2026, 12, 15), 1) == dt.date(2027, 1, 15)


def test_effective_date_decides_the_period(engine, tmp_path):
    doc = tmp_path / "minutes-q3.pdf"
    doc.write_bytes(b"%PDF minutes of the July board meeting")
    row = add_evidence(engine, load_catalog(), "CC1.2", doc, effective=dt.date(2026, 7, 15), owner="company secretary",
                       item=ITEM, uploaded_by="alice", today=dt.date(2026, 11, 28))
    assert row.sha256 == hashlib.sha256(doc.read_bytes()).hexdigest() and row.expires_on == dt.date(2026, 10, 15)
    assert document_bytes(engine, row.sha256) == doc.read_bytes()
    assert item_state(engine, dt.date(2026, 9, 30)).state == "missing"    # pending: not approved yet
    row = annotate_evidence(engine, load_catalog(), Actor("alice", "analyst"), row.id, row.version,
                            explanation="the minutes were signed in November")  # uploaded late: explained
    decide_evidence(engine, Actor("bob", "approver"), row.id, row.version, "approve", "minutes checked")
    assert item_state(engine, dt.date(2026, 7, 1)).state == "missing"     # before it was effective
    assert item_state(engine, dt.date(2026, 9, 30)).state == "current"    # Q3, although uploaded in Q4
    assert item_state(engine, dt.date(2026, 11, 28)).state == "expired"   # lapsed by cadence
    assert item_state(engine, dt.date(2026, 9, 30)).evidence.uploaded_by == "alice"


@pytest.mark.parametrize("kwargs,message", [
    ({"criterion": "CC9.9"}, "not a criterion"),
    ({"item": None}, "requires several items"),
    ({"item": "Holiday photos"}, "is not required by CC1.2"),
    ({"owner": " "}, "--owner"),
    ({"effective": dt.date(2030, 1, 1)}, "in the future"),
    ({"owner": "o" * 201}, "^--owner: 201 characters, more than the 200 allowed: 'ooo"),
    ({"uploaded_by": "u" * 201}, r"^--uploaded-by \(default: the login name\): 201 characters, more than the 200"),
])
def test_bad_evidence_is_refused_and_nothing_written(engine, tmp_path, kwargs, message):
    doc = tmp_path / "x.txt"
    doc.write_text("evidence")
    args = {"criterion": "CC1.2", "item": ITEM, "owner": "secretary", "effective": dt.date(2026, 10, 1), **kwargs}
    criterion = args.pop("criterion")
    with pytest.raises(UserError, match=message):
        add_evidence(engine, load_catalog(), criterion, doc, **args)
    assert item_state(engine, dt.date(2026, 11, 1)).state == "missing"


def test_missing_manual_evidence_is_never_pass():
    catalog = load_catalog()
    passing = [Finding("kms-cmk-rotation", ["CC6.1"], "PASS", "high", "1", "r", "r", "t", "id", "arn", "ok")]
    rows = {r["control"]: r for r in summarise(catalog, passing, needs_evidence={"CC6.1"})}
    assert rows["CC6.1"]["status"] == "NEEDS_EVIDENCE"
    rows = {r["control"]: r for r in summarise(catalog, passing, needs_evidence=set())}
    assert rows["CC6.1"]["status"] == "PASS"
    failing = [Finding("kms-cmk-rotation", ["CC6.1"], "FAIL", "high", "1", "r", "r", "t", "id", "arn", "no")]
    rows = {r["control"]: r for r in summarise(catalog, failing, needs_evidence={"CC6.1"})}
    assert rows["CC6.1"]["status"] == "FAIL"


def test_cli_add_and_list_due(tmp_path):
    db = f"sqlite:///{tmp_path}/c.db"
    doc = tmp_path / "charter.txt"
    doc.write_text("board charter v3")
    runner = CliRunner()
    added = runner.invoke(app, ["evidence", "add", "CC1.2", str(doc), "--item", "Board charter", "--owner", "chair",
                                "--effective-date", "2026-06-01", "--db", db])
    assert added.exit_code == 0, added.output
    explained = runner.invoke(app, ["evidence", "explain", "1", "--explanation", "charter found in the archive",
                                    "--db", db])
    assert explained.exit_code == 0, explained.output
    decide_evidence(open_engine(db), Actor("second person", "approver"), 1, 2, "approve", "charter checked")
    listed = runner.invoke(app, ["evidence", "list", "--due", "--on", "2026-11-28", "--format", "json", "--db", db])
    import json
    due = {(r["criterion"], r["item"]) for r in json.loads(listed.output)}
    assert ("CC1.2", "Board charter") not in due and ("CC1.2", ITEM) in due
    bad = runner.invoke(app, ["evidence", "add", "CC1.2", str(doc), "--item", "Board charter", "--owner", "chair",
                              "--effective-date", "June", "--db", db])
    assert bad.exit_code != 0


@pytest.mark.parametrize("kind", ["fifo", "folder", "too big"])
def test_evidence_file_must_be_a_regular_file_of_bounded_size(engine, tmp_path, kind):
    import os

    from auditbook.evaluate.manual_evidence import MAX_BYTES
    path = tmp_path / "doc"
    if kind == "fifo":
        os.mkfifo(path)  # reading it would block for ever
    elif kind == "folder":
        path.mkdir()
    else:
        with open(path, "wb") as fh:
            fh.truncate(MAX_BYTES + 1)  # sparse: refused by its size, never read
    with pytest.raises(UserError, match=f"FILE: {path}: .*(not a regular file|more than)"):
        add_evidence(engine, load_catalog(), "CC1.2", path, effective=dt.date(2026, 10, 1), owner="secretary",
                     item=ITEM)
    assert item_state(engine, dt.date(2026, 11, 1)).state == "missing"




def test_a_catalog_item_name_beyond_its_column_is_refused(tmp_path):
    import yaml

    from auditbook.catalog.model import DEFAULT_PATH
    raw = yaml.safe_load(DEFAULT_PATH.read_text())
    raw.pop("parameters_file", None)  # the thresholds' defaults: the company file is not copied
    next(c for c in raw["controls"] if c["id"] == "CC1.2")["manual_evidence"][0]["name"] = "n" * 201
    path = tmp_path / "controls.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(UserError, match="control CC1.2: field manual_evidence.0.name: .*at most 200 characters"):
        load_catalog(path)


def test_item_states_are_a_pure_rule_over_records():
    """evaluate/ holds the rule over plain records (no store): the latest current record wins, a
    lapsed one is expired, one effective after the day does not count, per-event never lapses."""
    from auditbook.evaluate.manual_evidence import (
        EvidenceRecord,
        criteria_needing,
        item_states,
    )

    def record(n, effective, expires, item=ITEM):
        return EvidenceRecord(n, "CC1.2", item, f"doc{n}.pdf", f"{n:064x}", "owner", "tests",
                              dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), effective, expires, "approved",
                              explanation="filed late: the minutes were signed in November")
    catalog = load_catalog()
    records = [record(1, dt.date(2026, 4, 1), dt.date(2026, 7, 1)), record(2, dt.date(2026, 6, 1), dt.date(2026, 9, 1)),
               record(3, dt.date(2026, 8, 1), dt.date(2026, 11, 1))]

    def state(on):
        return next(s for s in item_states(catalog, records, on) if s.criterion == "CC1.2" and s.item == ITEM)
    assert (state(dt.date(2026, 3, 31)).state, state(dt.date(2026, 3, 31)).evidence) == ("missing", None)
    assert (state(dt.date(2026, 6, 15)).state, state(dt.date(2026, 6, 15)).evidence.id) == ("current", 2)
    assert state(dt.date(2026, 6, 15)).due == dt.date(2026, 9, 1)
    assert (state(dt.date(2026, 7, 31)).state, state(dt.date(2026, 7, 31)).evidence.id) == ("current", 2)
    assert (state(dt.date(2026, 12, 1)).state, state(dt.date(2026, 12, 1)).evidence.id) == ("expired", 3)
    assert "CC1.2" in criteria_needing(item_states(catalog, records, dt.date(2026, 6, 15)))  # its other items
    assert "CC1.2" in criteria_needing(item_states(catalog, [], dt.date(2026, 6, 15)))
