"""Posture alert rules go through the one evaluator (auditbook.evaluate.conditions), with the checks'
rule for gaps: a condition that cannot be applied is ERROR with its reason, and a record with
evidence gaps, a failed scope or a gap in a type the condition reads is a gap, never "no match" — a
PostureRuleUnevaluated alert that resolves once a later run has no such gap."""
import datetime as dt

import pytest
import yaml

from auditbook.collect.records import Collection, Gap, Record, Scope
from auditbook.evaluate.conditions import (
    ERROR,
    MATCH,
    NO_MATCH,
    NOT_APPLICABLE,
    Condition,
    Context,
    evaluate_type,
)
from auditbook.monitor import alerts
from auditbook.monitor.posture_rules import UNEVALUATED, evaluate_posture
from auditbook.monitor.rules import load_rules
from auditbook.store.db import open_engine
from tests.conftest import Fault

ACCOUNT, REGION = "123456789012", "us-east-1"


def _record(rid: str, data: dict, gaps=None, rtype="aws.kms.key") -> Record:
    return Record(rtype, ACCOUNT, REGION, rid, f"arn:{rid}", data, gaps=gaps or {}, scope_region=REGION)


def _gap(call="kms:DescribeKey", resource=None, rtype="aws.kms.key") -> Gap:
    return Gap(ACCOUNT, REGION, rtype, call, "AccessDenied", "denied", resource)


def test_a_condition_gives_match_no_match_or_error_with_its_reason():
    ctx = Context(Collection(), dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    rotated = Condition.compile(expect="days_since(last_rotated) > `90`", applies="customer")
    assert ctx.apply(rotated, {"customer": True, "last_rotated": "2025-01-01T00:00:00Z"}).outcome == MATCH
    assert ctx.apply(rotated, {"customer": True, "last_rotated": "2025-12-30T00:00:00Z"}).outcome == NO_MATCH
    assert ctx.apply(rotated, {"customer": False}).outcome == NOT_APPLICABLE
    broken = ctx.apply(rotated, {"customer": True, "last_rotated": "not a date"})
    assert broken.outcome == ERROR and broken.reason.startswith("ValueError") and not broken.evidence_gap
    wrong_type = ctx.apply(rotated, {"customer": True, "last_rotated": 7})
    assert wrong_type.outcome == ERROR and "days_since" in wrong_type.reason


def test_over_a_type_gaps_are_gaps_never_no_match():
    records = [_record("good", {"on": True}), _record("off", {"on": False}),
               _record("unread", {"on": None}, gaps={"metadata": _gap(resource="unread")})]
    scopes = [Scope(ACCOUNT, REGION, "aws.kms.key"), Scope(ACCOUNT, "eu-west-1", "aws.kms.key", _gap("kms:ListKeys"))]
    result = evaluate_type(Context(Collection(records=records, scopes=scopes)), "aws.kms.key", Condition.compile(expect="on"))
    verdicts = {rec.id: v for rec, v in result.records}
    assert verdicts["good"].outcome == MATCH and verdicts["off"].outcome == NO_MATCH
    assert verdicts["unread"].outcome == ERROR and verdicts["unread"].evidence_gap
    assert "kms:DescribeKey failed" in verdicts["unread"].reason
    assert [(s.account, s.region) for s in result.scope_gaps] == [(ACCOUNT, "eu-west-1")] and result.attempted
    # a type the condition reads through values() with a gap makes every record an ERROR
    trails = [Scope(ACCOUNT, REGION, "aws.cloudtrail.trail", _gap("cloudtrail:DescribeTrails", rtype="aws.cloudtrail.trail"))]
    reads = Condition.compile(expect="contains(values('aws.cloudtrail.trail', 'S3BucketName'), Name)")
    assert reads.depends_on == {"aws.cloudtrail.trail"}
    result = evaluate_type(Context(Collection(records=records[:1], scopes=scopes[:1] + trails)), "aws.kms.key", reads)
    assert [(v.outcome, v.reason.split(",")[0]) for _rec, v in result.records] == [
        (ERROR, "depends on aws.cloudtrail.trail")]
    assert not evaluate_type(Context(Collection()), "aws.kms.key", reads).attempted


def _scan(db: str):
    from auditbook.scan import run_scan
    return run_scan(regions=REGION, db=db, criterion="CC6.1")


def _open(engine, rule):
    return [a for a in alerts.list_alerts(engine, alerts.OPEN_STATES) if a["rule"] == rule]


def test_a_posture_rule_over_a_failed_list_call_raises_a_gap_alert_until_the_list_is_read(aws, tmp_path, inject):
    """Before: the failed ListKeys left no key in the run, so the overdue key's alert resolved and nothing
    said the rule went unevaluated. Now: the alert stays, a PostureRuleUnevaluated alert names the
    scope and the reason, and it resolves when a later run reads the keys again."""
    aws.client("kms").create_key(Description="never rotated")
    db = f"sqlite:///{tmp_path}/p.db"
    engine = open_engine(db)
    rules, later = load_rules(), dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=366)  # past kms_rotation_max_days
    _scan(db)
    assert evaluate_posture(engine, rules, later) == (1, 0)
    [overdue] = _open(engine, "EncryptionKeyRotationOverdue")

    fault = Fault("ListKeys", "AccessDeniedException", 403)
    inject(fault)
    _scan(db)
    assert fault.calls
    gaps: list = []
    assert evaluate_posture(engine, rules, later, gaps) == (1, 0)  # the gap alert fires; nothing resolves
    assert _open(engine, "EncryptionKeyRotationOverdue")[0]["id"] == overdue["id"]
    [gap] = _open(engine, UNEVALUATED)
    assert gap["labels"] == {"rule": "EncryptionKeyRotationOverdue", "account": ACCOUNT, "region": REGION,
                             "resource_type": "aws.kms.key"}
    assert gap["severity"] == "warning" and gap["soc2_control"] == "CC6.1"
    assert "kms:ListKeys failed" in gap["summary"] and "AccessDeniedException" in gap["summary"]
    assert gaps == [("EncryptionKeyRotationOverdue", f"aws.kms.key in {ACCOUNT}/{REGION}", gaps[0][2])]
    assert evaluate_posture(engine, rules, later) == (0, 0)  # counted again, not raised twice
    assert _open(engine, UNEVALUATED)[0]["count"] == 2

    fault.match = lambda params: False  # the keys can be listed again
    _scan(db)
    assert evaluate_posture(engine, rules, later) == (0, 1)
    assert _open(engine, UNEVALUATED) == []
    assert _open(engine, "EncryptionKeyRotationOverdue")[0]["id"] == overdue["id"]


