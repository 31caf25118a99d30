"""Incident post-mortems in the core (CC7.4, CC7.5): category, impact, notifications, root cause and
lessons learned (required to close a high or critical incident), action items and attachments —
authorised, versioned, all-or-nothing, in the audit trail; the demo's incident told by its alert."""
import datetime as dt
import hashlib
import os

import pytest
from freezegun import freeze_time

from auditbook.auth import Actor, PermissionDenied
from auditbook.errors import UserError
from auditbook.monitor import incident_attachments, incidents, postmortem
from auditbook.store import audit_log
from auditbook.store.session import reading

ANALYST, VIEWER, AUDITOR, WALL = (Actor("ana", "analyst"), Actor("vic", "viewer"), Actor("aud", "auditor"),
                                  Actor("wall screen", "wall"))
ROOT_CAUSE = "A deploy script removed the bucket's public access block."
LESSONS = "Guard the block with an SCP; alert on PutBucketPolicy."


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    return open_engine(f"sqlite:///{tmp_path}/s.db")


def trail(engine, incident_id) -> list[dict]:
    with reading(engine) as session:
        return audit_log.trail(session, "incident", incident_id)


def resolved(engine, severity: str) -> dict:
    inc = incidents.create(engine, ANALYST, title=f"{severity} incident", severity=severity)
    return incidents.update(engine, ANALYST, inc["id"], inc["version"], status="resolved")


# -- closing needs the post-mortem ------------------------------------------------------------------

@pytest.mark.parametrize("severity", ["critical", "high"])
def test_closing_a_high_or_critical_incident_needs_root_cause_and_lessons(engine, severity):
    inc = resolved(engine, severity)
    with pytest.raises(UserError, match=f"a {severity} incident is closed only with its root cause and lessons "
                                        "learned; missing: root cause and lessons learned"):
        incidents.update(engine, ANALYST, inc["id"], inc["version"], status="closed")
    inc = incidents.update(engine, ANALYST, inc["id"], inc["version"], root_cause=ROOT_CAUSE)
    with pytest.raises(UserError, match="missing: lessons learned"):
        incidents.update(engine, ANALYST, inc["id"], inc["version"], status="closed")
    with pytest.raises(UserError, match="missing: lessons learned"):  # whitespace is not a lesson
        incidents.update(engine, ANALYST, inc["id"], inc["version"], status="closed", lessons_learned="  \n ")
    after = incidents.get(engine, inc["id"])
    assert (after["status"], after["version"], after["closed_at"]) == ("resolved", inc["version"], None)  # nothing saved
    closed = incidents.update(engine, ANALYST, inc["id"], inc["version"], status="closed", lessons_learned=LESSONS)
    assert closed["status"] == "closed" and closed["lessons_learned"] == LESSONS


def test_a_medium_incident_closes_without_a_post_mortem(engine):
    inc = resolved(engine, "medium")
    assert incidents.update(engine, ANALYST, inc["id"], inc["version"], status="closed")["status"] == "closed"


def test_the_rule_cannot_be_dodged_by_lowering_severity_or_emptying_the_post_mortem(engine):
    inc = resolved(engine, "high")
    with pytest.raises(UserError, match="a high incident is closed only with"):
        incidents.update(engine, ANALYST, inc["id"], inc["version"], status="closed", severity="low")
    closed = incidents.update(engine, ANALYST, inc["id"], inc["version"], status="closed", root_cause=ROOT_CAUSE,
                              lessons_learned=LESSONS)
    with pytest.raises(UserError, match="root_cause: a high incident is closed only with .* missing: root cause"):
        incidents.update(engine, ANALYST, inc["id"], closed["version"], root_cause="")
    assert incidents.get(engine, inc["id"])["root_cause"] == ROOT_CAUSE


# -- the fields ---------------------------------------------------------------------------------------

