"""The system boundary (issue 14 §7, docs/scope.md): accounts in scope with their names, regions and
services read; the scanned accounts reconciled against the organisation's account list (an account it
listed and no run read is a deviation); out-of-scope entries with who, why and when, in the audit trail,
admins only, hostile text kept as typed; `auditbook scope` and its bad input."""
import datetime as dt
import json

import pytest
from freezegun import freeze_time

from auditbook.auth import Actor, PermissionDenied
from auditbook.catalog.model import load_catalog
from auditbook.errors import UserError
from auditbook.history.period import parse_period
from auditbook.history.scope import (
    StaleScope,
    current_scope,
    exclude,
    include,
    scope_document,
    scope_trail,
)
from auditbook.store.session import writing
from tests.conftest import run_main

A, B, C, D = "111111111111", "222222222222", "333333333333", "444444444444"
NAMES = {A: "production", B: "staging", C: "sandbox", D: "legacy"}
REGION, SG = "us-east-1", "aws.ec2.security_group"
Q4 = parse_period("2026Q4")
DAY1 = dt.datetime(2026, 10, 1, 6, 0, tzinfo=dt.timezone.utc)
ADMIN = Actor("Ada Admin", "admin")
EVIL = '<script>alert(1)</script> "quoted" & \'single\' {{x}} $(rm -rf /)\nsecond line'


def identity(account: str, reached: bool = True) -> dict:
    return {"account": account, "name": NAMES[account], "role": None, "identity": {"Account": account} if reached else {},
            "error": None if reached else "cannot assume role: AccessDenied"}


def save(engine, day: int, read: dict, listed: list, org: bool = True) -> int:
    """A run on DAY1 + day: `read` {account: whether its scope was read}; `listed`: its identities."""
    from auditbook.collect.records import Collection, Gap, Scope
    from auditbook.store.runs import save_run
    scopes = [Scope(acct, REGION, SG, None if ok else Gap(acct, REGION, SG, "DescribeSecurityGroups", "Throttling", "x"))
              for acct, ok in read.items()]
    at = DAY1 + dt.timedelta(days=day)
    with writing(engine) as session:
        return save_run(session, catalog_sha256="x", tool_version="test",
                        parameters={"org_role": "AuditRole" if org else None, "regions": [REGION]},
                        identities=[identity(a, a in read) for a in listed], collection=Collection(scopes=scopes),
                        findings=[], started_at=at, finished_at=at + dt.timedelta(seconds=5))


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    return open_engine(f"sqlite:///{tmp_path}/s.db")


@pytest.fixture
def org_store(engine):
    """Three daily --org runs: the organisation listed A, B and C; the runs read A and B only."""
    for day in range(3):
        save(engine, day, {A: True, B: True}, [A, B, C])
    return engine


def test_an_account_the_organisation_listed_and_no_run_read_is_a_deviation(org_store):
    doc = scope_document(org_store, load_catalog(), Q4)
    assert [(a["account"], a["name"], a["scanned_days"], a["regions"]) for a in doc["accounts"]] == [
        (A, "production", 3, [REGION]), (B, "staging", 3, [REGION])]
    assert doc["regions"] == [REGION] and doc["runs"] == 3
    rec = doc["reconciliation"]
    assert rec["organisation_listed"] and rec["listing_runs"] == 3
    assert [(a["account"], a["status"], a["listed_days"], a["scanned_days"]) for a in rec["accounts"]] == [
        (A, "scanned", 3, 3), (B, "scanned", 3, 3), (C, "not scanned", 3, 0)]
    assert [(d["account"], d["name"], d["kind"]) for d in doc["deviations"]] == [(C, "sandbox", "account not scanned")]
    assert doc["deviations"][0]["first_missing"] == "2026-10-01" and doc["deviations"][0]["last_missing"] == "2026-10-03"
    json.dumps(doc)  # plain JSON values: data/scope.json


