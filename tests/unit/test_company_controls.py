"""The company's own controls (issue 14 §8): a library included by controls.yaml, validated against the
catalog (one line naming file, control, field and value); each control's status derived from its
criteria's by the one status rule; the mapping exported as CSV (inert in a spreadsheet) and imported
back, and as an OSCAL component definition that trestle reads back; the command's bad input exits 2."""
import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest
import yaml

from auditbook.catalog.model import DEFAULT_PATH, CatalogError, load_catalog
from auditbook.errors import UserError
from tests.catalog_edits import write_catalog
from tests.conftest import run_main

EXAMPLE = DEFAULT_PATH.parent / "company-controls.yaml"
AC01 = {"id": "AC-01", "statement": "Production access needs MFA.", "owner": "Head of infrastructure",
        "frequency": "daily", "criteria": ["CC6.1", "CC6.2"], "checks": ["iam-console-user-mfa"],
        "manual_items": ["CC6.2: Joiner and leaver access tickets"]}


def copy_parameters_file(folder: Path) -> None:
    """The company's thresholds file the bundled catalog names, beside a copy of the catalog."""
    (folder / "company-parameters.yaml").write_text(DEFAULT_PATH.with_name("company-parameters.yaml").read_text())


def write_library(tmp_path: Path, controls: list, catalog_text: str = None, **extra) -> Path:
    """tmp_path/controls.yaml (the bundled catalog, or catalog_text) including tmp_path/lib.yaml."""
    doc = json.loads(json.dumps({"version": 1, "company_controls": controls, **extra}))  # no shared lists: no aliases
    (tmp_path / "lib.yaml").write_text(yaml.safe_dump(doc))
    copy_parameters_file(tmp_path)
    text = catalog_text if catalog_text is not None else DEFAULT_PATH.read_text()
    path = tmp_path / "controls.yaml"
    included, named = re.subn(r"^include: .*$", "include: lib.yaml", text, count=1, flags=re.MULTILINE)
    if not named:  # a catalog that includes no library yet
        included = re.sub(r"^version: 1$", "version: 1\ninclude: lib.yaml", text, count=1, flags=re.MULTILINE)
    assert "include: lib.yaml" in included
    path.write_text(included)
    return path


def catalog_with(tmp_path, controls=None, **extra):
    return load_catalog(write_library(tmp_path, [dict(AC01)] if controls is None else controls, **extra))


def test_the_example_library_loads_and_the_catalog_hash_covers_it(tmp_path):
    path = write_library(tmp_path, yaml.safe_load(EXAMPLE.read_text())["company_controls"])
    catalog = load_catalog(path)
    assert 8 <= len(catalog.company_controls) <= 12
    assert all(c.statement.startswith("EXAMPLE:") for c in catalog.company_controls)  # clearly an example
    assert catalog.library_path == str(tmp_path / "lib.yaml")
    ac02 = catalog.company_control("AC-02")
    assert (ac02.frequency, ac02.criteria) == ("daily", ["CC6.2"])
    before = catalog.sha256
    (tmp_path / "lib.yaml").write_text((tmp_path / "lib.yaml").read_text().replace("IT operations", "IT ops"))
    assert load_catalog(path).sha256 != before  # the library is part of what a run's catalog hash names
    bundled = load_catalog()  # the bundled catalog includes the example library
    assert bundled.library_path == str(EXAMPLE)
    assert [c.id for c in bundled.company_controls] == [c["id"] for c in yaml.safe_load(EXAMPLE.read_text())["company_controls"]]


def _set(**fields):
    return lambda: [{**AC01, **fields}]


