"""Alert triage in the core (issue 13 §1, CC7.3): decisions with reasons, a true positive becoming a
linked incident in one action, bulk actions saved whole or not at all, no lost update, suppressions
(visible, expiring, never notified or escalated, nothing deleted), triage targets and their
escalation, and every change in the audit trail."""
import datetime as dt

import pytest
from freezegun import freeze_time

from auditbook.auth import Actor, PermissionDenied
from auditbook.errors import UserError
from auditbook.monitor import alerts, incidents, settings, suppressions, triage
from auditbook.store import audit_log
from auditbook.store.session import reading, writing

ANALYST, ADMIN, VIEWER, AUDITOR, WALL = (Actor("ana", "analyst"), Actor("adm", "admin"), Actor("vic", "viewer"),
                                         Actor("aud", "auditor"), Actor("wall screen", "wall"))
T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    return open_engine(f"sqlite:///{tmp_path}/s.db")


def raise_alert(engine, rule="RootAccountUsage", severity="high", at=T0, **labels) -> dict:
    labels = labels or {"account": "111111111111", "region": "eu-west-1"}
    with writing(engine) as session:
        made = alerts.fire(session, rule=rule, labels=labels, severity=severity, soc2_control="CC7.2",
                           summary=f"{rule} in {labels.get('account', '?')}", at=at)
    return alerts.get(engine, made["id"])


def trail(engine, object_type: str, object_id) -> list[dict]:
    with reading(engine) as session:
        return audit_log.trail(session, object_type, object_id)


# -- one alert -------------------------------------------------------------------------------------

def test_a_decision_needs_a_reason_and_is_versioned_and_in_the_trail(engine):
    a = raise_alert(engine)
    with pytest.raises(UserError, match="reason: required"):
        triage.triage(engine, ANALYST, a["id"], a["version"], decision="false-positive", reason="  ")
    with pytest.raises(UserError, match="--decision: 'maybe' is not one of"):
        triage.triage(engine, ANALYST, a["id"], a["version"], decision="maybe", reason="x")
    with pytest.raises(UserError, match="reason: 2001 characters; at most 2000"):
        triage.triage(engine, ANALYST, a["id"], a["version"], decision="false-positive", reason="x" * 2001)
    with pytest.raises(UserError, match="nothing to do"):
        triage.triage(engine, ANALYST, a["id"], a["version"])
    done = triage.triage(engine, ANALYST, a["id"], a["version"], decision="false-positive",
                         reason="  Break-glass drill, ticket OPS-12  ", assignee="bob", note="checked with bob")
    assert (done["triage_decision"], done["triage_reason"], done["triaged_by"], done["assignee"]) == \
        ("false-positive", "Break-glass drill, ticket OPS-12", "ana", "bob")
    assert done["version"] == a["version"] + 1 and done["triaged_at"] is not None and done["incident_id"] is None
    entries = [(e["action"], e["actor"], e["after"], e["note"]) for e in trail(engine, "alert", a["id"])]
    assert entries == [("assign", "ana", {"assignee": "bob"}, None),
                       ("triage", "ana", {"triage_decision": "false-positive",
                                          "triage_reason": "Break-glass drill, ticket OPS-12"},
                        "Break-glass drill, ticket OPS-12"),
                       ("note", "ana", None, "checked with bob")]


def test_hostile_text_is_stored_as_typed(engine):
    a = raise_alert(engine)
    evil = "<img src=x onerror=alert(1)> **bold** `code` \u202e"
    done = triage.triage(engine, ANALYST, a["id"], a["version"], decision="benign-true-positive", reason=evil,
                         assignee=evil[:40])
    assert done["triage_reason"] == evil.strip() and done["assignee"] == evil[:40].strip()