def test_an_account_missed_on_some_days_is_a_deviation_and_an_excluded_one_is_not(engine):
    save(engine, 0, {A: True, B: True}, [A, B, D])
    save(engine, 1, {A: True, B: False}, [A, B, D])  # B's scope could not be read
    exclude(engine, ADMIN, "account", D, "closed account, being wound down")
    doc = scope_document(engine, load_catalog(), Q4)
    status = {a["account"]: (a["status"], a["missing_days"]) for a in doc["reconciliation"]["accounts"]}
    assert status == {A: ("scanned", 0), B: ("partly scanned", 1), D: ("out of scope: closed account, being wound down", 2)}
    assert [(d["account"], d["deviation"]) for d in doc["deviations"]] == [
        (B, "not scanned on 1 of the 2 days the organisation listed it")]


def test_without_an_organisation_listing_there_is_no_reconciliation_and_no_invented_deviation(engine):
    save(engine, 0, {A: True}, [A], org=False)
    doc = scope_document(engine, load_catalog(), Q4)
    assert not doc["reconciliation"]["organisation_listed"] and doc["reconciliation"]["accounts"] == []
    assert "not reconciled" in doc["reconciliation"]["note"] and doc["deviations"] == []
    assert scope_document(engine, load_catalog(), parse_period("2027Q1"))["accounts"] == []


def test_services_are_the_catalogs_resource_types_with_whether_the_period_read_them(org_store):
    services = {s["resource_type"]: s for s in scope_document(org_store, load_catalog(), Q4)["services"]}
    assert services[SG]["service"] == "ec2" and services[SG]["collected"] is True
    assert services["aws.s3.bucket"]["collected"] is False  # the catalog reads it; no run of the period did


def test_subservice_organisation_is_the_catalogs_manual_item():
    from auditbook.history.scope import SUBSERVICE_ITEM
    criterion, item = SUBSERVICE_ITEM
    assert item in [m.name for m in load_catalog().control(criterion).manual_evidence]


def test_exclusions_keep_who_why_when_are_in_the_trail_and_lift_with_a_reason(org_store):
    arn = "arn:aws:s3:::marketing-site"
    with freeze_time("2026-10-02 09:00:00"):
        entry = exclude(org_store, ADMIN, "region", "eu-west-3", "no workloads: SCP denies the region")
        tag = exclude(org_store, ADMIN, "tag", "env=sandbox", "sandboxes hold no customer data")
    with freeze_time("2026-11-20 09:00:00"):
        lifted = include(org_store, Actor("Bob Admin", "admin"), "tag", "env=sandbox", "sandbox now holds test data")
    with freeze_time("2027-01-05 09:00:00"):
        exclude(org_store, ADMIN, "resource", arn, "public website, no customer data")
    assert entry["excluded"] == {"by": "Ada Admin", "role": "admin", "at": "2026-10-02T09:00:00+00:00",
                                 "reason": "no workloads: SCP denies the region"}
    assert lifted["id"] == tag["id"] and lifted["lifted"]["by"] == "Bob Admin"
    assert current_scope(org_store)["version"] == 4
    trail = scope_trail(org_store)
    assert [(t["action"], t["actor"], t["note"]) for t in trail] == [
        ("exclude_from_scope", "Ada Admin", "no workloads: SCP denies the region"),
        ("exclude_from_scope", "Ada Admin", "sandboxes hold no customer data"),
        ("include_in_scope", "Bob Admin", "sandbox now holds test data"),
        ("exclude_from_scope", "Ada Admin", "public website, no customer data")]
    assert trail[2]["before"]["lifted"] is None and trail[2]["after"]["lifted"]["reason"] == "sandbox now holds test data"
    rows = {r["value"]: r for r in scope_document(org_store, load_catalog(), Q4)["out_of_scope"]}
    assert set(rows) == {"eu-west-3", "env=sandbox"}  # the resource was put out of scope after 2026Q4
    assert rows["eu-west-3"]["reason"] == "no workloads: SCP denies the region" and rows["eu-west-3"]["lifted_by"] is None
    assert (rows["env=sandbox"]["lifted_by"], rows["env=sandbox"]["lift_reason"]) == (
        "Bob Admin", "sandbox now holds test data")
    rows = scope_document(org_store, load_catalog(), parse_period("2027Q1"))["out_of_scope"]
    assert [r["value"] for r in rows] == ["eu-west-3", arn]  # lifted in 2026Q4: no longer out of scope in 2027Q1