BAD = {
    "unknown criterion": (_set(criteria=["CC6.9"]), "company control AC-01: field criteria: unknown criterion 'CC6.9'"),
    "no criteria": (_set(criteria=[]), "company control AC-01: field criteria: List should have at least 1 item"),
    "unknown check": (_set(checks=["nope-check"]), "company control AC-01: field checks: unknown check 'nope-check'"),
    "check of other criteria": (_set(checks=["backup-plan-exists"]),
                                "company control AC-01: field checks: 'backup-plan-exists' evidences A1.2, none of"),
    "unknown item": (_set(manual_items=["CC6.2: Vibes"]),
                     "company control AC-01: field manual_items: 'CC6.2: Vibes' is not required by CC6.2"),
    "item of another criterion": (_set(manual_items=["CC1.1: Code of conduct"]),
                                  "field manual_items: 'CC1.1: Code of conduct': CC1.1 is not one of this"),
    "item without criterion": (_set(manual_items=["Code of conduct"]),
                               "field manual_items: 'Code of conduct' must be 'CRITERION: item name'"),
    "empty statement": (_set(statement="   "), "company control AC-01: field statement: String should have at least"),
    "bad frequency": (_set(frequency="hourly"), "company control AC-01: field frequency: Input should be"),
    "criterion's id": (_set(id="CC6.1"), "company control CC6.1: field id: 'CC6.1' is a criterion's id"),
    "bad id": (_set(id="A C"), "company control 'A C': field id: String should match pattern"),
    "unknown field": (_set(colour="red"), "company control AC-01: field colour: Extra inputs are not permitted"),
    "duplicate id": (lambda: [dict(AC01), {**AC01, "statement": "again"}], "company control AC-01: field id: duplicate id"),
}


@pytest.mark.parametrize("case", BAD)
def test_each_mistake_is_one_line_naming_file_control_field_and_value(tmp_path, case):
    controls, message = BAD[case]
    with pytest.raises(CatalogError) as exc:
        catalog_with(tmp_path, controls())
    text = str(exc.value)
    assert text.startswith(f"{tmp_path / 'lib.yaml'}: ") and message in text and "\n" not in text, text


@pytest.mark.parametrize("write, message", [
    (lambda d: (d / "controls.yaml").write_text(DEFAULT_PATH.read_text().replace(
        "\ninclude: company-controls.yaml\n", "\ninclude: missing.yaml\n", 1)), "controls.yaml: field include: "),
    (lambda d: write_library(d, [AC01], colour="red"), "lib.yaml: field colour: not a field of a company control library"),
    (lambda d: write_library(d, []), "lib.yaml: field company_controls: must be a list of at least one control"),
    (lambda d: write_library(d, [AC01], version=True), "lib.yaml: field version: must be 1 (value True)"),
    (lambda d: (d / "controls.yaml").write_text(DEFAULT_PATH.read_text() + "company_controls: []\n"),
     "controls.yaml: field company_controls: the company's controls go in their own file"),
])
def test_the_include_itself_is_checked(tmp_path, write, message):
    copy_parameters_file(tmp_path)
    write(tmp_path)
    with pytest.raises(CatalogError) as exc:
        load_catalog(tmp_path / "controls.yaml")
    assert message in str(exc.value) and "\n" not in str(exc.value)


# -- status: the worst of the criteria's, by the one rule -------------------------------------------

@pytest.mark.parametrize("statuses, expected", [
    (["PASS", "PASS"], "PASS"),
    (["PASS", "EXCEPTED"], "EXCEPTED"),
    (["PASS", "NEEDS_EVIDENCE", "EXCEPTED"], "NEEDS_EVIDENCE"),
    (["NEEDS_EVIDENCE", "ERROR"], "ERROR"),
    (["ERROR", "FAIL", "PASS"], "FAIL"),
    (["PASS", "NO_DATA"], "NO_DATA"),  # a criterion with no data never lets the control pass
    (["NO_DATA", "FAIL"], "FAIL"),
    (["NO_DATA"], "NO_DATA"),
])
def test_the_worst_criterion_status_is_the_controls(statuses, expected):
    from auditbook.history.company_controls import worst_status
    assert worst_status(statuses) == expected


def test_an_unknown_status_is_an_error_not_a_pass():
    from auditbook.history.company_controls import worst_status
    with pytest.raises(ValueError):
        worst_status(["PASS", "GREEN"])


