"""The exception register: matched FAILs are EXCEPTED until expiry, then FAIL; never PASS."""
import datetime as dt

import pytest
import yaml
from typer.testing import CliRunner

from auditbook.cli.main import registered_app

app = registered_app()
from auditbook.errors import UserError
from auditbook.evaluate.evaluator import Finding
from auditbook.evaluate.risk_register import Register, apply_exceptions, load_register

TODAY = dt.date(2026, 11, 28)


def _finding(status="FAIL", check="s3-versioning", account="111111111111", name="legacy-assets"):
    return Finding(check, ["CC6.1"], status, "medium", account, "us-east-1", "global", "aws.s3.bucket", name,
                   f"arn:aws:s3:::{name}", "not met", [], name)


def _register(**overrides):
    entry = {"id": "EX-1", "check": "s3-versioning", "account": "111111111111", "resource": "legacy-*",
             "owner": "alice", "justification": "rebuilt from git on every deploy", "approver": "ciso",
             "expires": "2027-01-31", **overrides}
    return Register.model_validate({"exceptions": [entry]})


def test_matched_fail_is_excepted_until_expiry_then_fails_again():
    register = _register()
    [excepted] = apply_exceptions([_finding()], register, TODAY)
    assert excepted.status == "EXCEPTED" and "EX-1" in excepted.message and "2027-01-31" in excepted.message
    [after] = apply_exceptions([_finding()], register, dt.date(2027, 2, 1))
    assert after.status == "FAIL" and "expired" in after.message
    [last_day] = apply_exceptions([_finding()], register, dt.date(2027, 1, 31))
    assert last_day.status == "EXCEPTED"


@pytest.mark.parametrize("finding", [
    _finding(status="PASS"), _finding(status="ERROR"), _finding(check="s3-default-encryption"),
    _finding(account="222222222222"), _finding(name="prod-data")])
def test_only_matching_failures_are_excepted(finding):
    [out] = apply_exceptions([finding], _register(), TODAY)
    assert out.status == finding.status


def test_pattern_matches_arn_too():
    [out] = apply_exceptions([_finding()], _register(resource="arn:aws:s3:::legacy-*", account="*"), TODAY)
    assert out.status == "EXCEPTED"


@pytest.mark.parametrize("field,value,message", [
    ("owner", None, "field owner: Field required"), ("justification", None, "field justification"),
    ("expires", None, "field expires"), ("expires", "someday", "field expires"),
    ("account", "12345", "field account")])
