"""Populations of a period (issue 14 §3): alerts with their triage, incidents with their post-mortem,
CloudTrail write events with their ticket (unlinked ones flagged), IAM access changes, manual evidence;
stable ids, a count and a SHA-256 that moves when a row does; CSV cells inert in a spreadsheet."""
import datetime as dt
import json

import pytest
from freezegun import freeze_time

from auditbook.auth import Actor
from auditbook.catalog.model import load_catalog
from auditbook.demo import trail as trailgen
from auditbook.history.period import parse_period
from auditbook.history.populations import (
    COLUMNS,
    default_kind,
    neutralised,
    population,
    read_csv,
    restored,
    rows_sha256,
    write_csv,
)
from auditbook.monitor import alerts, incidents, triage
from auditbook.monitor.cloudtrail_changes import change_of
from auditbook.store import changes as stored_changes
from auditbook.store.session import writing

ANALYST = Actor("ana", "analyst")
ACCOUNT, REGION = "111111111111", "eu-west-1"
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)
Q4 = parse_period("2026Q4")
EVIL = "=HYPERLINK(\"http://x\")<img src=x onerror=alert(1)>"


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    return open_engine(f"sqlite:///{tmp_path}/s.db")


def raise_alert(engine, rule="RootAccountUsage", at=T0, **labels) -> dict:
    with freeze_time(at), writing(engine) as session:  # raised as firing when it happened
        made = alerts.fire(session, rule=rule, labels=labels or {"account": ACCOUNT}, severity="high",
                           soc2_control="CC7.2", summary=f"{rule} {labels}", at=at)
    return alerts.get(engine, made["id"])


def write_event(engine, name="AuthorizeSecurityGroupIngress", source="ec2.amazonaws.com", request=None,
                at=T0, session_name=None, user="ops"):
    record = trailgen.record(at, ACCOUNT, REGION, source, name, user=user,
                             request=request or {"groupId": "sg-0123456789abcdef0"})
    if session_name:
        record["userIdentity"] = {"type": "AssumedRole", "accountId": ACCOUNT, "principalId": "AROA:x",
                                  "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/deploy/{session_name}"}
    change = change_of(record, at + dt.timedelta(days=1), "test")
    with writing(engine) as session:
        stored_changes.insert_changes(session, [change])
    return change


def test_alerts_first_seen_or_open_in_the_period_with_their_triage(engine):
    before = raise_alert(engine, rule="Old", at=dt.datetime(2026, 9, 1, tzinfo=dt.timezone.utc))  # still open
    with writing(engine) as session:  # resolved before the period: not in it
        gone = alerts.fire(session, rule="Gone", labels={"a": "1"}, severity="low", soc2_control="CC7.2",
                           summary="x", at=dt.datetime(2026, 8, 1, tzinfo=dt.timezone.utc))
    with freeze_time("2026-09-02"):
        triage.triage(engine, ANALYST, gone["id"], alerts.get(engine, gone["id"])["version"], resolve=True)
    a = raise_alert(engine)
    later = raise_alert(engine, rule="Later", at=dt.datetime(2027, 1, 5, tzinfo=dt.timezone.utc))
    with freeze_time(T0 + dt.timedelta(minutes=90)):
        triage.triage(engine, ANALYST, a["id"], a["version"], decision="false-positive", reason=EVIL, assignee="bob")
    pop = population(engine, load_catalog(), "alerts", Q4)
    assert pop.ids == [f"alert-{before['id']:09d}", f"alert-{a['id']:09d}"] and pop.count == 2
    assert later["id"] not in {int(r["alert"]) for r in pop.rows}
    row = pop.rows[1]
    assert (row["decision"], row["reason"], row["triaged_by"], row["assignee"], row["minutes_to_triage"]) == \
        ("false-positive", EVIL, "ana", "bob", "90.0")
    assert row["triaged_at"] == "2026-11-02T10:30:00+00:00" and row["incident"] == ""
    assert pop.rows[0]["decision"] == "" and pop.rows[0]["state_at_period_end"] == "firing"


