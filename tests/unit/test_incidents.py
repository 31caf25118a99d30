"""Incidents, alerts, roles and settings in the core (what the control room calls): every action is
authorised on the server side, versioned against lost updates and written to the audit trail."""
import datetime as dt
import threading

import pytest
from freezegun import freeze_time

from auditbook.auth import (
    ACTIONS,
    PERMISSIONS,
    ROLES,
    Actor,
    PermissionDenied,
    authorize,
    role_for,
    token_matches,
)
from auditbook.errors import UserError
from auditbook.monitor import alerts, incidents, settings
from auditbook.store import audit_log
from auditbook.store.session import reading

ANALYST, VIEWER, ADMIN, AUDITOR, WALL = (Actor("ana", "analyst"), Actor("vic", "viewer"), Actor("adm", "admin"),
                                         Actor("aud", "auditor"), Actor("wall screen", "wall"))


def trail(engine, object_type: str, object_id) -> list[dict]:
    """The audit trail of one object, read through its repository in one unit of work."""
    with reading(engine) as session:
        return audit_log.trail(session, object_type, object_id)


@pytest.fixture
def engine(tmp_path):
    from auditbook.store.db import open_engine
    return open_engine(f"sqlite:///{tmp_path}/s.db")


# -- roles -----------------------------------------------------------------------------------------

EXPECTED = {  # the rule table of docs/control-room.md, written out independently of auth.py
    "viewer": {"view_posture", "view_alerts", "view_incidents", "view_evidence", "view_wall"},
    "analyst": {"view_posture", "view_alerts", "view_incidents", "view_evidence", "view_wall",
                "create_incident", "update_incident", "note_incident", "acknowledge_alert", "run_runbook",
                "triage_alert", "suppress_alerts", "submit_evidence", "prepare_signoff", "respond_deviation"},
    "approver": {"view_posture", "view_alerts", "view_incidents", "view_evidence", "view_wall", "approve_evidence",
                 "review_signoff"},
    "admin": {"view_posture", "view_alerts", "view_incidents", "view_evidence", "view_wall", "view_packets",
              "create_incident", "update_incident", "note_incident", "acknowledge_alert", "run_runbook",
              "triage_alert", "suppress_alerts", "submit_evidence", "prepare_signoff", "respond_deviation",
              "manage_exceptions",
              "manage_settings", "start_scan", "approve_evidence", "review_signoff", "draw_sample"},
    "auditor": {"view_posture", "view_alerts", "view_incidents", "view_evidence", "view_wall", "view_packets",
                "draw_sample"},
    "wall": {"view_wall"},
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(set().union(*EXPECTED.values())))
def test_every_role_rule(role, action):
    actor = Actor("someone", role)
    if action in EXPECTED[role]:
        authorize(actor, action)
    else:
        with pytest.raises(PermissionDenied):
            authorize(actor, action)


def test_rule_table_has_no_action_the_docs_do_not_name():
    assert set(ACTIONS) == set().union(*EXPECTED.values())
    assert {r: PERMISSIONS[r] for r in ROLES} == EXPECTED


def test_role_mapping_and_wall_token():
    mapping = {"admin": ["boss@corp.example"], "analyst": ["@soc.corp.example"], "auditor": ["ext@audit.example"]}
    assert role_for("Boss@Corp.example", mapping) == "admin"
    assert role_for("kim@soc.corp.example", mapping) == "analyst"
    assert role_for("ext@audit.example", mapping) == "auditor"
    assert role_for("someone@else.example", mapping) == "viewer"
    assert role_for("someone@else.example", mapping, default=None) is None
    import hashlib
    digest = hashlib.sha256(b"s3cret-wall").hexdigest()
    assert token_matches("s3cret-wall", digest) and not token_matches("s3cret-wal", digest)
    assert not token_matches(None, digest) and not token_matches("x", None)


# -- incidents ---------------------------------------------------------------------------------------

