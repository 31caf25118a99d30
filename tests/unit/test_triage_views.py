"""What the alerts page and `auditbook alerts …` show and do (issue 13 §1): filters given as URL
parameters (checked, counted and paged in SQL, sorted by severity then age), an alert's detail (its
CloudTrail records, redacted; the findings it concerns; its history), and the CLI's list, show,
triage, suppress, suppressions and lift."""
import datetime as dt
import json

import pytest

from auditbook.auth import Actor
from auditbook.errors import UserError
from auditbook.monitor import alert_views, alerts, suppressions, triage
from auditbook.store import cloudtrail as stored_trail
from auditbook.store.session import writing
from tests.conftest import CliResult, run_main

ANALYST = Actor("ana", "analyst")
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def store(tmp_path):
    """Alerts of three severities, two accounts and two regions, fired an hour apart (oldest first)."""
    from auditbook.store.db import open_engine
    db = f"sqlite:///{tmp_path}/s.db"
    engine = open_engine(db)
    made = []
    specs = [("low", "111111111111", "eu-west-1"), ("critical", "111111111111", "us-east-1"),
             ("high", "222222222222", "eu-west-1"), ("critical", "222222222222", "eu-west-1"),
             ("medium", "111111111111", "eu-west-1")]
    with writing(engine) as session:
        for n, (severity, account, region) in enumerate(specs):
            made.append(alerts.fire(session, rule="RootAccountUsage" if n % 2 else "ConsoleLoginWithoutMFA",
                                    labels={"account": account, "region": region, "n": str(n)}, severity=severity,
                                    soc2_control="CC7.2", summary=f"alert {n}", at=T0 + dt.timedelta(hours=n))["id"])
    return {"engine": engine, "db": db, "ids": made}


def ids(found: dict) -> list[int]:
    return [a["id"] for a in found["rows"]]


def test_default_order_is_severity_then_oldest_first(store):
    query, order = alert_views.parse_filters({})
    i = store["ids"]
    assert ids(alert_views.page(store["engine"], query, order)) == [i[1], i[3], i[2], i[4], i[0]]


def test_filters_narrow_in_sql_and_pages_count(store):
    e, i = store["engine"], store["ids"]
    query, order = alert_views.parse_filters({"account": ["222222222222"], "region": ["eu-west-1"]})
    assert ids(alert_views.page(e, query, order)) == [i[3], i[2]]
    query, _ = alert_views.parse_filters({"severity": ["critical", "low"], "rule": ["RootAccountUsage"]})
    assert ids(alert_views.page(e, query)) == [i[1], i[3]]
    query, _ = alert_views.parse_filters({"since": ["2026-11-02T11:00:00+00:00"], "until": ["2026-11-02"]})
    assert ids(alert_views.page(e, query)) == [i[3], i[2], i[4]]
    first = alert_views.page(e, alert_views.parse_filters({})[0], number=2, size=2)
    assert (first["total"], first["pages"], first["number"], ids(first)) == (5, 3, 2, [i[2], i[4]])
    assert alert_views.page(e, alert_views.parse_filters({})[0], number=99, size=2)["number"] == 3  # last page
    triage.triage(e, ANALYST, i[0], alerts.get(e, i[0])["version"], assignee="bob")
    triage.triage(e, ANALYST, i[2], alerts.get(e, i[2])["version"], decision="false-positive", reason="scanner")
    assert ids(alert_views.page(e, alert_views.parse_filters({"assignee": ["bob"]})[0])) == [i[0]]
    assert i[0] not in ids(alert_views.page(e, alert_views.parse_filters({"assignee": ["-"]})[0]))
    assert ids(alert_views.page(e, alert_views.parse_filters({"triage": ["false-positive"]})[0])) == [i[2]]
    assert i[2] not in ids(alert_views.page(e, alert_views.parse_filters({"triage": ["untriaged"]})[0]))


def test_overdue_and_suppressed_filters(store):
    e, i = store["engine"], store["ids"]
    suppressions.suppress(e, ANALYST, rule="RootAccountUsage", labels={"n": "3"},
                          until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1), reason="drill")
    assert ids(alert_views.page(e, alert_views.parse_filters({"suppressed": ["yes"]})[0])) == [i[3]]
    assert i[3] not in ids(alert_views.page(e, alert_views.parse_filters({"suppressed": ["no"]})[0]))
    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=20)  # past the critical (15 min) target only
    query, _ = alert_views.parse_filters({"triage": ["overdue"]}, e, at)
    assert ids(alert_views.page(e, query)) == [i[1], i[3]]