def test_true_positive_opens_one_linked_incident_in_the_same_action(engine):
    a = raise_alert(engine, severity="critical")
    done = triage.triage(engine, ANALYST, a["id"], a["version"], decision="true-positive",
                         reason="Root used from an unknown IP", assignee="ana")
    inc = incidents.get(engine, done["incident_id"])
    assert inc["severity"] == "critical" and inc["assignee"] == "ana" and inc["status"] == "open"
    assert ("alert", str(a["id"])) in {(link["kind"], link["ref"]) for link in inc["links"]}
    assert "Triaged as a true positive by ana: Root used from an unknown IP" in inc["description"]
    assert [e["action"] for e in trail(engine, "incident", inc["id"])] == ["create"]
    triaged = [e for e in trail(engine, "alert", a["id"]) if e["action"] == "triage"]
    assert triaged[0]["after"]["incident_id"] == inc["id"]
    again = triage.triage(engine, ANALYST, a["id"], done["version"], decision="true-positive", reason="still")
    assert again["incident_id"] == inc["id"] and len(incidents.list_incidents(engine)) == 1  # not a second one


def test_roles_that_may_not_triage_change_nothing(engine):
    a = raise_alert(engine)
    for actor in (VIEWER, AUDITOR, WALL):
        for change in ({"decision": "false-positive", "reason": "x"}, {"assignee": "me"}, {"note": "hi"},
                       {"resolve": True}):
            with pytest.raises(PermissionDenied):
                triage.triage(engine, actor, a["id"], a["version"], **change)
        with pytest.raises(PermissionDenied):
            suppressions.suppress(engine, actor, rule=a["rule"], labels={"account": "111111111111"},
                                  until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1), reason="x")
    assert alerts.get(engine, a["id"])["version"] == a["version"] and trail(engine, "alert", a["id"]) == []
    assert incidents.list_incidents(engine) == [] and suppressions.list_suppressions(engine) == []


def test_a_stale_version_is_refused_with_the_current_alert(engine):
    a = raise_alert(engine)
    triage.triage(engine, ANALYST, a["id"], a["version"], assignee="bob")
    with pytest.raises(alerts.StaleAlert) as caught:
        triage.triage(engine, ADMIN, a["id"], a["version"], decision="false-positive", reason="late writer")
    assert caught.value.current["assignee"] == "bob"
    now = alerts.get(engine, a["id"])
    assert now["triage_decision"] is None and [e["action"] for e in trail(engine, "alert", a["id"])] == ["assign"]


def test_one_more_occurrence_does_not_make_a_triage_stale(engine):
    a = raise_alert(engine)
    again = raise_alert(engine, at=T0 + dt.timedelta(minutes=5))
    assert again["count"] == 2 and again["version"] == a["version"]
    assert triage.triage(engine, ANALYST, a["id"], a["version"], decision="false-positive", reason="noise")


def test_acknowledge_and_resolve_through_triage(engine):
    a = raise_alert(engine)
    with pytest.raises(PermissionDenied):
        triage.triage(engine, VIEWER, a["id"], a["version"], acknowledge=True)
    done = triage.triage(engine, ANALYST, a["id"], a["version"], acknowledge=True, resolve=True)
    assert done["state"] == "resolved" and done["acknowledged_by"] == "ana" and done["resolved_at"] is not None
    assert [(e["action"], e["after"]) for e in trail(engine, "alert", a["id"])] == [
        ("acknowledge", {"state": "acknowledged"}), ("resolve", {"state": "resolved"})]


# -- a selection -----------------------------------------------------------------------------------