def test_the_hash_moves_when_a_row_changes_and_not_otherwise(engine):
    a = raise_alert(engine)
    catalog = load_catalog()
    first = population(engine, catalog, "alerts", Q4)
    assert population(engine, catalog, "alerts", Q4).sha256 == first.sha256  # read twice: the same
    triage.triage(engine, ANALYST, a["id"], a["version"], assignee="bob")
    second = population(engine, catalog, "alerts", Q4)
    assert second.ids == first.ids and second.sha256 != first.sha256
    assert rows_sha256(list(reversed(second.rows))) == second.sha256  # order of the rows handed in: no matter
    assert len(first.sha256) == 64


def test_incidents_with_their_post_mortem(engine):
    with freeze_time(T0):
        inc = incidents.create(engine, ANALYST, title=EVIL, severity="low",
                               links=[{"kind": "criterion", "ref": "CC6.6"}])
    with freeze_time(T0 + dt.timedelta(hours=1)):
        incidents.update(engine, ANALYST, inc["id"], 1, root_cause="a rule too wide", category="misconfiguration")
    pop = population(engine, load_catalog(), "incidents", Q4)
    assert pop.ids == [f"incident-{inc['id']:09d}"]
    row = pop.rows[0]
    assert (row["title"], row["root_cause"], row["category"], row["links"]) == \
        (EVIL, "a rule too wide", "misconfiguration", '["criterion:CC6.6"]')
    assert set(row) == set(COLUMNS["incidents"])


def test_changes_with_their_ticket_and_unlinked_ones_flagged(engine):
    linked = write_event(engine, session_name="deploy-CHG-1187")
    unlinked = write_event(engine, name="RevokeSecurityGroupIngress", at=T0 + dt.timedelta(hours=2))
    write_event(engine, at=dt.datetime(2026, 9, 30, 23, 59, tzinfo=dt.timezone.utc))  # before the period
    pop = population(engine, load_catalog(), "changes", Q4)
    rows = {r["event_id"]: r for r in pop.rows}
    assert set(rows) == {linked["event_id"], unlinked["event_id"]}
    assert (rows[linked["event_id"]]["ticket"], rows[linked["event_id"]]["ticket_from"],
            rows[linked["event_id"]]["linked"]) == ("CHG-1187", "session name", "true")
    assert (rows[unlinked["event_id"]]["ticket"], rows[unlinked["event_id"]]["linked"]) == ("", "false")
    assert rows[unlinked["event_id"]]["event_name"] == "RevokeSecurityGroupIngress"
    assert "security-group/sg-0123456789abcdef0" in rows[linked["event_id"]]["resources"]
    other = population(engine, load_catalog(), "changes", Q4, ticket=r"OPS-[0-9]+")
    assert {r["linked"] for r in other.rows} == {"false"}  # the pattern decides what links


def test_access_changes_are_the_iam_write_events(engine):
    write_event(engine)
    iam = write_event(engine, name="AttachUserPolicy", source="iam.amazonaws.com",
                      request={"userName": "dev-console", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
    pop = population(engine, load_catalog(), "access", Q4)
    assert pop.ids == [f"access-change-{iam['event_id']}"]
    row = pop.rows[0]
    assert row["record"] == "access change" and row["event_name"] == "AttachUserPolicy"
    assert row["principal"].endswith(":user/dev-console") and row["changed_by"].endswith(":user/ops")


def test_manual_evidence_items_of_the_catalog(engine):
    catalog = load_catalog()
    pop = population(engine, catalog, "manual", Q4)
    required = [(c.id, m.name) for c in catalog.controls for m in c.manual_evidence]
    assert pop.count == len(required) and len(set(pop.ids)) == pop.count
    assert {(r["criterion"], r["item"]) for r in pop.rows} == set(required)
    one = population(engine, catalog, "manual", Q4, criterion="CC1.1")
    assert {r["criterion"] for r in one.rows} == {"CC1.1"}


def test_default_kind_per_criterion():
    catalog = load_catalog()
    assert [default_kind(catalog, c) for c in ("CC7.3", "CC7.4", "CC8.1", "CC6.2", "CC6.6")] == \
        ["alerts", "incidents", "changes", "access", "resources"]
    no_checks = next(c.id for c in catalog.controls if not catalog.checks_for(c.id) and c.id not in
                     ("CC7.3", "CC7.4", "CC7.5", "CC8.1", "CC6.2", "CC6.3"))
    assert default_kind(catalog, no_checks) == "manual"


def test_bad_kind_and_resources_without_a_criterion_are_one_line_errors(engine):
    from auditbook.errors import UserError
    with pytest.raises(UserError, match="--population: 'users' is not one of resources, alerts"):
        population(engine, load_catalog(), "users", Q4)
    with pytest.raises(UserError, match="resources are a criterion's"):
        population(engine, load_catalog(), "resources", Q4)


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "'quoted", "plain", "", "a=b"])
def test_cells_are_neutralised_and_restored(text):
    cell = neutralised(text)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) and restored(cell) == text
    assert (cell == text) == (not text.startswith(("=", "+", "-", "@", "\t", "\r", "'")))