def test_incomplete_exception_is_refused_in_one_line(tmp_path, field, value, message):
    entry = {"id": "EX-9", "check": "s3-versioning", "owner": "alice", "justification": "long enough reason",
             "approver": "ciso", "expires": "2027-01-31"}
    if value is None:
        entry.pop(field)
    else:
        entry[field] = value
    path = tmp_path / "exceptions.yaml"
    path.write_text(yaml.safe_dump({"exceptions": [entry]}))
    with pytest.raises(UserError) as err:
        load_register(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and "EX-9" in text and message in text


def test_scan_records_exceptions_in_force_and_cli_edits_the_register(aws, tmp_path, monkeypatch):
    from sqlalchemy.orm import Session

    from auditbook.history.findings import findings_for_run
    from auditbook.scan import run_scan
    from auditbook.store.db import open_engine
    from auditbook.store.models import Run

    monkeypatch.chdir(tmp_path)
    aws.client("s3").create_bucket(Bucket="legacy-assets")
    runner = CliRunner()
    args = ["exceptions", "add", "EX-1", "--check", "s3-versioning", "--owner", "alice", "--approver", "ciso",
            "--justification", "rebuilt from git on every deploy", "--expires", "2099-01-01", "--resource", "legacy-*"]
    assert runner.invoke(app, args).exit_code == 0
    old = ["exceptions", "add", "EX-0", "--check", "s3-versioning", "--owner", "bob", "--approver", "ciso",
           "--justification", "an old acceptance that ran out", "--expires", "2020-01-01", "--resource", "other-*"]
    assert runner.invoke(app, old).exit_code == 0
    refused = runner.invoke(app, ["exceptions", "add", "EX-2", "--check", "no-such-check", "--owner", "al",
                                  "--approver", "x", "--justification", "long enough text", "--expires", "2099-01-01"])
    assert refused.exit_code != 0
    db = f"sqlite:///{tmp_path}/e.db"
    result = run_scan(db=db, regions="us-east-1")  # picks up ./exceptions.yaml
    rows = [r for r in findings_for_run(open_engine(db), result.run_id)
            if r["check"] == "s3-versioning" and r["resource_name"] == "legacy-assets"]
    assert [r["status"] for r in rows] == ["EXCEPTED"]
    with Session(open_engine(db)) as s:
        recorded = s.get(Run, result.run_id).parameters["exceptions"]
    assert [e["id"] for e in recorded] == ["EX-1"]  # only the exception in force
    assert runner.invoke(app, ["exceptions", "remove", "EX-1"]).exit_code == 0
    result = run_scan(db=db, regions="us-east-1")
    rows = [r for r in findings_for_run(open_engine(db), result.run_id)
            if r["check"] == "s3-versioning" and r["resource_name"] == "legacy-assets"]
    assert [r["status"] for r in rows] == ["FAIL"]


ENTRY_YAML = ("exceptions:\n  - id: EX-3\n    check: s3-versioning\n    owner: alice\n    approver: ciso\n"
              "    justification: rebuilt from git on every deploy\n    expires: {expires}\n")


@pytest.mark.parametrize("expires", ["2026-02-30", "2026-13-45", "0000-01-01", "2026-01-01 10:00:00 +99:00"])
def test_impossible_expiry_date_is_one_line_naming_the_field(tmp_path, expires):
    path = tmp_path / "exceptions.yaml"
    path.write_text(ENTRY_YAML.format(expires=expires))
    with pytest.raises(UserError) as err:
        load_register(path)
    text = str(err.value)
    assert text.startswith(f"{path}: exception EX-3: field expires: ") and expires in text and "\n" not in text


@pytest.mark.parametrize("expires", ["2027-01-31", "'2027-01-31'", "2027-01-31 10:00:00", "2027-01-31T23:59:59Z",
                                     "2027-01-31 10:00:00 -5"])
def test_expiry_dates_accepted_before_are_still_accepted(tmp_path, expires):
    path = tmp_path / "exceptions.yaml"
    path.write_text(ENTRY_YAML.format(expires=expires))
    assert load_register(path).exceptions[0].expires == dt.date(2027, 1, 31)


def test_an_exception_for_an_unknown_check_is_refused_on_load(tmp_path):
    path = tmp_path / "exceptions.yaml"
    path.write_text(ENTRY_YAML.format(expires="2027-01-31").replace("s3-versioning", "s3-versoning"))
    assert load_register(path).exceptions  # without the catalog's checks there is nothing to compare with
    with pytest.raises(UserError) as err:
        load_register(path, known_checks={"s3-versioning"})
    assert str(err.value) == f"{path}: exception EX-3: field check: 's3-versoning' is not a check in the catalog"


def test_register_writes_need_an_authorised_actor(tmp_path):
    from auditbook.auth import Actor, PermissionDenied
    from auditbook.evaluate.risk_register import add_exception, remove_exception
    path = tmp_path / "exceptions.yaml"
    fields = {"id": "EX-5", "check": "s3-versioning", "owner": "alice", "approver": "ciso",
              "justification": "rebuilt from git on every deploy", "expires": "2027-01-31"}
    with pytest.raises(TypeError):
        add_exception(fields, {"s3-versioning"}, path, trail=None)  # no actor: not a default any more
    with pytest.raises(TypeError):
        add_exception(fields, {"s3-versioning"}, path, actor=Actor("root", "admin"))  # nor the trail
    for actor in (None, Actor("vic", "viewer"), Actor("ana", "analyst")):
        with pytest.raises(PermissionDenied):
            add_exception(fields, {"s3-versioning"}, path, actor=actor, trail=None)
    assert not path.exists()
    add_exception(fields, {"s3-versioning"}, path, actor=Actor("root", "admin"), trail=None)
    with pytest.raises(TypeError):
        remove_exception("EX-5", path, trail=None)
    with pytest.raises(PermissionDenied):
        remove_exception("EX-5", path, actor=Actor("ana", "analyst"), trail=None)
    remove_exception("EX-5", path, actor=Actor("root", "admin"), trail=None)
    assert load_register(path).exceptions == []


def test_register_changes_go_to_the_store_audit_trail_the_caller_gives(tmp_path):
    """The register (evaluate/) knows nothing of the store: the caller hands it a trail, and
    scan.register_trail(engine) records each change in the audit log; a refused change records nothing."""
    from auditbook.auth import Actor, PermissionDenied
    from auditbook.evaluate.risk_register import add_exception, remove_exception
    from auditbook.scan import register_trail
    from auditbook.store import audit_log
    from auditbook.store.db import open_engine
    from auditbook.store.session import reading
    engine = open_engine(f"sqlite:///{tmp_path}/t.db")
    trail, path = register_trail(engine), tmp_path / "exceptions.yaml"
    fields = {"id": "EX-7", "check": "s3-versioning", "owner": "alice", "approver": "ciso",
              "justification": "rebuilt from git on every deploy", "expires": "2027-01-31"}
    with pytest.raises(PermissionDenied):
        add_exception(fields, {"s3-versioning"}, path, actor=Actor("ana", "analyst"), trail=trail)
    add_exception(fields, {"s3-versioning"}, path, actor=Actor("root", "admin"), trail=trail)
    remove_exception("EX-7", path, actor=Actor("root", "admin"), trail=trail)
    with reading(engine) as session:
        entries = audit_log.trail(session, "exception", "EX-7")
    assert [(e["action"], e["actor"], e["role"]) for e in entries] == [("add", "root", "admin"),
                                                                        ("remove", "root", "admin")]
    assert entries[0]["after"]["justification"] == "rebuilt from git on every deploy" and entries[0]["before"] is None
    assert entries[1]["before"]["id"] == "EX-7" and entries[1]["after"] is None
