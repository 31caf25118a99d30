"""The boundary declared (issue 14 §7, docs/scope.md): the regions each account was not read in, and why;
the complementary user-entity controls of subservice-organisations.yaml listed with the checks and manual
items that evidence them and their status; a bad subservice file is one line naming the file, the field
and the value (exit 2), and hostile text in it stays inert."""
import datetime as dt
import json

import pytest
import yaml

from auditbook.auth import Actor
from auditbook.catalog.model import CatalogError, load_catalog
from auditbook.catalog.subservice import FILE_NAME, load_subservice
from auditbook.history.period import parse_period
from auditbook.history.scope import exclude, scope_document
from tests.conftest import run_main

A = "111111111111"
ADMIN = Actor("Ada Admin", "admin")
Q3 = parse_period(start="2026-07-01", end="2026-07-31")
EVIL = '<script>alert(1)</script> [red]markup[/red] & {{x}}'


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    return open_engine(f"sqlite:///{tmp_path}/d.db")


def save(engine, regions_read: list[str], requested: list[str]) -> int:
    from auditbook.collect.records import Collection, Scope
    from auditbook.store.runs import save_run
    from auditbook.store.session import writing
    at = dt.datetime(2026, 7, 2, 6, tzinfo=dt.timezone.utc)
    with writing(engine) as session:
        return save_run(session, catalog_sha256="x", tool_version="test",
                        parameters={"regions": regions_read, "regions_requested": requested},
                        identities=[{"account": A, "name": "production"}],
                        collection=Collection(scopes=[Scope(A, r, "aws.ec2.security_group") for r in regions_read]),
                        findings=[], started_at=at, finished_at=at + dt.timedelta(seconds=5))


def test_each_account_declares_the_regions_not_read_and_why(engine):
    from freezegun import freeze_time
    with freeze_time("2026-07-01 09:00:00"):
        exclude(engine, ADMIN, "region", "eu-west-3", "no workload there")
    save(engine, ["us-east-1"], ["us-east-1", "eu-west-1"])
    doc = scope_document(engine, load_catalog(), Q3)
    account = doc["accounts"][0]
    assert account["regions"] == ["us-east-1"]
    why = {r["region"]: r["reason"] for r in account["regions_not_read"]}
    assert "us-east-1" not in why
    assert why["eu-west-3"] == "out of scope: no workload there (entry 1)"
    assert why["eu-west-1"].startswith("in the scan's --regions, not read")
    assert why["ap-south-1"] == "not in the scan's --regions"
    json.dumps(doc)


def test_the_bundled_file_lists_the_user_entity_controls_with_their_evidence_and_status(engine):
    catalog = load_catalog()
    orgs = load_subservice(catalog)
    assert [(o.name, o.method) for o in orgs] == [("Amazon Web Services (AWS)", "carve-out")]
    cuecs = orgs[0].complementary_controls
    assert 8 <= len(cuecs) <= 12 and all(c.checks or c.manual_items for c in cuecs)
    doc = scope_document(engine, catalog, Q3)
    rows = doc["complementary_user_entity_controls"]
    assert [r["id"] for r in rows] == [c.id for c in cuecs]
    mfa = next(r for r in rows if "multi-factor" in r["statement"])
    assert {c["check"] for c in mfa["checks"]} >= {"iam-console-user-mfa", "iam-root-mfa"}
    # no run in the period read anything: no check can pass, and items nobody submitted are missing
    assert {c["status"] for r in rows for c in r["checks"]} == {"NO_DATA"}
    assert {i["state"] for r in rows for i in r["manual_items"]} == {"missing"}
    assert {r["status"] for r in rows} <= {"NO_DATA", "NEEDS_EVIDENCE"}
    org = doc["subservice_organisations"][0]
    assert org["manual_item"] == "Subservice organisation report (AWS SOC 2) and user-entity controls"
    assert org["complementary_user_entity_controls"].startswith("CUEC-01, CUEC-02")


def _small(tmp_path, cuecs: list, **org) -> str:
    from tests.packet_store import small_catalog
    path = small_catalog(tmp_path / "controls.yaml")
    entry = {"name": "AWS", "services": ["EC2"], "method": "carve-out",
             "report_item": "CC6.6: Network diagram and boundary description", "relied_on_for": "data centres",
             "complementary_controls": cuecs, **org}
    (tmp_path / FILE_NAME).write_text(yaml.safe_dump({"version": 1, "subservice_organisations": [entry]}))
    return path


GOOD = {"id": "CUEC-01", "statement": "We configure our own security groups.", "criteria": ["CC6.6"],
        "checks": ["ec2-sg-no-public-ingress"]}