@pytest.fixture
def store(tmp_path):
    """The small catalog (CC1.1, CC6.6, A1.2) with two company controls, one run on 6 July, CC1.1's
    documents approved: CC1.1 PASS, CC6.6 and A1.2 NEEDS_EVIDENCE."""
    from auditbook.auth import Actor
    from auditbook.collect.records import Collection
    from auditbook.evaluate.risk_register import load_register
    from auditbook.history.evidence_events import annotate_evidence
    from auditbook.scan import add_evidence, decide_evidence, record_run
    from auditbook.store.db import open_engine
    from tests.packet_store import small_catalog
    small = Path(small_catalog(tmp_path / "small.yaml")).read_text()
    gov = {"id": "GOV-01", "statement": "A code of conduct binds staff.", "owner": "People", "frequency": "annual",
           "criteria": ["CC1.1"], "manual_items": ["CC1.1: Code of conduct"]}
    net = {"id": "NET-01", "statement": "No admin ports [red]open[/red] to the \x1b[31minternet.", "owner": "Infra",
           "frequency": "many-times-a-day", "criteria": ["CC1.1", "CC6.6"], "checks": ["ec2-sg-no-public-ingress"]}
    catalog = load_catalog(write_library(tmp_path, [gov, net], catalog_text=small))
    engine = open_engine(f"sqlite:///{tmp_path}/company.db")
    day = dt.datetime(2026, 7, 6, 6, 0, tzinfo=dt.timezone.utc)
    params = {"catalog": catalog.path, "regions": ["us-east-1"], "resource_types": [], "simulated": None}
    record_run(engine, catalog, load_register(tmp_path / "none.yaml"), Collection(), [], params, day,
               day + dt.timedelta(minutes=1))
    for item in catalog.control("CC1.1").manual_evidence:
        doc = tmp_path / f"{item.name}.txt"
        doc.write_text(item.name)
        row = add_evidence(engine, catalog, "CC1.1", doc, effective=dt.date(2026, 6, 20), owner="people ops",
                           item=item.name, actor=Actor("alice@corp.example", "analyst"), today=dt.date(2026, 9, 1))
        if row.timeline_flags:  # uploaded today, after its period: it counts only with an approved explanation
            row = annotate_evidence(engine, catalog, Actor("alice@corp.example", "analyst"), row.id, row.version,
                                    explanation="the signed copy was scanned late")
        decide_evidence(engine, Actor("bob@corp.example", "approver"), row.id, row.version, "approve", "ok")
    return engine, catalog


def test_the_status_command_shows_each_control_and_keeps_hostile_text_inert(store, capsys, monkeypatch):
    engine, catalog = store
    args = ("controls", "status", "--period", "2026-07-01..2026-07-06", "--db", str(engine.url), "--catalog",
            catalog.path)
    code, out, err = run(capsys, monkeypatch, *args)
    assert code == 0, err
    assert "GOV-01 PASS · People · annual · CC1.1 PASS" in out
    assert "NET-01 NEEDS_EVIDENCE · Infra · many-times-a-day · CC1.1 PASS, CC6.6 NEEDS_EVIDENCE" in out
    assert "No admin ports [red]open[/red] to the  [31minternet." in out and "\x1b" not in out
    code, out, err = run(capsys, monkeypatch, *args, "--format", "json")
    assert [(r["id"], r["status"]) for r in json.loads(out)] == [("GOV-01", "PASS"), ("NET-01", "NEEDS_EVIDENCE")]


def test_a_company_controls_status_comes_from_its_criteria_as_the_packet_computes_them(store):
    from auditbook.history.company_controls import company_overview
    from auditbook.history.period import parse_period, period_runs
    from auditbook.history.type2 import overview
    engine, catalog = store
    runs = period_runs(engine, parse_period(start="2026-07-01", end="2026-07-06"))
    today = dt.date(2026, 9, 1)
    criteria = {r["criterion"]: r["status"] for r in overview(engine, catalog, runs, today=today)}
    assert criteria == {"CC1.1": "PASS", "CC6.6": "NEEDS_EVIDENCE", "A1.2": "NEEDS_EVIDENCE"}
    rows = {r["id"]: r for r in company_overview(engine, catalog, runs, today=today)}
    assert rows["GOV-01"]["status"] == "PASS" and rows["GOV-01"]["criterion_status"] == {"CC1.1": "PASS"}
    assert rows["NET-01"]["status"] == "NEEDS_EVIDENCE"
    assert rows["NET-01"]["criterion_status"] == {"CC1.1": "PASS", "CC6.6": "NEEDS_EVIDENCE"}
    assert rows["NET-01"]["checks"] == ["ec2-sg-no-public-ingress"] and rows["NET-01"]["frequency"] == "many-times-a-day"