def test_bulk_triage_saves_all_or_none(engine):
    made = [raise_alert(engine, account=str(n) * 12, region="eu-west-1") for n in range(1, 4)]
    versions = {a["id"]: a["version"] for a in made}
    triage.triage(engine, ANALYST, made[2]["id"], made[2]["version"], note="someone else was here")
    moved = alerts.get(engine, made[2]["id"])
    triage.triage(engine, ANALYST, made[2]["id"], moved["version"], assignee="carol")  # a change: version moves
    with pytest.raises(alerts.StaleAlert):
        triage.apply(engine, ANALYST, versions, triage.Change(decision="false-positive", reason="scanner"))
    assert [alerts.get(engine, a["id"])["triage_decision"] for a in made] == [None, None, None]  # none saved
    versions[made[2]["id"]] = alerts.get(engine, made[2]["id"])["version"]
    done = triage.apply(engine, ANALYST, versions, triage.Change(decision="true-positive", reason="one campaign"))
    assert {a["triage_decision"] for a in done} == {"true-positive"}
    assert len({a["incident_id"] for a in done}) == 1 and len(incidents.list_incidents(engine)) == 1  # one incident
    inc = incidents.get(engine, done[0]["incident_id"])
    assert {link["ref"] for link in inc["links"] if link["kind"] == "alert"} == {str(a["id"]) for a in made}
    assert "(+2 more alerts)" in inc["title"]


def test_bulk_refuses_an_empty_or_too_large_selection_and_a_missing_alert(engine):
    with pytest.raises(UserError, match="none selected"):
        triage.apply(engine, ANALYST, {}, triage.Change(resolve=True))
    with pytest.raises(UserError, match="at most 500"):
        triage.apply(engine, ANALYST, {i: 1 for i in range(1, 502)}, triage.Change(resolve=True))
    a = raise_alert(engine)
    with pytest.raises(UserError, match="no alert 999"):
        triage.apply(engine, ANALYST, {a["id"]: a["version"], 999: 1}, triage.Change(resolve=True))
    assert alerts.get(engine, a["id"])["state"] == "firing"


# -- suppressions ----------------------------------------------------------------------------------

def test_suppression_covers_open_and_new_alerts_keeps_them_and_expires(engine):
    at = dt.datetime.now(dt.timezone.utc)
    hit = raise_alert(engine, account="111111111111", region="eu-west-1")
    other = raise_alert(engine, account="222222222222", region="eu-west-1")
    made = suppressions.suppress(engine, ANALYST, rule="RootAccountUsage", labels={"account": "111111111111"},
                                 until=at + dt.timedelta(days=2), reason="pen test week, ticket SEC-9")
    assert made["alerts"] == [hit["id"]]
    assert alerts.get(engine, hit["id"])["suppressed_until"] == made["until"]
    assert alerts.get(engine, other["id"])["suppressed_until"] is None
    with writing(engine) as session:  # resolve the covered alert, then it fires again: a new alert, born suppressed
        alerts.resolve(session, "RootAccountUsage", hit["labels"], at)
    again = raise_alert(engine, account="111111111111", region="eu-west-1", at=at)
    assert again["id"] != hit["id"] and again["suppressed_until"] == made["until"]
    assert [s["id"] for s in suppressions.list_suppressions(engine)] == [made["id"]]
    assert [e["action"] for e in trail(engine, "suppression", made["id"])] == ["suppress"]
    assert [(e["action"], e["note"]) for e in trail(engine, "alert", hit["id"])] == [
        ("suppress", "pen test week, ticket SEC-9")]
    later = at + dt.timedelta(days=3)
    assert suppressions.list_suppressions(engine, at=later) == []  # lapsed: no longer in force
    assert [s["active"] for s in suppressions.list_suppressions(engine, active_only=False, at=later)] == [False]
    with freeze_time(later):
        assert alerts.get(engine, again["id"])["suppressed_until"] is None  # kept, shown, no longer silenced


def test_suppression_input_is_checked(engine):
    at = dt.datetime.now(dt.timezone.utc)
    good = {"rule": "RootAccountUsage", "labels": {"account": "1"}, "until": at + dt.timedelta(days=1),
            "reason": "why"}
    for bad, message in [({"labels": {}}, "at least one"), ({"rule": "bad rule!"}, "--rule: 'bad rule!'"),
                         ({"labels": {"a b": "1"}}, "not a label name"), ({"labels": {"a": ""}}, "the value must"),
                         ({"until": at - dt.timedelta(minutes=1)}, "not in the future"),
                         ({"until": at + dt.timedelta(days=91)}, "more than 90 days"),
                         ({"reason": " "}, "reason: required")]:
        with pytest.raises(UserError, match=message):
            suppressions.suppress(engine, ANALYST, **{**good, **bad})
    assert suppressions.list_suppressions(engine, active_only=False) == []
    for value, message in [("tomorrow", "not a date"), ("2026-11-02T10:00", "no time zone")]:
        with pytest.raises(UserError, match=message):
            suppressions.parse_until(value)
    with pytest.raises(UserError, match="not name=value"):
        suppressions.parse_label("account")


