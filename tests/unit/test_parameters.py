"""Thresholds a company sets (issue 15 §2): named parameters with defaults in controls.yaml, the company's
values in the one file parameters_file names, validated, read by checks as ${name}; and the FAIL
message templates that say what is wrong (§3)."""
import datetime as dt

import pytest
import yaml

from auditbook.catalog.messages import compile_template, split_template
from auditbook.catalog.model import CatalogError, load_catalog
from auditbook.collect.records import Collection, Record, Scope
from auditbook.errors import UserError
from auditbook.evaluate.conditions import Context
from auditbook.evaluate.evaluator import evaluate
from auditbook.evaluate.observed import rendered, written
from auditbook.report.page_helpers import check_conditions
from tests.catalog_edits import check_of, write_catalog
from tests.conftest import run_main

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def _key(days_old: int, rotation: bool = True) -> Record:
    created = (NOW - dt.timedelta(days=days_old)).isoformat()
    data = {"KeyId": "k1", "customer_symmetric": True, "KeyState": "Enabled", "rotation_enabled": rotation,
            "last_rotated": None, "CreationDate": created}
    return Record("aws.kms.key", "111111111111", "us-east-1", "k1", "arn:k1", data, scope_region="us-east-1")


def _findings(catalog, record: Record, check: str):
    collection = Collection(records=[record], scopes=[Scope(record.account, record.region, record.type)])
    return [f for f in evaluate(catalog, collection, NOW) if f.check == check]


def _company_values(tmp_path, values: dict, mutate=None):
    path = write_catalog(tmp_path, mutate)
    (tmp_path / "company-parameters.yaml").write_text(yaml.safe_dump({"version": 1, "parameters": values}))
    return path


def test_defaults_and_the_company_file_are_in_force_with_their_source():
    catalog = load_catalog()
    assert catalog.parameters["kms_rotation_max_days"].value == 365
    assert catalog.parameters["kms_rotation_max_days"].source == "default"
    assert catalog.parameters["backup_retention_days"].source == "company-parameters.yaml"
    check = next(c for c in catalog.checks if c.id == "kms-cmk-rotation")
    assert "${" not in check.title + check.expect + check.message
    assert "365 days" in check.title and "<= `365`" in check.expect
    assert check.parameters == ["kms_rotation_max_days"]


def test_a_company_value_changes_the_verdict_the_title_and_the_message(tmp_path):
    record = _key(200)
    [bundled] = _findings(load_catalog(), record, "kms-cmk-rotation")
    assert bundled.status == "PASS"
    catalog = load_catalog(_company_values(tmp_path, {"kms_rotation_max_days": 90}))
    assert catalog.parameters["kms_rotation_max_days"].source == "company-parameters.yaml"
    [finding] = _findings(catalog, record, "kms-cmk-rotation")
    assert finding.status == "FAIL"
    assert finding.message == ("automatic rotation on; 200 days since the last rotation (or creation), "
                               "at most 90 allowed")
    assert "within 90 days" in next(c for c in catalog.checks if c.id == "kms-cmk-rotation").title


def test_the_company_file_is_part_of_the_catalog_digest(tmp_path):
    first = load_catalog(_company_values(tmp_path, {"kms_rotation_max_days": 90})).sha256
    second = load_catalog(_company_values(tmp_path, {"kms_rotation_max_days": 91})).sha256
    assert first != second and first != load_catalog().sha256