def test_lifecycle_sla_and_audit_trail(engine):
    with freeze_time("2026-11-01 10:00:00"):
        inc = incidents.create(engine, ANALYST, title="S3 bucket made public", severity="high", assignee="kim",
                               links=[{"kind": "criterion", "ref": "CC6.6"}])
    assert (inc["status"], inc["version"]) == ("open", 1)
    with freeze_time("2026-11-01 10:30:00"):
        inc = incidents.update(engine, ANALYST, inc["id"], 1, status="investigating")
    with freeze_time("2026-11-01 12:00:00"):
        inc = incidents.update(engine, ANALYST, inc["id"], inc["version"], status="contained")
        incidents.add_note(engine, ANALYST, inc["id"], "Blocked public access; checking access logs.")
    with freeze_time("2026-11-02 12:00:00"):  # 26 h after opening: past the 24 h target for high
        inc = incidents.update(engine, ANALYST, inc["id"], inc["version"], status="resolved")
        with pytest.raises(UserError, match="high incident is closed only with its root cause and lessons"):
            incidents.update(engine, ANALYST, inc["id"], inc["version"], status="closed")  # no post-mortem yet
        inc = incidents.update(engine, ANALYST, inc["id"], inc["version"], status="closed",
                               root_cause="A deploy script removed the public access block.",
                               lessons_learned="Guard the block with an SCP.")
    state = incidents.sla_state(inc, incidents.sla_targets(engine))
    assert state.time_to_acknowledge == dt.timedelta(minutes=30) and not state.acknowledge_breached
    assert state.time_to_resolve == dt.timedelta(hours=26) and state.resolve_breached
    entries = trail(engine, "incident", inc["id"])
    assert [e["action"] for e in entries] == ["create", "update", "update", "note", "update", "update"]
    assert entries[1]["before"]["status"] == "open" and entries[1]["after"]["status"] == "investigating"
    assert entries[3]["note"] == "Blocked public access; checking access logs." and entries[3]["actor"] == "ana"
    with pytest.raises(UserError, match="cannot go from closed to open"):
        incidents.update(engine, ANALYST, inc["id"], inc["version"], status="open")


def test_open_sla_breach_is_visible_before_anyone_acts(engine):
    with freeze_time("2026-11-01 10:00:00"):
        inc = incidents.create(engine, ANALYST, title="Root login", severity="critical")
    targets = incidents.sla_targets(engine)
    assert not incidents.sla_state(inc, targets, at=dt.datetime(2026, 11, 1, 10, 10, tzinfo=dt.timezone.utc)).breached
    late = incidents.sla_state(inc, targets, at=dt.datetime(2026, 11, 1, 10, 20, tzinfo=dt.timezone.utc))
    assert late.acknowledge_breached and not late.resolve_breached


def test_second_writer_gets_a_conflict_and_the_current_state(engine):
    inc = incidents.create(engine, ANALYST, title="Key leaked", severity="high")
    first = incidents.update(engine, ANALYST, inc["id"], inc["version"], assignee="kim")
    with pytest.raises(incidents.Conflict) as info:
        incidents.update(engine, Actor("bob", "analyst"), inc["id"], inc["version"], assignee="bob")
    assert info.value.current["assignee"] == "kim" and info.value.current["version"] == first["version"]
    assert "changed by someone else" in str(info.value)
    assert incidents.get(engine, inc["id"])["assignee"] == "kim"


def test_concurrent_writers_never_lose_an_update(engine):
    inc = incidents.create(engine, ANALYST, title="Race", severity="low")
    results, barrier = [], threading.Barrier(8)

    def writer(i):
        barrier.wait()
        try:
            incidents.update(engine, Actor(f"a{i}", "analyst"), inc["id"], 1, assignee=f"a{i}")
            results.append(("ok", i))
        except incidents.Conflict:
            results.append(("conflict", i))
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    winners = [i for kind, i in results if kind == "ok"]
    assert len(winners) == 1 and len(results) == 8
    final = incidents.get(engine, inc["id"])
    assert final["assignee"] == f"a{winners[0]}" and final["version"] == 2
    assert len([e for e in trail(engine, "incident", inc["id"]) if e["action"] == "update"]) == 1


@pytest.mark.parametrize("actor", [VIEWER, AUDITOR, WALL])
def test_read_only_roles_cannot_change_anything(engine, actor):
    inc = incidents.create(engine, ANALYST, title="x" * 10, severity="low")
    for call in (lambda: incidents.create(engine, actor, title="nope", severity="low"),
                 lambda: incidents.update(engine, actor, inc["id"], 1, status="investigating"),
                 lambda: incidents.add_note(engine, actor, inc["id"], "nope"),
                 lambda: settings.put(engine, actor, "wall", {"stale_after_hours": 1, "refresh_seconds": 30})):
        with pytest.raises(PermissionDenied):
            call()
    assert incidents.get(engine, inc["id"])["version"] == 1
    assert [e["action"] for e in trail(engine, "incident", inc["id"])] == ["create"]


def test_bad_incident_input(engine):
    with pytest.raises(UserError, match="title: required"):
        incidents.create(engine, ANALYST, title="  ", severity="low")
    with pytest.raises(UserError, match="severity: 'urgent' is not one of"):
        incidents.create(engine, ANALYST, title="t", severity="urgent")
    with pytest.raises(UserError, match="links:"):
        incidents.create(engine, ANALYST, title="t", severity="low", links=[{"kind": "ticket", "ref": "1"}])


def test_incident_from_a_failing_finding_links_it():
    import tempfile

    from auditbook.store.db import open_engine
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{tmp}/x.db")
        finding = {"check": "s3-versioning", "controls": ["A1.2", "PI1.5"], "status": "FAIL", "severity": "medium",
                   "account": "123456789012", "region": "us-east-1", "resource": "arn:aws:s3:::b",
                   "resource_name": "b", "message": "not met"}
        inc = incidents.from_finding(engine, ANALYST, finding)
        kinds = {(l["kind"], l["ref"]) for l in inc["links"]}
        assert ("criterion", "A1.2") in kinds and ("finding", "s3-versioning|123456789012|us-east-1|arn:aws:s3:::b") in kinds
        assert inc["severity"] == "medium" and "s3-versioning failing on b" == inc["title"]