def test_postmortem_fields_are_checked_versioned_and_in_the_trail(engine):
    inc = incidents.create(engine, ANALYST, title="Keys leaked", severity="high")
    with freeze_time("2026-11-05 12:00:00"):
        after = incidents.update(engine, ANALYST, inc["id"], inc["version"], category="Credential Compromise",
                                 impact_systems="billing API", impact_data="customer e-mail addresses",
                                 customers_affected="120", customer_notice_required=True,
                                 customers_notified_on="2026-11-04", regulator_notice_required=False)
    assert (after["category"], after["customers_affected"], after["customers_notified_on"], after["version"]) == (
        "credential compromise", 120, dt.date(2026, 11, 4), inc["version"] + 1)
    assert after["regulator_notice_required"] is False and after["regulator_notified_on"] is None
    entry = trail(engine, inc["id"])[-1]
    assert entry["action"] == "update" and entry["actor"] == "ana"
    assert entry["after"]["customers_notified_on"] == "2026-11-04" and entry["before"]["category"] is None
    assert postmortem.notices_outstanding(after) == []
    assert postmortem.notices_outstanding({**after, "customers_notified_on": None}) == ["customers"]
    with pytest.raises(incidents.Conflict):  # a stale version saves nothing
        incidents.update(engine, ANALYST, inc["id"], inc["version"], root_cause="stale")
    assert incidents.get(engine, inc["id"])["root_cause"] is None


@pytest.mark.parametrize("field,value,message", [
    ("category", "alien invasion", "category: 'alien invasion' is not one of unauthorised access"),
    ("customers_affected", "-3", "customers_affected: '-3' is not a count"),
    ("customers_affected", "many", "customers_affected: 'many' is not a count"),
    ("customers_affected", str(2**40), "customers_affected: .* is not a count"),
    ("customers_affected", "\u00b2", "customers_affected: '\u00b2' is not a count"),  # isdigit(), not int()
    ("customers_affected", "\u0663", "customers_affected: '\u0663' is not a count"),  # an Arabic-Indic 3
    ("customers_notified_on", "2026-02-30", "customers_notified_on: '2026-02-30' is not a date"),
    ("regulator_notified_on", "2999-01-01", "regulator_notified_on: 2999-01-01 is in the future"),
    ("customer_notice_required", "maybe", "customer_notice_required: 'maybe' is not yes, no or undecided"),
    ("root_cause", "x" * (postmortem.MAX_TEXT + 1), f"root_cause: {postmortem.MAX_TEXT + 1} characters"),
    ("impact_data", 42, "impact_data: 42 is not text"),
])
def test_bad_postmortem_input_names_the_field_and_saves_nothing(engine, field, value, message):
    inc = incidents.create(engine, ANALYST, title="t", severity="low")
    with pytest.raises(UserError, match=message):
        incidents.update(engine, ANALYST, inc["id"], inc["version"], **{field: value})
    assert incidents.get(engine, inc["id"])["version"] == inc["version"]
    assert [e["action"] for e in trail(engine, inc["id"])] == ["create"]


def test_text_is_stored_as_typed(engine):
    hostile = "<script>alert(1)</script> **bold** `code` \u202eevil"
    inc = incidents.create(engine, ANALYST, title="t", severity="low")
    after = incidents.update(engine, ANALYST, inc["id"], inc["version"], root_cause=hostile, lessons_learned=hostile)
    assert after["root_cause"] == hostile and after["lessons_learned"] == hostile


# -- action items -------------------------------------------------------------------------------------

def test_action_items_added_done_reopened_versioned_and_in_the_trail(engine):
    inc = incidents.create(engine, ANALYST, title="t", severity="high")
    item = postmortem.add_action(engine, ANALYST, inc["id"], owner="kim", due="2026-12-01", text="Add an SCP")
    assert (item["owner"], item["due_on"], item["done_at"], item["version"]) == ("kim", dt.date(2026, 12, 1), None, 1)
    done = postmortem.set_action_done(engine, Actor("bob", "analyst"), item["id"], 1)
    assert done["done_by"] == "bob" and done["done_at"] is not None and done["version"] == 2
    with pytest.raises(postmortem.ActionConflict) as info:  # ana still holds version 1
        postmortem.set_action_done(engine, ANALYST, item["id"], 1, done=False)
    assert info.value.current["done_by"] == "bob"
    reopened = postmortem.set_action_done(engine, ANALYST, item["id"], 2, done=False)
    assert reopened["done_at"] is None and reopened["version"] == 3
    assert [e["action"] for e in trail(engine, inc["id"])] == ["create", "add action", "action done", "action reopened"]
    assert postmortem.overdue(postmortem.actions(engine, inc["id"]), today=dt.date(2026, 12, 2)) == [reopened]
    assert incidents.get(engine, inc["id"])["version"] == inc["version"]  # appended, like notes