def test_hostile_rows_are_inert_in_the_csv_and_read_back_to_the_same_hash(engine, tmp_path):
    a = raise_alert(engine, rule="Evil", account=ACCOUNT, note="@cmd|' /C calc'!A0")
    triage.triage(engine, ANALYST, a["id"], a["version"], decision="benign-true-positive",
                  reason="-2+3 " + EVIL, assignee="=cmd|' /C calc'!A0")
    pop = population(engine, load_catalog(), "alerts", Q4)
    path = tmp_path / "population-alerts.csv"
    write_csv(pop, path)
    import csv
    with open(path, newline="", encoding="utf-8") as f:
        cells = [c for row in csv.reader(f) for c in row]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    assert "'=cmd|' /C calc'!A0" in cells and "'-2+3 " + EVIL in cells
    back = read_csv(path)
    assert back == pop.rows and rows_sha256(back) == pop.sha256
    assert json.loads(next(r["labels"] for r in back))["note"] == "@cmd|' /C calc'!A0"


def test_a_manual_document_row_carries_its_submitter_review_and_flags(engine, tmp_path):
    """The auditor's export must carry the red flags the page shows: who submitted, who approved and
    why, and late/backdated."""
    from auditbook.scan import add_evidence, decide_evidence
    catalog = load_catalog()
    doc = tmp_path / "charter.txt"
    doc.write_text("board charter")
    with freeze_time("2027-02-15"):
        row = add_evidence(engine, catalog, "CC1.2", doc, effective=dt.date(2026, 10, 5), owner="Board",
                           item="Board charter", uploaded_by="dana")
        decide_evidence(engine, Actor("sam", "approver"), row.id, row.version, "approve", "signed copy seen")
    [found] = [r for r in population(engine, catalog, "manual", Q4).rows if r["record"] == "document"]
    assert (found["submitted_by"], found["review"], found["decided_by"], found["reason"]) == \
        ("dana", "approved", "sam", "signed copy seen")
    assert "late upload" in found["flags"] and "backdated" in found["flags"]


def test_a_closed_periods_alert_population_does_not_change_when_the_alert_fires_again_or_resolves_after_it(engine):
    """An auditor's re-draw after the period differed: the alert's count and last_seen moved on after
    the period's end. The population shows the alert as it was at the period's end."""
    a = raise_alert(engine)
    first = population(engine, load_catalog(), "alerts", Q4)
    after = dt.datetime(2027, 1, 10, tzinfo=dt.timezone.utc)
    raise_alert(engine, at=after)  # the same alert fires again after the period
    with freeze_time(after + dt.timedelta(hours=1)):
        seen = alerts.get(engine, a["id"])
        assert seen["count"] == 2 and seen["last_seen"] == after
        triage.triage(engine, ANALYST, a["id"], seen["version"], resolve=True)
    again = population(engine, load_catalog(), "alerts", Q4)
    assert again.sha256 == first.sha256 and again.rows == first.rows
    assert again.rows[0]["state_at_period_end"] == "firing" and again.rows[0]["resolved_at"] == ""


@pytest.mark.parametrize("cell", [" =1+1", "\u3000=HYPERLINK(\"x\")", "\ufeff=1", "\u200b@SUM(A1)", "\uff1d1+1",
                                  "\n-2"])
def test_a_formula_behind_spaces_zero_width_or_full_width_characters_is_neutralised_too(cell):
    """An attack pass: a leading space, BOM, zero-width space or full-width ＝ slipped past the check."""
    from auditbook.history.populations import neutralised, restored
    assert neutralised(cell) == "'" + cell and restored(neutralised(cell)) == cell
    assert neutralised("plain text") == "plain text" and neutralised("a=b") == "a=b"