@pytest.mark.parametrize("values,expected", [
    ({"kms_rotation_max_days": "90"}, "parameters.kms_rotation_max_days: must be a whole number (value '90')"),
    ({"kms_rotation_max_days": True}, "parameters.kms_rotation_max_days: must be a whole number (value True)"),
    ({"kms_rotation_max_days": 0}, "parameters.kms_rotation_max_days: must be at least 1 (value 0)"),
    ({"kms_rotation_max_days": 10 ** 6}, "must be at most 3650"),
    ({"backup_days": 30}, "parameters.backup_days: not a parameter of the catalog (known: "),
    ({"require_customer_managed_keys": "yes"}, "must be true or false (value 'yes')"),
    ({"control_tag_key": "SOC2\x1b[31m"}, "holds the unsafe character '\\x1b'"),
    ({"control_tag_key": ""}, "must be 1 to 128 characters"),
    ({"log_archive_account": "12345"}, "parameters.log_archive_account: must match ([0-9]{12})? (value '12345')"),
    ({"waf_required_rule_groups": ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesCommonRuleSet"]},
     "parameters.waf_required_rule_groups: entry 2 repeats 'AWSManagedRulesCommonRuleSet' (each entry once)"),
])
def test_a_bad_company_value_is_one_line_naming_file_field_and_value(tmp_path, values, expected):
    path = _company_values(tmp_path, values)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert str(tmp_path / "company-parameters.yaml") in message and expected in message and "\n" not in message


def test_an_approved_network_list_cannot_approve_every_address(tmp_path):
    with pytest.raises(CatalogError, match=r"approved_egress_cidrs: entry 2 is 0.0.0.0/0: every address"):
        load_catalog(_company_values(tmp_path, {"approved_egress_cidrs": ["10.0.0.0/8", "0.0.0.0/0"]}))


def test_a_cidr_list_is_validated_and_normalised(tmp_path):
    def declare(raw):
        raw["parameters"]["approved_test_cidrs"] = {"type": "cidr_list", "default": [], "description": "test networks"}
    catalog = load_catalog(_company_values(tmp_path, {"approved_test_cidrs": ["10.0.0.0/8", "2001:db8::/32"]},
                                           declare))
    assert catalog.parameter_value("approved_test_cidrs") == ["10.0.0.0/8", "2001:db8::/32"]
    for bad in (["10.0.0.1/8"], ["ten"], "10.0.0.0/8", [8], ["0.0.0.0/0"], ["::/0"]):
        with pytest.raises(CatalogError, match="approved_test_cidrs"):
            load_catalog(_company_values(tmp_path, {"approved_test_cidrs": bad}, declare))


@pytest.mark.parametrize("text,expected", [
    ("version: 2\nparameters: {}\n", "field version: must be 1"),
    ("- a\n", "must be a mapping with version: 1"),
    ("version: 1\nparameters: [1]\n", "field parameters: must be a mapping"),
    ("version: 1\nextra: 1\n", "must be a mapping with version: 1"),
])
def test_a_malformed_company_file_is_refused(tmp_path, text, expected):
    path = write_catalog(tmp_path)
    (tmp_path / "company-parameters.yaml").write_text(text)
    with pytest.raises(CatalogError, match=expected):
        load_catalog(path)


def test_a_missing_company_file_or_a_path_outside_the_catalog_folder_is_refused(tmp_path):
    path = write_catalog(tmp_path)
    (tmp_path / "company-parameters.yaml").unlink()
    with pytest.raises(CatalogError, match="company-parameters.yaml"):
        load_catalog(path)
    path = write_catalog(tmp_path, lambda raw: raw.update(parameters_file="../elsewhere.yaml"))
    with pytest.raises(CatalogError, match="field parameters_file: must name a file beside the catalog"):
        load_catalog(path)


@pytest.mark.parametrize("edit,expected", [
    (lambda raw: raw["parameters"].update(x={"type": "integer", "default": 1, "description": "short"}),
     "parameter x: field name"),
    (lambda raw: raw["parameters"].update(some_days={"type": "integer", "default": "7", "description": "seven"}),
     "parameter some_days: field default: must be a whole number"),
    (lambda raw: raw["parameters"].update(some_days={"type": "days", "default": 7, "description": "seven"}),
     "parameter some_days: field type"),
    (lambda raw: check_of(raw, "kms-cmk-rotation").update(expect="days_since(CreationDate) < ${nope}"),
     "check kms-cmk-rotation: field expect: unknown parameter ${nope}"),
    (lambda raw: check_of(raw, "kms-cmk-rotation").update(title="Keys rotate within ${nope} days"),
     "check kms-cmk-rotation: field title: unknown parameter ${nope}"),
    (lambda raw: check_of(raw, "kms-cmk-rotation").update(message="rotation {rotation_enabled"),
     "check kms-cmk-rotation: field message: a { placeholder without its closing }"),
    (lambda raw: check_of(raw, "kms-cmk-rotation").update(message="rotation } off"),
     "check kms-cmk-rotation: field message: a } without its opening {"),
    (lambda raw: check_of(raw, "kms-cmk-rotation").update(message="rotation {KeyId[} off"),
     "check kms-cmk-rotation: field message: invalid JMESPath"),
    (lambda raw: check_of(raw, "kms-cmk-rotation").update(message="rotation {} off"),
     "check kms-cmk-rotation: field message: an empty {} placeholder"),
])
def test_a_catalog_mistake_in_parameters_or_messages_names_the_check_and_field(tmp_path, edit, expected):
    with pytest.raises(CatalogError) as caught:
        load_catalog(write_catalog(tmp_path, edit))
    assert expected in str(caught.value)


def test_message_templates_split_escape_and_resolve_parameters():
    assert split_template("a {{b}} {x.y} ${p} {length(z) > ${p}}") == [
        ("text", "a {b} "), ("expr", "x.y"), ("text", " ${p} "), ("expr", "length(z) > ${p}")]
    catalog = load_catalog()
    from auditbook.catalog.messages import resolved
    text = resolved("at most ${kms_rotation_max_days} ({days_since(CreationDate) > ${kms_rotation_max_days}}) {{x}}",
                    catalog.parameters)
    assert text == "at most 365 ({days_since(CreationDate) > `365`}) {{x}}"


def test_placeholder_values_are_written_for_a_person_and_redacted():
    ctx = Context(Collection(), NOW)
    template = compile_template("ports {ports}; owner {owner}; flag {flag}; env {env}; n {n}")
    data = {"ports": [f"tcp {p}" for p in range(1, 14)], "owner": None, "flag": False,
            "env": {"password": "hunter2"}, "n": 3.0}
    text = rendered(template, data, ctx.opts)
    assert text.startswith("ports tcp 1, tcp 2, tcp 3, tcp 4, tcp 5, tcp 6, tcp 7, tcp 8, tcp 9, tcp 10 … and 3 more;")
    assert "owner none; flag false;" in text and "n 3" in text and "hunter2" not in text
    assert written([]) == "none" and written("x" * 500).endswith("…") and len(written("x" * 500)) == 200


def test_a_placeholder_that_cannot_be_evaluated_says_so_and_the_finding_stays_a_fail(tmp_path):
    edit = lambda raw: check_of(raw, "kms-cmk-rotation").update(message="key {abs(KeyId)} rotates {rotation_enabled}")  # noqa: E731
    [finding] = _findings(load_catalog(write_catalog(tmp_path, edit)), _key(400), "kms-cmk-rotation")
    assert finding.status == "FAIL"
    assert finding.message == "key (cannot be shown: JMESPathTypeError) rotates true"


def test_the_packet_prints_each_checks_parameters_beside_it(tmp_path):
    catalog = load_catalog(_company_values(tmp_path, {"kms_rotation_max_days": 90}))
    table = check_conditions(catalog.checks, catalog.parameters).set_index("check")
    assert table.loc["kms-cmk-rotation", "parameters"] == "kms_rotation_max_days = 90 (company-parameters.yaml)"


def test_the_parameters_command_lists_values_and_sources(capsys, monkeypatch, tmp_path):
    path = _company_values(tmp_path, {"kms_rotation_max_days": 90})
    code, stdout, _ = run_main(capsys, monkeypatch, "parameters", "--catalog", str(path))
    assert code == 0
    assert "kms_rotation_max_days = 90 (default 365) — set in company-parameters.yaml; read by" in stdout
    (tmp_path / "company-parameters.yaml").write_text("version: 1\nparameters: {kms_rotation_max_days: -1}\n")
    code, stdout, stderr = run_main(capsys, monkeypatch, "validate", "--catalog", str(path))
    assert code == 2 and "parameters.kms_rotation_max_days: must be at least 1 (value -1)" in stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1


def test_the_rotation_alert_and_the_rotation_check_read_one_threshold(tmp_path):
    """Issue 15 §2: the posture alert EncryptionKeyRotationOverdue and the check kms-cmk-rotation
    disagreed (90 and 365 days); both read kms_rotation_max_days now, the company's value included."""
    from auditbook.monitor.rules import load_rules
    catalog = load_catalog(_company_values(tmp_path, {"kms_rotation_max_days": 120}))
    [bundled] = [r for r in load_rules() if r.name == "EncryptionKeyRotationOverdue"]
    assert bundled.condition.endswith("> `365`") and bundled.summary.startswith("more than 365 days")
    [rule] = [r for r in load_rules(None, catalog.parameters) if r.name == "EncryptionKeyRotationOverdue"]
    assert rule.condition.endswith("> `120`") and rule.summary.startswith("more than 120 days")
    check = next(c for c in catalog.checks if c.id == "kms-cmk-rotation")
    assert "<= `120`" in check.expect
    rules = tmp_path / "alerts.yml"
    rules.write_text('groups: [{name: p, rules: [{alert: Abc, expr: \'posture("aws.kms.key", "days_since(CreationDate) '
                     '> ${nope}")\', labels: {severity: low, soc2_control: CC6.1}, annotations: {summary: "abc"}}]}]\n')
    with pytest.raises(UserError, match=r"rule Abc: expr: condition .*unknown parameter \$\{nope\}"):
        load_rules(rules, catalog.parameters)


def test_the_prometheus_example_rule_uses_the_default_rotation_threshold():
    """docs/prometheus/alerts.yml cannot read the catalog: its number is the parameter's default."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / "prometheus" / "alerts.yml").read_text()
    days = load_catalog().parameters["kms_rotation_max_days"].default
    assert f"> {days} * 86400" in text and f"more than {days} days" in text