@pytest.mark.parametrize("owner,due,text,message", [
    ("", "2026-12-01", "x", "action: give its owner"),
    ("kim", "soon", "x", "action due date: 'soon' is not a date"),
    ("kim", "2026-12-01", "  ", "action: give its owner"),
    ("kim", "2026-12-01", "x" * 1001, "action: 1001 characters, more than the 1000 allowed"),
    ("k" * 201, "2026-12-01", "x", "action owner: 201 characters"),
])
def test_bad_action_items_are_refused(engine, owner, due, text, message):
    inc = incidents.create(engine, ANALYST, title="t", severity="low")
    with pytest.raises(UserError, match=message):
        postmortem.add_action(engine, ANALYST, inc["id"], owner=owner, due=due, text=text)
    assert postmortem.actions(engine, inc["id"]) == []


def test_action_command_line_form():
    assert postmortem.parse_action("kim|2026-12-01|Add an SCP | and test it") == ("kim", "2026-12-01",
                                                                                  "Add an SCP | and test it")
    with pytest.raises(UserError, match="--action: 'kim 2026-12-01' is not OWNER|YYYY-MM-DD|what to do"):
        postmortem.parse_action("kim 2026-12-01")


# -- attachments --------------------------------------------------------------------------------------

@pytest.mark.parametrize("given,safe", [
    ("report.pdf", "report.pdf"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\kim\\timeline.xlsx", "timeline.xlsx"),
    (".bashrc", "bashrc"),
    ("evil\u202efdp.exe", "evil_fdp.exe"),
    ("a\nb\r\x00c.txt", "a_b__c.txt"),
    ('what?<>:"|*.log', "what_______.log"),
    ("", "attachment"),
    ("...", "attachment"),
    ("x" * 300 + ".tar.gz", "x" * 252 + ".gz"),
])
def test_attachment_names_are_made_safe(given, safe):
    assert incident_attachments.safe_filename(given) == safe


def test_attachments_are_content_addressed_listed_and_verified(engine):
    inc = incidents.create(engine, ANALYST, title="t", severity="high")
    other = incidents.create(engine, ANALYST, title="u", severity="low")
    body = b"<html><script>alert(1)</script></html>"
    first = incident_attachments.attach(engine, ANALYST, inc["id"], "../timeline.html", body)
    again = incident_attachments.attach(engine, ANALYST, other["id"], "copy.html", body)
    sha = hashlib.sha256(body).hexdigest()
    assert (first["filename"], first["sha256"], first["size"]) == ("timeline.html", sha, len(body))
    assert again["sha256"] == sha
    from sqlalchemy import text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM documents WHERE sha256 = :s"), {"s": sha}).scalar() == 1
    record, data = incident_attachments.attachment_content(engine, first["id"])
    assert data == body and record["filename"] == "timeline.html"
    entry = trail(engine, inc["id"])[-1]
    assert entry["action"] == "attach" and entry["after"]["sha256"] == sha
    assert entry["after"]["name given"] == "../timeline.html"
    assert [a["id"] for a in incidents.detail(engine, inc["id"])["attachments"]] == [first["id"]]


def test_an_altered_attachment_is_detected_on_reading(engine):
    import zlib

    from sqlalchemy import text
    inc = incidents.create(engine, ANALYST, title="t", severity="low")
    made = incident_attachments.attach(engine, ANALYST, inc["id"], "log.txt", b"original")
    with engine.begin() as conn:
        conn.execute(text("UPDATE documents SET content = :c WHERE sha256 = :s"),
                     {"c": zlib.compress(b"altered"), "s": made["sha256"]})
    with pytest.raises(UserError, match=f"attachment {made['id']}: the stored bytes do not match their SHA-256"):
        incident_attachments.attachment_content(engine, made["id"])


def test_bad_attachments_are_refused_before_anything_is_written(engine, tmp_path, monkeypatch):
    inc = incidents.create(engine, ANALYST, title="t", severity="low")
    with pytest.raises(UserError, match="attachment empty.txt: is empty"):
        incident_attachments.attach(engine, ANALYST, inc["id"], "empty.txt", b"")
    monkeypatch.setattr(incident_attachments, "MAX_BYTES", 10)
    with pytest.raises(UserError, match="attachment big.bin: 11 bytes, more than the 10 allowed"):
        incident_attachments.attach(engine, ANALYST, inc["id"], "big.bin", b"x" * 11)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="--attach: .*pipe: not a regular file"):
        incident_attachments.read_file(fifo)
    with pytest.raises(UserError, match="--attach: .*missing.txt: cannot read"):
        incident_attachments.read_file(tmp_path / "missing.txt")
    with pytest.raises(UserError, match="incident: no incident 999"):
        incident_attachments.attach(engine, ANALYST, 999, "a.txt", b"a")
    assert incident_attachments.attachments(engine, inc["id"]) == []
    assert [e["action"] for e in trail(engine, inc["id"])] == ["create"]