def test_a_criterion_missing_from_the_packets_rows_is_an_error(tmp_path):
    from auditbook.history.company_controls import company_rows
    with pytest.raises(ValueError, match="AC-01: no status for CC6.2"):
        company_rows(catalog_with(tmp_path), [{"criterion": "CC6.1", "status": "PASS"}])


# -- CSV and OSCAL ----------------------------------------------------------------------------------

HOSTILE = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2", "@SUM(A1)", "'quoted", "=cmd|' /C calc'!A0"]


def test_csv_export_then_import_gives_the_same_controls_and_formula_cells_are_inert(tmp_path):
    from auditbook.report.exports.company import (
        library_yaml,
        mapping_csv,
        read_mapping_csv,
    )
    controls = [{**AC01, "id": f"AC-{n:02}", "statement": text} for n, text in enumerate(HOSTILE, 1)]
    catalog = catalog_with(tmp_path, controls)
    text = mapping_csv(catalog)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["id", "statement", "owner", "frequency", "criteria", "checks", "manual_items"]
    for row, hostile in zip(rows[1:], HOSTILE):
        assert row[1] == "'" + hostile  # a spreadsheet shows it as text, never runs it
    assert rows[1][4] == "CC6.1; CC6.2"
    path = tmp_path / "mapping.csv"
    path.write_text(text, encoding="utf-8")
    back = read_mapping_csv(path, catalog)
    assert back == catalog.company_controls
    (tmp_path / "lib.yaml").write_text(library_yaml(back))  # the import's output is a valid library
    assert load_catalog(tmp_path / "controls.yaml").company_controls == catalog.company_controls


@pytest.mark.parametrize("text, message", [
    ("id,statement,colour\nAC-01,x,red\n", "column colour: not a column"),
    ("id,statement\nAC-01\n", "company control #1: 1 cells for 2 columns"),
    ("", "empty"),
    ("statement\nx\n", "the first row must name each column once, id among them"),
    ("id,statement,owner,frequency,criteria\nAC-01,s,Infra,daily,CC6.9\n",
     "company control AC-01: field criteria: unknown criterion 'CC6.9'"),
    ("id,statement,owner,frequency,criteria\nAC-01,,Infra,daily,CC6.1\n",
     "company control AC-01: field statement: Field required"),
    ('id,statement\nAC-01,"open\n', "not valid CSV"),
])
def test_a_bad_csv_is_one_line_naming_the_file(tmp_path, text, message):
    from auditbook.report.exports.company import read_mapping_csv
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(UserError) as exc:
        read_mapping_csv(path, load_catalog())
    assert str(exc.value).startswith(f"{path}: ") and message in str(exc.value) and "\n" not in str(exc.value)


def test_the_oscal_component_definition_validates_with_trestle(tmp_path):
    from trestle.oscal import component as cd

    from auditbook.report.exports.company import component_definition
    catalog = catalog_with(tmp_path, [dict(AC01), {**AC01, "id": "AC-02", "criteria": ["CC6.2"], "checks": []}])
    now = dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc)
    doc = component_definition(catalog, now=now)
    model = cd.Model.model_validate(doc).component_definition
    (component,) = model.components
    assert component.title == "AWS estate under auditbook"
    implementations = component.control_implementations
    assert [i.props[0].value for i in implementations] == ["AC-01", "AC-02"]
    assert [r.control_id for r in implementations[0].implemented_requirements] == ["CC6.1", "CC6.2"]
    cc62 = {p.name: p.value for p in implementations[0].implemented_requirements[1].props}
    assert cc62["manual-evidence"] == "Joiner and leaver access tickets" and cc62["frequency"] == "daily"
    assert component_definition(catalog, now=now) == doc  # deterministic uuids


def test_a_document_oscal_refuses_is_one_line_not_a_traceback(tmp_path):
    from auditbook.catalog.model import CompanyControl
    from auditbook.report.exports.company import component_definition
    catalog = catalog_with(tmp_path)
    unchecked = CompanyControl.model_construct(**{**AC01, "owner": "\n"})  # as if validation were bypassed
    with pytest.raises(UserError, match=r"lib.yaml: OSCAL component definition: field value: String should match pattern"):
        component_definition(catalog.model_copy(update={"company_controls": [unchecked]}))