def test_the_same_item_twice_a_lift_of_nothing_and_a_stale_version_are_refused(engine):
    exclude(engine, ADMIN, "account", C, "sold")
    with pytest.raises(UserError, match="already out of scope"):
        exclude(engine, ADMIN, "account", C, "again")
    with pytest.raises(UserError, match="is not out of scope"):
        include(engine, ADMIN, "account", A, "never excluded")
    with pytest.raises(StaleScope):
        exclude(engine, ADMIN, "account", A, "seen an old scope", version=0)
    assert [e["value"] for e in current_scope(engine)["entries"]] == [C] and len(scope_trail(engine)) == 1


@pytest.mark.parametrize("role", ["analyst", "viewer", "auditor", "approver", "wall"])
def test_only_admins_change_the_scope(engine, role):
    with pytest.raises(PermissionDenied):
        exclude(engine, Actor("someone", role), "account", C, "not mine to decide")
    exclude(engine, ADMIN, "account", C, "sold")
    with pytest.raises(PermissionDenied):
        include(engine, Actor("someone", role), "account", C, "not mine to decide")
    assert len(current_scope(engine)["entries"]) == 1 and len(scope_trail(engine)) == 1


def test_a_hostile_reason_is_stored_as_typed_and_inert_in_json(org_store):
    with freeze_time("2026-10-02 09:00:00"):
        exclude(org_store, ADMIN, "tag", "team=<b>x</b>", EVIL)
    stored = current_scope(org_store)["entries"][0]
    assert stored["excluded"]["reason"] == EVIL and stored["value"] == "team=<b>x</b>"
    assert scope_trail(org_store)[0]["note"] == EVIL
    doc = scope_document(org_store, load_catalog(), Q4)
    text = json.dumps(doc)
    assert json.loads(text)["out_of_scope"][0]["reason"] == EVIL and "\n" not in text.split('"reason": ')[1][:200]


@pytest.mark.parametrize("kind,value,message", [
    ("account", "12345", "--account: '12345' is not a 12-digit account id"),
    ("region", "us east 1", "--region: 'us east 1' is not a region name"),
    ("tag", "novalue", "--tag: 'novalue' is not key=value"),
    ("tag", "=x", "--tag: '=x' is not key=value"),
    ("tag", "k=\x1b[2J", "--tag: 'k=\\x1b[2J' contains the control character"),
    ("resource", "sg-123", "--resource: 'sg-123' is not an ARN"),
    ("bucket", "x", "scope: 'bucket' is not one of"),
])
def test_bad_items_are_refused_naming_the_option(engine, kind, value, message):
    with pytest.raises(UserError) as exc:
        exclude(engine, ADMIN, kind, value, "reason")
    assert str(exc.value).startswith(message) and current_scope(engine)["version"] == 0


@pytest.mark.parametrize("reason,message", [
    ("", "--reason: a reason is required"), ("   ", "--reason: a reason is required"),
    ("x" * 1001, "--reason: 1001 characters; at most 1000"), ("bell\x07", "--reason: 'bell\\x07' contains"),
])
def test_bad_reasons_are_refused(engine, reason, message):
    with pytest.raises(UserError) as exc:
        exclude(engine, ADMIN, "account", C, reason)
    assert str(exc.value).startswith(message) and scope_trail(engine) == []


# -- the command -----------------------------------------------------------------------------------

run = run_main  # `auditbook ARGS` in-process: (exit code, stdout, stderr)