@pytest.mark.parametrize("params, message", [
    ({"state": ["burning"]}, "state: 'burning' is not one of"), ({"colour": ["red"]}, "'colour': not a filter"),
    ({"since": ["yesterday"]}, "since: 'yesterday' is not a date"), ({"until": ["2026-11-02T10:00"]}, "no time zone"),
    ({"since": ["2026-11-03"], "until": ["2026-11-01"]}, "since: after until"),
    ({"triage": ["maybe"]}, "triage: 'maybe' is not one of"), ({"sort": ["random"]}, "sort: 'random' is not one of"),
    ({"assignee": ["a", "b"]}, "assignee: give it once"), ({"rule": [str(n) for n in range(51)]}, "at most 50"),
    ({"account": ["1" * 601]}, "longer than 600"),
])
def test_bad_filters_are_named(params, message):
    with pytest.raises(UserError, match=message):
        alert_views.parse_filters(params)


def test_detail_shows_the_cloudtrail_records_findings_and_history(store):
    e = store["engine"]
    record = {"eventTime": "2026-11-02T08:59:00Z", "eventName": "ConsoleLogin", "eventSource": "signin.amazonaws.com",
              "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111111111111:root"},
              "sourceIPAddress": "203.0.113.9", "userAgent": "Mozilla/5.0", "recipientAccountId": "111111111111",
              "awsRegion": "us-east-1", "eventID": "ev-1", "requestParameters": {"password": "[redacted]"},
              "resources": [{"ARN": "arn:aws:iam::111111111111:root"}]}
    a = alerts.get(e, store["ids"][1])
    with writing(e) as session:  # as CloudTrail ingestion does: the match, and one more occurrence naming it
        alerts.fire(session, rule=a["rule"], labels=a["labels"], severity=a["severity"], soc2_control="CC7.2",
                    summary=a["summary"], at=T0, evidence=["ev-1"])
        stored_trail.insert_match(session, rule=a["rule"], labels_key=a["dedup_key"], at=T0, event_id="ev-1",
                                  record=record, record_sha256="0" * 64)
    triage.triage(e, ANALYST, a["id"], a["version"], assignee="bob", note="looking")
    d = alert_views.detail(e, a["id"])
    row = d["records"][0]
    assert (row["time"], row["principal"], row["source_ip"], row["user_agent"], row["event"]) == \
        ("2026-11-02T08:59:00Z", "arn:aws:iam::111111111111:root", "203.0.113.9", "Mozilla/5.0", "ConsoleLogin")
    assert json.loads(row["request_parameters"]) == {"password": "[redacted]"}
    assert d["resources"] == ["arn:aws:iam::111111111111:root"] and d["findings"] == []
    assert [h["action"] for h in d["history"]] == ["assign", "note"]
    assert d["triage"]["due"] is not None and d["suppression"] is None
    with pytest.raises(UserError, match="no alert 999"):
        alert_views.detail(e, 999)


@pytest.fixture
def cli(monkeypatch, capsys):
    """`auditbook ARGS` through cli.main.main (its error mapping: exit 2 and one line for bad input)."""
    return lambda *args: CliResult(*run_main(capsys, monkeypatch, *args, width=None))



def test_cli_alerts_stays_compatible_and_lists_through_filters(store, cli):
    db, i = store["db"], store["ids"]
    r = cli("alerts", "--state", "firing", "--format", "json", "--db", db)
    assert r.exit_code == 0, r.output
    docs = json.loads(r.stdout)
    assert [d["id"] for d in docs] == [i[1], i[3], i[2], i[4], i[0]] and docs[0]["triage_decision"] is None
    r = cli("alerts", "list", "--severity", "critical", "--account", "222222222222", "--format", "json", "--db", db)
    assert r.exit_code == 0 and [d["id"] for d in json.loads(r.stdout)] == [i[3]]
    r = cli("alerts", "list", "--limit", "2", "--db", db)
    assert r.exit_code == 0 and "Alerts (5)" in r.stdout and "showing 2 of 5" in r.stderr
    r = cli("alerts", "list", "--since", "yesterday", "--db", db)
    assert r.exit_code == 2 and "since: 'yesterday' is not a date" in r.output and "Traceback" not in r.output