def test_a_symbolic_link_is_never_followed_even_if_swapped_in_after_the_check(tmp_path, monkeypatch):
    secret = tmp_path / "shadow"
    secret.write_bytes(b"root:$6$hash:19000:0:99999:7:::\n")
    link = tmp_path / "notes.txt"
    link.symlink_to(secret)
    with pytest.raises(UserError, match="--attach: .*notes.txt: is a symbolic link"):
        incident_attachments.read_file(link)
    real_lstat = os.lstat
    monkeypatch.setattr(os, "lstat", lambda p, *a, **k: real_lstat(secret))  # the link appears after lstat
    with pytest.raises(UserError, match="--attach: .*notes.txt: is a symbolic link"):
        incident_attachments.read_file(link)
    monkeypatch.undo()
    assert incident_attachments.read_file(secret).content.startswith(b"root:")  # a regular file still reads


# -- one change, all of it or nothing ------------------------------------------------------------------

def test_an_update_with_items_and_files_is_all_or_nothing(engine):
    inc = resolved(engine, "high")
    file = incident_attachments.checked_file("evidence.txt", b"cloudtrail extract")
    item = {"owner": "kim", "due": "2026-12-01", "text": "Rotate keys"}
    incidents.update(engine, Actor("bob", "analyst"), inc["id"], inc["version"], assignee="bob")
    with pytest.raises(incidents.Conflict):  # a stale version: neither the fields nor the items are saved
        incidents.update(engine, ANALYST, inc["id"], inc["version"], root_cause=ROOT_CAUSE, actions=[item],
                         files=[file])
    with pytest.raises(UserError, match="action due date"):
        incidents.update(engine, ANALYST, inc["id"], inc["version"] + 1, root_cause=ROOT_CAUSE,
                         actions=[item, {**item, "due": "never"}], files=[file])
    with pytest.raises(UserError, match="a high incident is closed only with"):
        incidents.update(engine, ANALYST, inc["id"], inc["version"] + 1, status="closed", actions=[item], files=[file])
    now = incidents.detail(engine, inc["id"])
    assert (now["root_cause"], now["actions"], now["attachments"], now["version"]) == (None, [], [], inc["version"] + 1)
    done = incidents.update(engine, ANALYST, inc["id"], now["version"], status="closed", root_cause=ROOT_CAUSE,
                            lessons_learned=LESSONS, actions=[item], files=[file])
    final = incidents.detail(engine, inc["id"])
    assert done["status"] == "closed" and len(final["actions"]) == 1 and len(final["attachments"]) == 1
    closing = incidents.update(engine, ANALYST, inc["id"], final["version"], done=[final["actions"][0]["id"]])
    assert incidents.detail(engine, inc["id"])["actions"][0]["done_at"] is not None and closing["version"] == final["version"]
    with pytest.raises(UserError, match=f"incident {inc['id']} has no action item 999"):
        incidents.update(engine, ANALYST, inc["id"], final["version"], done=[999])


@pytest.mark.parametrize("actor", [VIEWER, AUDITOR, WALL])
def test_read_only_roles_cannot_edit_a_post_mortem(engine, actor):
    inc = incidents.create(engine, ANALYST, title="t", severity="high")
    item = postmortem.add_action(engine, ANALYST, inc["id"], owner="kim", due="2026-12-01", text="x")
    for call in (lambda: incidents.update(engine, actor, inc["id"], inc["version"], root_cause="nope"),
                 lambda: postmortem.add_action(engine, actor, inc["id"], owner="a", due="2026-12-01", text="nope"),
                 lambda: postmortem.set_action_done(engine, actor, item["id"], 1),
                 lambda: incident_attachments.attach(engine, actor, inc["id"], "a.txt", b"nope")):
        with pytest.raises(PermissionDenied):
            call()
    found = incidents.detail(engine, inc["id"])
    assert found["root_cause"] is None and len(found["actions"]) == 1 and found["attachments"] == []
    assert found["actions"][0]["done_at"] is None


# -- an incident from an alert, and the demo's ---------------------------------------------------------