def test_the_command_excludes_shows_and_includes(org_store, capsys, monkeypatch):
    db = str(org_store.url)
    code, out, err = run(capsys, monkeypatch, "scope", "show", "--period", "2026Q4", "--format", "json", "--db", db)
    assert [d["account"] for d in json.loads(out)["deviations"]] == [C]
    with freeze_time("2026-10-02 09:00:00"):
        code, out, err = run(capsys, monkeypatch, "scope", "exclude", "--account", C, "--reason", "sold [red]x[/red]",
                             "--db", db)
    assert code == 0 and "out of scope: account 333333333333 (entry 1)" in out, err
    entry = current_scope(org_store)["entries"][0]
    assert entry["excluded"]["role"] == "admin" and entry["excluded"]["by"].endswith("(cli)")
    code, out, err = run(capsys, monkeypatch, "scope", "show", "--from", "2026-10-01", "--to", "2026-10-31", "--db", db)
    assert code == 0 and "#1 account 333333333333: sold [red]x[/red] (" in out, err
    assert "333333333333 sandbox: out of scope: sold [red]x[/red] (0 of 3 days)" in out and "deviations: 0" in out
    code, out, err = run(capsys, monkeypatch, "scope", "show", "--period", "2026Q4", "--format", "json", "--db", db)
    assert json.loads(out)["deviations"] == []  # out of scope with a reason: not a deviation
    code, out, err = run(capsys, monkeypatch, "scope", "include", "--account", C, "--reason", "bought back", "--db", db)
    assert code == 0 and "back in scope" in out and current_scope(org_store)["entries"][0]["lifted"]["reason"] == \
        "bought back"


@pytest.mark.parametrize("args,message", [
    (("exclude", "--account", "12", "--reason", "r"), "error: --account: '12' is not a 12-digit account id"),
    (("exclude", "--account", A, "--region", REGION, "--reason", "r"), "error: scope: give exactly one of"),
    (("exclude", "--reason", "r"), "error: scope: give exactly one of"),
    (("exclude", "--tag", "a=b", "--reason", ""), "error: --reason: a reason is required"),
    (("include", "--account", A, "--reason", "r"), "error: --account: '111111111111' is not out of scope"),
    (("show", "--period", "2026Q9"), "error: --period: '2026Q9' is not a quarter"),
    (("show", "--from", "2026-13-01", "--to", "2026-12-31"), "error: --from: '2026-13-01' is not a date"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(org_store, capsys, monkeypatch, args, message):
    code, out, err = run(capsys, monkeypatch, "scope", *args, "--db", str(org_store.url))
    assert code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert "Traceback" not in err and current_scope(org_store)["version"] == 0


def test_the_store_writes_the_scope_only_at_the_version_it_was_read(engine):
    from auditbook.store import scope as stored
    first = {"version": 1, "entries": []}
    with writing(engine) as session:
        assert stored.write_scope(session, first, 0)
        assert not stored.write_scope(session, {"version": 1, "entries": ["lost"]}, 0)  # a second first write
        assert not stored.write_scope(session, {"version": 9, "entries": ["lost"]}, 5)  # a version never read
        assert stored.write_scope(session, {"version": 2, "entries": []}, 1)
    assert current_scope(engine) == {"version": 2, "entries": []}


def test_the_generic_settings_path_cannot_overwrite_the_scope(engine):
    from auditbook.monitor import settings
    exclude(engine, ADMIN, "account", C, "sold")
    with pytest.raises(UserError, match="'scope' is not a setting"):
        settings.put(engine, ADMIN, "scope", {"version": 2, "entries": []})
    assert [e["value"] for e in current_scope(engine)["entries"]] == [C]


def test_what_is_out_of_scope_on_a_day(engine):
    with freeze_time("2026-10-02 09:00:00"):
        exclude(engine, ADMIN, "region", "eu-west-3", "no workloads")
        exclude(engine, ADMIN, "account", C, "sold")
    with freeze_time("2026-10-05 09:00:00"):
        include(engine, ADMIN, "account", C, "bought back")
    from auditbook.history.scope import out_of_scope_on
    assert [r["value"] for r in out_of_scope_on(engine, dt.date(2026, 10, 1))] == []
    assert [r["value"] for r in out_of_scope_on(engine, dt.date(2026, 10, 3))] == ["eu-west-3", C]
    assert [r["value"] for r in out_of_scope_on(engine, dt.date(2026, 10, 6))] == ["eu-west-3"]