# -- settings ------------------------------------------------------------------------------------------

def test_settings_validated_and_audited(engine):
    with pytest.raises(UserError, match="sla.high.resolve: shorter than the time to acknowledge"):
        settings.put(engine, ADMIN, "sla", {"high": {"acknowledge": 60, "resolve": 30}})
    settings.put(engine, ADMIN, "sla", {"high": {"acknowledge": 30, "resolve": 600}})
    assert incidents.sla_targets(engine)["high"] == {"acknowledge": 30, "resolve": 600}
    assert trail(engine, "setting", "sla")[0]["after"]["high"] == {"acknowledge": 30, "resolve": 600}


# -- regression alerts ---------------------------------------------------------------------------------

def test_pass_to_fail_raises_an_alert_that_resolves_when_fixed(aws, tmp_path):
    from auditbook.scan import run_scan
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="watched")
    block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    s3.put_public_access_block(Bucket="watched", PublicAccessBlockConfiguration=block)
    db = f"sqlite:///{tmp_path}/a.db"
    from auditbook.store.db import open_engine
    engine = open_engine(db)
    run_scan(regions="us-east-1", db=db, criterion="CC6.6")
    assert [a for a in alerts.list_alerts(engine) if a["labels"].get("check") == "s3-bucket-public-access-block"] == []
    s3.delete_public_access_block(Bucket="watched")
    run_scan(regions="us-east-1", db=db, criterion="CC6.6")
    run_scan(regions="us-east-1", db=db, criterion="CC6.6")  # still failing: the same alert, not a new one
    fired = [a for a in alerts.list_alerts(engine) if a["labels"].get("check") == "s3-bucket-public-access-block"]
    assert len(fired) == 1 and fired[0]["state"] == "firing" and fired[0]["rule"] == "CheckRegressed"
    assert fired[0]["labels"]["resource"].endswith("watched") and "CC6.6" in fired[0]["soc2_control"]
    assert fired[0]["evidence"]
    with pytest.raises(PermissionDenied):
        alerts.acknowledge(engine, VIEWER, fired[0]["id"], fired[0]["version"])
    acked = alerts.acknowledge(engine, ANALYST, fired[0]["id"], fired[0]["version"])
    assert acked["state"] == "acknowledged" and acked["acknowledged_by"] == "ana"
    with pytest.raises(UserError, match="only a firing alert"):
        alerts.acknowledge(engine, ANALYST, fired[0]["id"], acked["version"])
    s3.put_public_access_block(Bucket="watched", PublicAccessBlockConfiguration=block)
    run_scan(regions="us-east-1", db=db, criterion="CC6.6")
    after = alerts.get(engine, fired[0]["id"])
    assert after["state"] == "resolved" and after["resolved_at"] is not None
    inc = incidents.from_alert(engine, ANALYST, fired[0]["id"])
    assert ("alert", str(fired[0]["id"])) in {(l["kind"], l["ref"]) for l in inc["links"]}


def test_sla_breach_escalates_once_with_an_alert(engine):
    with freeze_time("2026-11-01 10:00:00"):
        inc = incidents.create(engine, ANALYST, title="Root login from abroad", severity="critical")
    at = dt.datetime(2026, 11, 1, 10, 20, tzinfo=dt.timezone.utc)  # 20 min: acknowledge target (15) missed
    assert incidents.escalate_breaches(engine, at) == [{"incident": inc["id"], "sla": "acknowledge"}]
    assert incidents.escalate_breaches(engine, at) == []  # once
    notes = [e["note"] for e in trail(engine, "incident", inc["id"]) if e["action"] == "escalate"]
    assert notes == ["acknowledge SLA breached (due 2026-11-01 10:15 UTC): escalated"]
    fired = [a for a in alerts.list_alerts(engine) if a["rule"] == "IncidentSLABreached"]
    assert [(a["labels"], a["severity"]) for a in fired] == [({"incident": str(inc["id"]), "sla": "acknowledge"}, "critical")]
    later = dt.datetime(2026, 11, 1, 15, 0, tzinfo=dt.timezone.utc)  # 5 h: resolve target (4 h) missed too
    assert incidents.escalate_breaches(engine, later) == [{"incident": inc["id"], "sla": "resolve"}]


def test_an_actor_name_longer_than_the_audit_trail_column_is_refused():
    from auditbook.auth import MAX_ACTOR, Actor
    from auditbook.errors import UserError
    assert Actor("a" * MAX_ACTOR, "viewer").name
    with pytest.raises(UserError, match="200 are allowed"):
        Actor("a" * (MAX_ACTOR + 1) + "@example.com", "admin")