# -- the command ------------------------------------------------------------------------------------

def run(capsys, monkeypatch, *args) -> tuple[int, str, str]:
    return run_main(capsys, monkeypatch, *args, width=None)


def test_the_command_exports_and_imports_and_never_overwrites_without_force(tmp_path, capsys, monkeypatch):
    cat = str(write_library(tmp_path, [dict(AC01)]))
    code, out, err = run(capsys, monkeypatch, "controls", "export", "--format", "csv", "--catalog", cat)
    assert code == 0 and out.startswith("id,statement,") and "AC-01" in out, err
    mapping = tmp_path / "m.csv"
    code, out, err = run(capsys, monkeypatch, "controls", "export", "--format", "csv", "--out", str(mapping),
                         "--catalog", cat)
    assert code == 0 and mapping.read_text().count("\n") == 2
    target = tmp_path / "new.yaml"
    target.write_text("keep me")
    code, out, err = run(capsys, monkeypatch, "controls", "import", str(mapping), "--out", str(target), "--catalog", cat)
    assert code == 2 and err.startswith(f"error: {target}: exists (give --force") and target.read_text() == "keep me"
    code, out, err = run(capsys, monkeypatch, "controls", "import", str(mapping), "--out", str(target), "--force",
                         "--catalog", cat)
    assert code == 0 and "1 company controls validated" in out
    assert yaml.safe_load(target.read_text())["company_controls"][0]["id"] == "AC-01"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    code, out, err = run(capsys, monkeypatch, "controls", "export", "--format", "oscal", "--catalog", cat)
    assert code == 0 and '"component-definition"' in out


@pytest.mark.parametrize("args, message", [
    (("export", "--format", "csv", "--catalog", "controls.yaml"), "no company controls"),
    (("export", "--format", "xlsx"), "Invalid value for '--format'"),
    (("import", "MISSING.csv", "--out", "OUT.yaml"), "MISSING.csv: cannot read"),
    (("import", "BAD.csv", "--out", "OUT.yaml"), "field criteria: unknown criterion 'CC6.9'"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch, args, message):
    (tmp_path / "BAD.csv").write_text("id,statement,owner,frequency,criteria\nAC-01,s,Infra,daily,CC6.9\n")
    write_catalog(tmp_path, lambda raw: raw.pop("include"))  # controls.yaml: a catalog without a library
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, monkeypatch, "controls", *args)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "OUT.yaml").exists()


def test_a_company_control_counts_only_its_own_checks_failures_each_once(tmp_path):
    """An auditor found AC-01 (MFA) credited with all of CC6.1's failures (KMS, encryption…) and a check
    shared by two criteria counted twice: a control counts its own checks' stretches, once."""
    from auditbook.history.company_controls import company_rows
    catalog = catalog_with(tmp_path)
    mine = next(c for c in catalog.company_controls if c.checks and c.manual_items)
    own, other = mine.checks[0], "some-other-check"
    rows = [{"criterion": c.id, "status": "FAIL",
             "failures_by_check": {own: [3, 1], other: [40, 30]},  # the same check listed under every criterion
             "manual_item_states": {}} for c in catalog.controls]
    row = next(r for r in company_rows(catalog, rows) if r["id"] == mine.id)
    assert (row["failures"], row["open_failures"]) == (3, 1)
    assert row["manual_missing_or_expired"] == len(mine.manual_items)  # none of its items is current
    assert row["manual_items"] == list(mine.manual_items)


@pytest.mark.parametrize("ids, message", [
    (["AC-01", "ac-01"], "duplicate id"),
    (["CON"], "cannot name a file on every system"),
    (["nul.txt"], "cannot name a file on every system"),
    (["A."], "cannot name a file on every system"),
])
def test_company_ids_that_collide_or_cannot_name_a_file_are_refused(tmp_path, ids, message):
    """Each id names company/<ID>.html in the packet: on an auditor's macOS or Windows, AC-01 and ac-01
    are one file and CON none at all — verification would fail there."""
    controls = [{**AC01, "id": ident} for ident in ids]
    with pytest.raises(CatalogError, match=message):
        catalog_with(tmp_path, controls)