def test_lifting_a_suppression_is_versioned_and_audited(engine):
    a = raise_alert(engine)
    made = suppressions.suppress(engine, ANALYST, rule=a["rule"], labels={"account": "111111111111"},
                                 until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1), reason="drill")
    with pytest.raises(PermissionDenied):
        suppressions.lift(engine, VIEWER, made["id"], made["version"], "no")
    lifted = suppressions.lift(engine, ADMIN, made["id"], made["version"], "drill over early")
    assert lifted["lifted_by"] == "adm" and alerts.get(engine, a["id"])["suppressed_until"] is None
    with pytest.raises(UserError, match="already lapsed"):
        suppressions.lift(engine, ADMIN, made["id"], lifted["version"], "again")
    assert [(e["action"], e["note"]) for e in trail(engine, "suppression", made["id"])] == [
        ("suppress", "drill"), ("lift", "drill over early")]


def test_a_suppressed_alert_is_not_notified(engine, monkeypatch):
    from auditbook.monitor import notify
    sent = []
    monkeypatch.setattr(notify, "_post", lambda url, body, **kw: sent.append(body) or (200, "ok", 1))
    channel = notify.Channel(name="soc", kind="slack", url="https://hooks.example.invalid/x")
    quiet = raise_alert(engine, account="111111111111", region="eu-west-1")
    raise_alert(engine, account="222222222222", region="eu-west-1")
    suppressions.suppress(engine, ANALYST, rule=quiet["rule"], labels={"account": "111111111111"},
                          until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1), reason="drill")
    assert notify.dispatch(engine, [channel]) == {"sent": 1, "failed": 0}
    assert len(sent) == 1 and "222222222222" in str(sent[0]) and "111111111111" not in str(sent[0])
    assert alerts.get(engine, quiet["id"])["state"] == "firing"  # kept, never deleted


# -- time to triage, targets, escalation -----------------------------------------------------------

def test_triage_targets_are_a_validated_audited_setting(engine):
    assert triage.targets(engine) == settings.DEFAULT_TRIAGE
    for bad, message in [({"critical": 0}, "triage.critical: 0"), ({"critical": True}, "triage.critical: True"),
                         ({"urgent": 5}, "triage.urgent: not a severity"), ({"high": "60"}, "triage.high: '60'")]:
        with pytest.raises(UserError, match=message):
            settings.put(engine, ADMIN, "triage", bad)
    with pytest.raises(PermissionDenied):
        settings.put(engine, ANALYST, "triage", {"critical": 5})
    settings.put(engine, ADMIN, "triage", {"critical": 5})
    assert triage.targets(engine)["critical"] == 5 and triage.targets(engine)["high"] == 60
    assert [e["action"] for e in trail(engine, "setting", "triage")] == ["update"]