@pytest.mark.parametrize("cuecs,org,message", [
    ([{**GOOD, "checks": ["no-such-check"]}], {}, "CUEC-01: field checks: 'no-such-check' is not in the catalog"),
    ([{**GOOD, "criteria": ["CC9.9"]}], {}, "CUEC-01: field criteria: 'CC9.9' is not in the catalog"),
    ([{**GOOD, "manual_items": ["CC6.6: nothing"]}], {}, "field manual_items: 'CC6.6: nothing' is not in the catalog"),
    ([GOOD], {"method": "sideways"}, "field subservice_organisations.0.method: Input should be 'carve-out' or 'inclusive' (value 'sideways')"),
    ([{**GOOD, "statement": "short"}], {}, "complementary_controls.0.statement: String should have at least 10 characters"),
    ([GOOD, json.loads(json.dumps(GOOD))], {}, "complementary control CUEC-01 is declared twice"),
    ([{**GOOD, "checks": []}], {}, "CUEC-01: give the checks or manual_items that evidence it"),
    ([GOOD], {"report_item": "CC6.6: no such item"}, "report_item: 'CC6.6: no such item' is not a manual item"),
])
def test_a_bad_subservice_file_is_one_line_naming_file_field_and_value(tmp_path, engine, capsys, monkeypatch,
                                                                        cuecs, org, message):
    catalog_path = _small(tmp_path, cuecs, **org)
    with pytest.raises(CatalogError, match=None) as caught:
        load_subservice(load_catalog(catalog_path))
    assert message in str(caught.value) and FILE_NAME in str(caught.value) and "\n" not in str(caught.value)
    code, out, err = run_main(capsys, monkeypatch, "scope", "show", "--period", "2026Q3", "--catalog", catalog_path,
                              "--db", str(engine.url))
    assert code == 2 and message in err and "Traceback" not in err and out == ""


def test_a_file_that_is_not_yaml_is_one_line(tmp_path):
    catalog_path = _small(tmp_path, [GOOD])
    (tmp_path / FILE_NAME).write_text("version: [1\n")
    with pytest.raises(CatalogError) as caught:
        load_subservice(load_catalog(catalog_path))
    assert FILE_NAME in str(caught.value) and "\n" not in str(caught.value)


def test_a_dangling_link_is_a_broken_file_not_none_declared(tmp_path):
    """An attack pass: a symlink to nothing read as "no file", and the packet said "none declared"."""
    catalog_path = _small(tmp_path, [GOOD])
    (tmp_path / FILE_NAME).unlink()
    (tmp_path / FILE_NAME).symlink_to(tmp_path / "gone.yaml")
    with pytest.raises(CatalogError) as caught:
        load_subservice(load_catalog(catalog_path))
    assert FILE_NAME in str(caught.value) and "\n" not in str(caught.value)


def test_hostile_text_in_the_file_stays_inert(tmp_path, engine, capsys, monkeypatch):
    catalog_path = _small(tmp_path, [{**GOOD, "statement": EVIL}])
    code, out, err = run_main(capsys, monkeypatch, "scope", "show", "--period", "2026Q3", "--catalog", catalog_path,
                              "--db", str(engine.url))
    assert code == 0, err
    assert EVIL in out  # printed as typed: the [red] markup is not interpreted
    doc = scope_document(engine, load_catalog(catalog_path), Q3)
    assert doc["complementary_user_entity_controls"][0]["statement"] == EVIL


def test_the_index_tables_are_flat_and_render_escaped(tmp_path, engine):
    """The packet index's scope cell renders index_tables with page_helpers.table (every value escaped)."""
    import pandas as pd
    from freezegun import freeze_time

    from auditbook.history.scope import index_tables
    from auditbook.report.page_helpers import table
    with freeze_time("2026-07-01 09:00:00"):
        exclude(engine, ADMIN, "region", "eu-west-3", EVIL)
    save(engine, ["us-east-1"], ["us-east-1", "eu-west-1"])
    catalog_path = _small(tmp_path, [{**GOOD, "statement": EVIL}])
    tables = index_tables(scope_document(engine, load_catalog(catalog_path), Q3))
    (regions,) = tables["regions"]
    assert regions["regions_read"] == "us-east-1" and regions["asked_for_not_read"] == "eu-west-1"
    assert regions["out_of_scope"] == f"eu-west-3: out of scope: {EVIL} (entry 1)"
    assert regions["not_in_scan_regions"] > 20
    assert tables["left_out"] == []  # the run was stored without a scan: nothing recorded as left out
    (cuec,) = tables["cuecs"]
    # the run read the security groups and found none: nothing failed (PASS), by the one status rule
    assert (cuec["id"], cuec["checks"], cuec["status"]) == ("CUEC-01", "ec2-sg-no-public-ingress PASS", "PASS")
    for rows in tables.values():
        html_text = table(pd.DataFrame(rows)).data
        assert "<script>" not in html_text
    assert "&lt;script&gt;" in table(pd.DataFrame(tables["cuecs"])).data
