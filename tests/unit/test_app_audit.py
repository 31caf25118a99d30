"""Application audit events (issue 15): parsing hostile messages, app-audit.yml validation, the
app_events rules, the checks on the audit log group, and the CLI's bad-input lines."""
import datetime as dt
import json

import pytest

from auditbook.collect.evidence import REDACTED, canonical, digest
from auditbook.errors import UserError
from auditbook.monitor.app_audit_config import AppAuditConfig, load_config
from auditbook.monitor.app_audit_events import parse_message, rule_fields, scrubbed
from auditbook.monitor.cloudtrail_records import BadRecord
from auditbook.monitor.rules import load_rules
from tests.conftest import by_check, collect_current, run_main

NOW = dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.timezone.utc)
LATEST = NOW + dt.timedelta(minutes=10)
CONFIG = AppAuditConfig.model_validate({"sources": [{"log_group": "/app/audit", "region": "us-east-1"}]})


def event(**overrides) -> dict:
    base = {"event_type": "data_access", "user": "alice@example.com", "source_ip": "10.0.0.5",
            "user_agent": "app/1.0", "timestamp": "2026-11-03T11:58:00Z", "action": "GET /customers/7",
            "outcome": "success", "resource": "customer/7"}
    return {**base, **overrides}


def parsed(message, config=CONFIG) -> dict:
    return parse_message(json.dumps(message) if isinstance(message, dict) else message, config, LATEST)


# -- parsing -------------------------------------------------------------------------------------

def test_a_well_formed_event_gives_its_fields_and_kind():
    row = parsed(event())
    assert row["kind"] == "data_access" and row["user"] == "alice@example.com" and row["source_ip"] == "10.0.0.5"
    assert row["at"] == dt.datetime(2026, 11, 3, 11, 58, tzinfo=dt.timezone.utc)
    assert row["record_sha256"] == digest(canonical(row["record"]))
    fields = rule_fields({**row, "account": "123456789012", "region": "us-east-1", "log_group": "/app/audit"})
    assert fields["hour"] == "11" and fields["weekday"] == "Tue" and fields["event"] == "data_access"


def test_an_unconfigured_event_type_is_other_and_configured_values_map_to_kinds():
    assert parsed(event(event_type="login"))["kind"] == "other"
    config = AppAuditConfig.model_validate({"sources": [{"log_group": "/a", "region": "eu-west-1"}],
                                            "fields": {"event": "meta.type", "user": "actor.id"},
                                            "event_types": {"system_change": ["config_change", "deploy"]}})
    row = parsed({**event(), "meta": {"type": "deploy"}, "actor": {"id": "bot"}}, config)
    assert row["kind"] == "system_change" and row["user"] == "bot"


def test_secrets_never_reach_the_stored_record_or_the_columns():
    row = parsed(event(token="tok-123456789", password="hunter2-secret",
                       headers={"Authorization": "Bearer abcdef123456789"},
                       note="key AKIAABCDEFGHIJKLMNOP used", action="GET /x?api_key=s3cr3tvalue&page=2",
                       user_agent="curl Bearer eyJhbGciOi.eyJzdWIiOiIx.c2ln"))
    text = json.dumps(row["record"])
    for secret in ("tok-123456789", "hunter2-secret", "abcdef123456789", "AKIAABCDEFGHIJKLMNOP", "s3cr3tvalue",
                   "eyJhbGciOi"):
        assert secret not in text and secret not in json.dumps({k: v for k, v in row.items() if k != "at"})
    assert row["action"] == f"GET /x?api_key={REDACTED}&page=2" and REDACTED in row["user_agent"]
    assert scrubbed("plain text stays") == "plain text stays"


@pytest.mark.parametrize("message, reason", [
    (7, "message: a number, not text"),
    ("not json at all", "message: not JSON"),
    ("[1, 2]", "message: a list, not a JSON object"),
    ("x" * (256 * 1024 + 1), "more than the 262,144-byte cap"),
    ("[" * 10 + "]" * 10, "message: a list"),
    (json.dumps(event(event_type=None)), "event_type: missing or empty"),
    (json.dumps(event(event_type=["data_access"])), "event_type: a list, not text"),
    (json.dumps(event(user={"id": 1})), "user: an object, not text"),
    (json.dumps(event(user="eve\u202egro.elpmaxe")), "user: 'eve\\u202egro.elpmaxe' holds control or format"),
    (json.dumps(event(resource="r" * 1025)), "resource: 1,025 characters, more than 1024"),
    (json.dumps(event(timestamp=None)), "timestamp: missing or null"),
    (json.dumps(event(timestamp=1700000000)), "timestamp: a number, not ISO 8601 text"),
    (json.dumps(event(timestamp="2026-11-03T11:58:00")), "is not an ISO 8601 time with a time zone"),
    (json.dumps(event(timestamp="yesterday")), "is not an ISO 8601 time"),
    (json.dumps(event(timestamp="2026-11-03T13:00:00Z")), "is before 2010 or after 2026-11-03T12:10Z"),
    (json.dumps(event(timestamp="2001-01-01T00:00:00Z")), "is before 2010"),
])
def test_hostile_messages_are_bad_records_naming_field_and_value(message, reason):
    with pytest.raises(BadRecord) as exc:
        parsed(message)
    assert reason in str(exc.value)