def test_time_to_triage_and_breach_escalated_once(engine):
    with freeze_time(T0):
        late = raise_alert(engine, severity="critical", account="111111111111", region="eu-west-1")
        quick = raise_alert(engine, severity="critical", account="222222222222", region="eu-west-1")
        hidden = raise_alert(engine, severity="critical", account="333333333333", region="eu-west-1")
        suppressions.suppress(engine, ANALYST, rule=hidden["rule"], labels={"account": "333333333333"},
                              until=T0 + dt.timedelta(days=1), reason="known drill")
    with freeze_time(T0 + dt.timedelta(minutes=10)):
        quick = triage.triage(engine, ANALYST, quick["id"], quick["version"], decision="false-positive", reason="ok")
    limits = triage.targets(engine)
    assert triage.time_to_triage(quick, limits)["elapsed"] == dt.timedelta(minutes=10)
    assert not triage.time_to_triage(quick, limits)["breached"]
    at = T0 + dt.timedelta(minutes=20)  # the critical target is 15 minutes
    assert triage.time_to_triage(late, limits, at)["breached"]
    assert triage.escalate_triage_breaches(engine, at) == [
        {"alert": late["id"], "severity": "critical", "due": T0 + dt.timedelta(minutes=15)}]
    assert triage.escalate_triage_breaches(engine, at + dt.timedelta(hours=1)) == []  # once, and not its escalation
    notes = [e["note"] for e in trail(engine, "alert", late["id"]) if e["action"] == "escalate"]
    assert notes == ["triage target missed (15 min, due 2026-11-02 09:15 UTC): escalated"]
    breached = [a for a in alerts.list_alerts(engine) if a["rule"] == triage.TRIAGE_BREACHED]
    assert [(a["labels"], a["severity"], a["soc2_control"]) for a in breached] == [
        ({"alert": str(late["id"])}, "critical", "CC7.3")]
    stats = triage.triage_stats(engine, at=at)["rules"]["RootAccountUsage"]
    assert (stats["alerts"], stats["triaged"], stats["false_positives"], stats["median_minutes_to_triage"]) == \
        (3, 1, 1, 10.0)


def test_the_watch_cycle_escalates_triage_breaches(engine):
    from auditbook.monitor.watch import cycle
    with freeze_time(T0):
        late = raise_alert(engine, severity="high")
    result = cycle(engine, lambda bucket: None, [], now=T0 + dt.timedelta(hours=2))
    assert [e["alert"] for e in result.triage_escalated] == [late["id"]]


def test_alerts_stored_before_the_migration_start_their_triage_clock_when_first_seen(tmp_path):
    """A store the groundwork code stamped at 0013 (0009-0013 shipped empty) still gets the schema
    (0014-0018); its alerts count their time to triage but are not all escalated at once."""
    from alembic import command
    from sqlalchemy import text

    from auditbook.store.db import alembic_config, open_engine
    url = f"sqlite:///{tmp_path}/old.db"
    engine = open_engine(url, migrate=False)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0013")
    with engine.begin() as conn:
        for state in ("firing", "pending"):
            conn.execute(text("INSERT INTO alerts (rule, dedup_key, state, severity, soc2_control, labels, summary, "
                              "first_seen, last_seen, count, evidence, version) VALUES ('R', :key, :state, 'high', "
                              "'CC7.2', '{}', 's', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1, '[]', 4)"),
                         {"key": f"R|{state}", "state": state})
    engine = open_engine(url)  # migrates to the head
    firing, pending = alerts.get(engine, 1), alerts.get(engine, 2)
    assert firing["fired_at"] == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) and pending["fired_at"] is None
    assert (firing["triage_decision"], firing["assignee"], firing["suppressed_until"]) == (None, None, None)
    assert triage.time_to_triage(firing, triage.targets(engine))["breached"]
    assert triage.escalate_triage_breaches(engine, dt.datetime.now(dt.timezone.utc)) == []
    assert triage.triage(engine, ANALYST, 1, 4, decision="false-positive", reason="old")["version"] == 5


def test_escalations_are_not_escalated_again(engine):
    with freeze_time(T0):
        raise_alert(engine, severity="critical")
        raise_alert(engine, rule="IncidentSLABreached", severity="critical", incident="1", sla="acknowledge")
    with freeze_time(T0 + dt.timedelta(minutes=20)):
        assert len(triage.escalate_triage_breaches(engine)) == 1  # the RootAccountUsage alert only
    with freeze_time(T0 + dt.timedelta(hours=5)):  # the AlertTriageBreached alert is hours past its target
        assert triage.escalate_triage_breaches(engine) == []