def _fire(engine, rule: str, summary: str, severity: str = "critical", control: str = "CC6.1,CC7.2") -> int:
    from auditbook.monitor.alerts import fire
    from auditbook.store.session import writing
    with writing(engine) as session:
        return fire(session, rule=rule, labels={"account": "111122223333"}, severity=severity, soc2_control=control,
                    summary=summary, at=dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.timezone.utc))["id"]


def test_an_incident_from_an_alert_says_what_the_alert_says(engine):
    alert_id = _fire(engine, "RootAccountUsage", "root user signed in from 203.0.113.9")
    inc = incidents.from_alert(engine, ANALYST, alert_id)
    assert inc["title"] == "RootAccountUsage: root user signed in from 203.0.113.9"
    assert inc["description"] == (f"opened from alert {alert_id} (RootAccountUsage, critical, CC6.1,CC7.2; first seen "
                                  "2026-11-01 09:00 UTC, account=111122223333): root user signed in from 203.0.113.9")
    assert {(link["kind"], link["ref"]) for link in inc["links"]} == {("alert", str(alert_id)), ("criterion", "CC6.1"),
                                                                      ("criterion", "CC7.2")}


def test_the_demo_incident_is_told_by_the_alert_it_is_made_from(engine):
    """It said "from a simulated regression alert" while linked to a RootAccountUsage alert."""
    from rich.console import Console

    from auditbook.demo.run import demo_incident
    _fire(engine, "CheckRegressed", "s3-bucket-public-access-block regressed on audit-trail", severity="high",
          control="CC6.6")
    root = _fire(engine, "RootAccountUsage", "root user signed in from 203.0.113.9")
    console = Console(record=True, width=200)
    made = demo_incident(str(engine.url), console)
    assert made["title"] == "SIMULATED: RootAccountUsage: root user signed in from 203.0.113.9"
    assert made["description"].startswith(f"SIMULATED: opened from alert {root} (RootAccountUsage, critical")
    assert "regression" not in made["description"] and made["severity"] == "critical"
    assert ("alert", str(root)) in {(link["kind"], link["ref"]) for link in made["links"]}
    assert f"SIMULATED incident {made['id']} opened from alert {root} (RootAccountUsage)" in console.export_text()


# -- the packet's view of incidents --------------------------------------------------------------------

def test_incidents_in_a_period_carry_their_post_mortem(engine):
    from auditbook.history.incidents import incidents_in_period
    from auditbook.history.period import Period
    with freeze_time("2026-07-03 09:00:00"):
        inc = resolved(engine, "high")
        incidents.update(engine, ANALYST, inc["id"], inc["version"], status="closed", root_cause=ROOT_CAUSE,
                         lessons_learned=LESSONS, category="misconfiguration",
                         actions=[{"owner": "kim", "due": "2026-07-10", "text": "Add an SCP"}],
                         files=[incident_attachments.checked_file("extract.json", b"{}")])
    found = incidents_in_period(engine, Period(dt.date(2026, 7, 1), dt.date(2026, 7, 31), "July"))
    assert len(found) == 1
    one = found[0]
    assert (one["root_cause"], one["lessons_learned"], one["category"]) == (ROOT_CAUSE, LESSONS, "misconfiguration")
    assert [a["text"] for a in one["actions"]] == ["Add an SCP"]
    assert [(f["filename"], f["sha256"]) for f in one["attachments"]] == [("extract.json", hashlib.sha256(b"{}").hexdigest())]


# -- a store from before the post-mortem ------------------------------------------------------------------

def test_incidents_stored_before_the_migration_gain_empty_post_mortems(tmp_path):
    from alembic import command

    from auditbook.store.db import alembic_config, open_engine
    url = f"sqlite:///{tmp_path}/old.db"
    engine = open_engine(url, migrate=False)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0015")
    from sqlalchemy import text
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO incidents (title, description, severity, status, created_by, created_at, "
                          "updated_at, links, version) VALUES ('old', '', 'high', 'resolved', 'ana', "
                          "'2026-01-01 00:00:00', '2026-01-01 00:00:00', '[]', 3)"))
    engine = open_engine(url)  # migrates to the head
    old = incidents.detail(engine, 1)
    assert old["title"] == "old" and old["root_cause"] is None and old["actions"] == [] and old["attachments"] == []
    with pytest.raises(UserError, match="missing: root cause and lessons learned"):
        incidents.update(engine, ANALYST, 1, 3, status="closed")