def test_deep_nesting_is_refused_before_anything_is_stored():
    deep: dict = {}
    for _ in range(80):
        deep = {"a": deep}
    with pytest.raises(BadRecord, match="nested more than 64 levels"):
        parsed(event(extra=deep))


def test_a_user_agent_is_kept_with_control_characters_made_spaces_and_cut():
    row = parsed(event(user_agent="evil\x1b[31m\u202eagent" + "z" * 3000))
    assert "\x1b" not in row["user_agent"] and "\u202e" not in row["user_agent"]
    assert len(row["user_agent"]) <= 1024 and row["user_agent"].startswith("evil [31m agent")


# -- app-audit.yml --------------------------------------------------------------------------------

def write(tmp_path, text: str):
    path = tmp_path / "app-audit.yml"
    path.write_text(text)
    return path


def test_the_defaults_are_the_seed_applications_names(tmp_path):
    config = load_config(write(tmp_path, "sources:\n  - {log_group: /app/audit, region: us-east-1}\n"))
    assert config.fields.event == "event_type" and config.fields.time == "timestamp"
    assert config.event_types.admin_action == ["admin_action"] and config.lag_seconds == 900


@pytest.mark.parametrize("text, message", [
    ("- a\n", "the top level must be a mapping"),
    ("sources: []\n", "sources: List should have at least 1 item"),
    ("sources:\n  - {log_group: 'bad name!', region: us-east-1}\n", "sources.0.log_group: String should match"),
    ("sources:\n  - {log_group: /a, region: mars}\n", "sources.0.region: String should match pattern"),
    ("sources:\n  - {log_group: /a, region: us-east-1, role: admin}\n", "sources.0.role: String should match"),
    ("sources:\n  - {log_group: /a, region: us-east-1, extra: 1}\n", "sources.0.extra: Extra inputs"),
    ("sources:\n  - {log_group: /a, region: us-east-1}\n  - {log_group: /a, region: us-east-1}\n",
     "sources.1: log group '/a' in us-east-1 is listed twice"),
    ("sources:\n  - {log_group: /a, region: us-east-1}\nfields: {user: 'a b'}\n", "fields.user: String should match"),
    ("sources:\n  - {log_group: /a, region: us-east-1}\nevent_types: {data_access: x, admin_action: x}\n",
     "event_types: 'x' names more than one kind"),
    ("sources:\n  - {log_group: /a, region: us-east-1}\nevent_types: {data_access: []}\n",
     "event_types.data_access: Value error, name at least one value"),
    ("sources:\n  - {log_group: /a, region: us-east-1}\nlag: 5 minutes\n", "lag: '5 minutes' is not a duration"),
    ("sources:\n  - {log_group: /a, region: us-east-1}\nlag: 2d\n", "lag: '2d' is more than a day"),
    ("sources:\n  - {log_group: /a, region: us-east-1}\nmax_message_kb: 5000\n", "max_message_kb: Input should be"),
])
def test_a_bad_config_is_one_line_naming_file_field_and_value(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as exc:
        load_config(path)
    assert str(path) in str(exc.value) and message in str(exc.value) and "\n" not in str(exc.value)


# -- rules ------------------------------------------------------------------------------------------

def rules_file(tmp_path, expr: str):
    path = tmp_path / "rules.yml"
    path.write_text("groups:\n  - name: g\n    rules:\n      - alert: Test\n        expr: '" + expr + "'\n"
                    "        labels: {severity: high, soc2_control: CC6.3}\n        annotations: {summary: test rule}\n")
    return path


def test_an_app_events_rule_matches_application_fields(tmp_path):
    [rule] = load_rules(rules_file(tmp_path, 'count_over_time(app_events{kind="admin_action", hour!~"0[7-9]|1[0-8]"}'
                                             '[1m]) by (user) > 0'))
    assert rule.kind == "app_events" and rule.by == ("user",) and rule.window == 60
    assert rule.test({"kind": "admin_action", "hour": "03"}) and not rule.test({"kind": "admin_action", "hour": "10"})


@pytest.mark.parametrize("expr, message", [
    ('count_over_time(app_events{eventName="x"}[1m]) > 0', "field 'eventName' is not one of event, kind"),
    ('count_over_time(events{kind="x"}[1m]) > 0', "field 'kind' is not one of eventName"),
    ('count_over_time(app_events{kind="x"}[1m]) by (principal) > 0', "by (principal) is not one of event, kind"),
])
def test_an_app_events_rule_reads_only_application_fields(tmp_path, expr, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_rules(rules_file(tmp_path, expr))


def test_the_bundled_rules_include_the_application_audit_group():
    kinds = {r.name: r.kind for r in load_rules()}
    assert {name for name, kind in kinds.items() if kind == "app_events"} == {
        "AppRepeatedDeniedDataAccess", "AppBulkDataAccess", "AppSystemChangeBurst", "AppAdminActionAtWeekend",
        "AppAdminActionOutsideChangeWindow"}


# -- the checks on the audit log group ---------------------------------------------------------------

def LOG_GROUPS():  # noqa: N802
    from auditbook.plugins import resource_types
    return [resource_types()["aws.logs.log_group"]]


def test_audit_log_group_retention_and_key(aws):
    logs, kms = aws.client("logs"), aws.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    logs.create_log_group(logGroupName="/app/audit")
    logs.put_retention_policy(logGroupName="/app/audit", retentionInDays=90)
    logs.create_log_group(logGroupName="other-group")
    _, findings = collect_current(types=LOG_GROUPS())
    [retention] = by_check(findings, "logs-app-audit-retention", "/app/audit")
    [kms_check] = by_check(findings, "logs-app-audit-kms", "/app/audit")
    assert retention.status == "FAIL" and "keeps events 90 days, required 365" in retention.message
    assert kms_check.status == "FAIL" and "has no KMS key (kmsKeyId none)" in kms_check.message
    assert by_check(findings, "logs-app-audit-retention", "other-group") == []  # not the audit group
    logs.delete_log_group(logGroupName="/app/audit")  # moto has no associate_kms_key
    logs.create_log_group(logGroupName="/app/audit", kmsKeyId=key)
    logs.put_retention_policy(logGroupName="/app/audit", retentionInDays=400)
    _, findings = collect_current(types=LOG_GROUPS())
    assert {f.status for f in by_check(findings, "logs-app-audit-retention", "/app/audit")} == {"PASS"}
    assert {f.status for f in by_check(findings, "logs-app-audit-kms", "/app/audit")} == {"PASS"}
    logs.delete_retention_policy(logGroupName="/app/audit")  # never expires
    _, findings = collect_current(types=LOG_GROUPS())
    assert {f.status for f in by_check(findings, "logs-app-audit-retention", "/app/audit")} == {"PASS"}


# -- the CLI's bad input ------------------------------------------------------------------------------

def test_cli_bad_config_is_exit_2_one_line(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, "sources:\n  - {log_group: /a, region: nowhere}\n")
    code, out, err = run_main(capsys, monkeypatch, "app-audit", "ingest", "--config", str(path),
                              "--db", f"sqlite:///{tmp_path}/s.db")
    assert code == 2 and err.startswith("error: ") and "sources.0.region" in err and err.count("\n") == 1
    assert "Traceback" not in out + err


def test_cli_list_bad_date_and_kind_are_exit_2(tmp_path, capsys, monkeypatch):
    db = f"sqlite:///{tmp_path}/s.db"
    from auditbook.store.db import open_engine
    open_engine(db)
    code, _out, err = run_main(capsys, monkeypatch, "app-audit", "list", "--since", "2026-02-30", "--db", db)
    assert code == 2 and "--since: '2026-02-30' is not a date" in err
    code, _out, err = run_main(capsys, monkeypatch, "app-audit", "list", "--kind", "logins", "--db", db)
    assert code == 2 and "--kind: 'logins' is not one of" in err
    code, out, _err = run_main(capsys, monkeypatch, "app-audit", "list", "--db", db)
    assert code == 0 and "0 of 0 events" in out


@pytest.mark.parametrize("body", [
    b"sources: &a [{log_group: /a, region: us-east-1}]\nfields: *a\n",  # an alias
    b"sources: !!python/object/apply:os.system ['true']\n",
    b"\xff\xfe not utf-8",
    b"sources:\n  - {log_group: /a, region: us-east-1}\n  - {log_group: /a, region: us-east-1, region: eu-west-1}\n",
    b"sources:\n  - {log_group: /a, region: us-east-1}\nfields: {event: " + b"a." * 20 + b"b}\n",
    b"sources:\n  - {log_group: /a, region: us-east-1}\nevent_types: {admin_action: \"x\\u202ey\"}\n",
])
def test_hostile_config_files_are_one_line_errors(tmp_path, body):
    path = tmp_path / "app-audit.yml"
    path.write_bytes(body)
    with pytest.raises(UserError) as exc:
        load_config(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_a_folder_is_not_a_config(tmp_path):
    folder = tmp_path / "app-audit.yml"
    folder.mkdir()
    with pytest.raises(UserError, match="app-audit.yml"):
        load_config(folder)