def test_cli_triage_suppress_and_list_suppressions(store, cli):
    db, i = store["db"], store["ids"]
    r = cli("alerts", "triage", str(i[1]), "--decision", "true-positive", "--db", db)
    assert r.exit_code == 2 and "reason: required" in r.output
    r = cli("alerts", "triage", str(i[1]), str(i[3]), "--decision", "true-positive", "--reason", "root in use",
            "--assignee", "ana", "--db", db)
    assert r.exit_code == 0, r.output
    a = alerts.get(store["engine"], i[1])
    assert a["triage_decision"] == "true-positive" and a["incident_id"] and a["assignee"] == "ana"
    assert a["triaged_by"].endswith("(cli)") and f"incident {a['incident_id']}" in r.stdout
    assert alerts.get(store["engine"], i[3])["incident_id"] == a["incident_id"]
    r = cli("alerts", "triage", "999", "--note", "x", "--db", db)
    assert r.exit_code == 2 and "no alert 999" in r.output
    until = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    r = cli("alerts", "suppress", "--rule", "ConsoleLoginWithoutMFA", "--label", "account=111111111111",
            "--until", until, "--reason", "MFA rollout week", "--db", db)
    assert r.exit_code == 0, r.output
    assert f"alerts covered: {i[0]}, {i[4]}" in r.stdout
    r = cli("alerts", "suppressions", "--format", "json", "--db", db)
    found = json.loads(r.stdout)
    assert [(s["rule"], s["labels"], s["reason"], s["alerts"]) for s in found] == [
        ("ConsoleLoginWithoutMFA", {"account": "111111111111"}, "MFA rollout week", [i[0], i[4]])]
    r = cli("alerts", "suppress", "--rule", "X", "--label", "account", "--until", until, "--reason", "r", "--db", db)
    assert r.exit_code == 2 and "--label: 'account' is not name=value" in r.output
    r = cli("alerts", "lift", str(found[0]["id"]), "--reason", "rollout done", "--db", db)
    assert r.exit_code == 0 and suppressions.list_suppressions(store["engine"]) == []
    r = cli("alerts", "show", str(i[1]), "--db", db)
    assert r.exit_code == 0 and "true-positive" in r.stdout and "root in use" in r.stdout


def test_cli_show_prints_hostile_stored_text_as_one_printable_line(store, cli):
    e = store["engine"]
    a = alerts.get(e, store["ids"][1])
    record = {"eventTime": "2026-11-02T08:59:00Z", "eventName": "ConsoleLogin", "eventID": "ev-2",
              "userIdentity": {"arn": "arn:aws:iam::111111111111:root"}, "sourceIPAddress": "203.0.113.9",
              "userAgent": "curl \x1b]0;owned\x07\x1b[2J [bold]x[/bold]", "requestParameters": None}
    with writing(e) as session:
        alerts.fire(session, rule=a["rule"], labels=a["labels"], severity=a["severity"], soc2_control="CC7.2",
                    summary=a["summary"], at=T0, evidence=["ev-2"])
        stored_trail.insert_match(session, rule=a["rule"], labels_key=a["dedup_key"], at=T0, event_id="ev-2",
                                  record=record, record_sha256="0" * 64)
    a = alerts.get(e, a["id"])
    triage.triage(e, ANALYST, a["id"], a["version"], decision="false-positive", reason="line one\n\x1b[31mline two")
    r = cli("alerts", "show", str(a["id"]), "--db", store["db"])
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.stdout and "[bold]x[/bold]" in r.stdout  # no escape reaches the terminal; markup as typed
    assert "line one  [31mline two" in r.stdout


@pytest.mark.parametrize("args", [("list", "--until", "9999-12-31"), ("list", "--since", "0001-01-01T00:00:00+01:00"),
                                  ("suppress", "--rule", "RootAccountUsage", "--label", "account=111111111111",
                                   "--until", "0001-01-01T00:00:00+01:00", "--reason", "x")])
def test_cli_calendar_edge_dates_are_one_line_errors(store, cli, args):
    r = cli("alerts", *args, "--db", store["db"])
    assert r.exit_code == 2 and "is out of range" in r.output and "Traceback" not in r.output, r.output


def test_cli_alert_list_is_readable_at_80_columns(store, cli):
    """Long labels (an assumed-role ARN) fold under the rule; no line is wider than the terminal and
    the fixed columns are never broken."""
    with writing(store["engine"]) as session:
        alerts.fire(session, rule="SecurityGroupOpenedToWorld", labels={
            "principal": "arn:aws:sts::027190065010:assumed-role/AWSReservedSSO_Developer_5f1c/alex@example.test",
            "account": "027190065010", "region": "us-east-1"}, severity="high", soc2_control="CC6.6",
            summary="port 22 opened", at=T0)
    r = cli("alerts", "list", "--db", store["db"])
    lines = r.stdout.splitlines()
    assert r.exit_code == 0 and max(len(line) for line in lines) <= 80, r.stdout
    assert sum("2026-" in line for line in lines) == 6  # one first-seen per alert, never broken
    assert "account=027190065010" in r.stdout and "region=us-east-1" in r.stdout