def test_a_rule_over_a_type_the_latest_run_did_not_collect_is_left_as_it_was(aws, tmp_path):
    from auditbook.scan import run_scan
    aws.client("kms").create_key(Description="never rotated")
    db = f"sqlite:///{tmp_path}/q.db"
    engine = open_engine(db)
    rules, later = load_rules(), dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=366)  # past kms_rotation_max_days
    _scan(db)
    assert evaluate_posture(engine, rules, later) == (1, 0)
    run_scan(regions=REGION, db=db, criterion="CC8.1")  # collects no KMS keys
    gaps: list = []
    assert evaluate_posture(engine, rules, later, gaps) == (0, 0)
    assert len(_open(engine, "EncryptionKeyRotationOverdue")) == 1 and _open(engine, UNEVALUATED) == []
    assert gaps and gaps[0][0] == "EncryptionKeyRotationOverdue" and "not collected by the latest run" in gaps[0][2]


@pytest.mark.parametrize("condition", ["Enabled == `true`", "contains(values('aws.kms.key', 'KeyId'), KeyId)"])
def test_values_reads_the_run_as_the_checks_do(aws, tmp_path, condition):
    """values() used to read nothing in a posture rule (its lookup returned []): it now reads the run."""
    aws.client("kms").create_key(Description="k")
    db = f"sqlite:///{tmp_path}/v.db"
    _scan(db)
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "p", "rules": [{
        "alert": "KeyListed", "expr": f'posture("aws.kms.key", "{condition}")',
        "labels": {"severity": "low", "soc2_control": "CC6.1"}, "annotations": {"summary": "listed"}}]}]}))
    assert evaluate_posture(open_engine(db), load_rules(path)) == (1, 0)


def test_an_alert_in_a_region_the_latest_run_did_not_read_is_left_as_it_was(aws, tmp_path, inject):
    """Before: a scan of us-east-1 alone resolved the overdue-key alert of eu-west-1 (its keys were not
    in the run, so "no match"), and a gap alert there resolved too. Now both stay until a run reads
    eu-west-1 again."""
    from auditbook.scan import run_scan
    aws.client("kms", region_name="eu-west-1").create_key(Description="never rotated, Ireland")
    db = f"sqlite:///{tmp_path}/r.db"
    engine = open_engine(db)
    rules, later = load_rules(), dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=366)  # past kms_rotation_max_days
    run_scan(regions="us-east-1,eu-west-1", db=db, criterion="CC6.1")
    assert evaluate_posture(engine, rules, later) == (1, 0)
    [overdue] = _open(engine, "EncryptionKeyRotationOverdue")
    assert overdue["labels"]["region"] == "eu-west-1"

    run_scan(regions="us-east-1", db=db, criterion="CC6.1")  # eu-west-1 not read at all
    assert evaluate_posture(engine, rules, later) == (0, 0)
    assert [a["id"] for a in _open(engine, "EncryptionKeyRotationOverdue")] == [overdue["id"]]

    fault = Fault("ListKeys", "AccessDeniedException", 403, match=lambda params: True)
    inject(fault)
    run_scan(regions="us-east-1,eu-west-1", db=db, criterion="CC6.1")
    evaluate_posture(engine, rules, later)
    assert {a["labels"]["region"] for a in _open(engine, UNEVALUATED)} == {"us-east-1", "eu-west-1"}
    fault.match = lambda params: False
    run_scan(regions="us-east-1", db=db, criterion="CC6.1")  # us-east-1 read again, eu-west-1 not read
    evaluate_posture(engine, rules, later)
    assert {a["labels"]["region"] for a in _open(engine, UNEVALUATED)} == {"eu-west-1"}
    assert [a["id"] for a in _open(engine, "EncryptionKeyRotationOverdue")] == [overdue["id"]]


def test_a_check_function_that_raises_is_that_records_error_not_a_crashed_scan():
    """Before: an AttributeError from a check function escaped the evaluator and the whole scan ended
    with a traceback after collection, nothing stored."""
    ctx = Context(Collection(), functions={"name_is_prod": lambda record: record["Name"].startswith("prod-")})
    verdict = ctx.apply(Condition.compile(function="name_is_prod"), {"Name": 42})
    assert verdict.outcome == ERROR
    assert verdict.reason == ("ValueError: check function 'name_is_prod' raised AttributeError: "
                              "'int' object has no attribute 'startswith'")
    assert ctx.apply(Condition.compile(function="name_is_prod"), {"Name": "prod-db"}).outcome == MATCH
