"""Alerts: stored, deduplicated by rule and labels, firing → acknowledged → resolved.

The rule every run feeds: CheckRegressed — a resource whose check passed in one run and fails in the
next. It resolves when that finding stops failing. The queries are the store's (auditbook.store.alerts);
this module keeps the rules: dedup keys, what counts as one more occurrence, who may acknowledge."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Optional

from auditbook.auth import Actor, authorize
from auditbook.errors import UserError, shown
from auditbook.hookspecs import hookimpl
from auditbook.store import alerts as stored
from auditbook.store import cloudtrail as stored_trail
from auditbook.store import evidence as stored_evidence
from auditbook.store import scan_records
from auditbook.store.audit_log import now, record
from auditbook.store.session import reading, writing

REGRESSED = "CheckRegressed"
OPEN_STATES = ("firing", "acknowledged")
ACTIVE_STATES = OPEN_STATES + ("pending",)  # pending: a posture rule's `for` not yet over
MAX_EVIDENCE = 200  # evidence ids kept on one alert (the newest)
MAX_KEY = stored.DEDUP_KEY_LENGTH  # 600: alerts.dedup_key and cloudtrail_matches.labels_key
MAX_CONTROLS = stored.SOC2_CONTROL_LENGTH  # alerts.soc2_control (rules are held to it at load)
SYSTEM = Actor("auditbook", "system")  # what auditbook itself changes, in the audit trail
STATES = ("pending", "firing", "acknowledged", "resolved")


class StaleAlert(Exception):
    def __init__(self, current: dict):
        super().__init__(f"alert {current['id']} changed meanwhile (now {current['state']}); nothing was saved")
        self.current = current


def dedup_key(rule: str, labels: dict) -> str:
    """rule|label=value|… — cut to fit its column (MAX_KEY) with the SHA-256 of the whole key, so a
    long principal (an IAM path may be 512 characters) still names one alert."""
    key = rule + "|" + "|".join(f"{k}={labels[k]}" for k in sorted(labels))
    if len(key) <= MAX_KEY:
        return key
    tail = "|sha256=" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return key[:MAX_KEY - len(tail)] + tail


def fire(session, *, rule: str, labels: dict, severity: str, soc2_control: str, summary: str,
         at: dt.datetime, evidence: Optional[list] = None) -> dict:
    """Raise an alert, or count one more occurrence of the same open alert (inside the caller's unit
    of work): {"id", "count"} of the alert as it is now. An occurrence after the alert's triage
    decision reopens its triage (_retriage)."""
    key = dedup_key(rule, labels)
    alert = stored.open_by_key(session, key, OPEN_STATES)
    if alert is not None:
        kept = alert["evidence"] + [e for e in evidence or [] if e not in alert["evidence"]]
        values = {"count": alert["count"] + 1, "last_seen": max(alert["last_seen"], at),
                  "evidence": kept[-MAX_EVIDENCE:]}
        decided = alert["triaged_at"] is not None and alert["triaged_at"] < at
        stored.change(session, alert["id"], {**values, **(_retriage(session, alert, at) if decided else {})},
                      bump=decided)
        return {"id": alert["id"], "count": alert["count"] + 1}
    new_id = stored.insert_alert(session, rule=rule, dedup_key=key, state="firing", severity=severity,
                                 soc2_control=soc2_control, labels=labels, summary=summary, at=at,
                                 evidence=list(dict.fromkeys(evidence or []))[-MAX_EVIDENCE:])
    return {"id": new_id, "count": 1}


def _retriage(session, alert: dict, at: dt.datetime) -> dict:
    """A new occurrence after an open alert's triage decision reopens its triage (a decision covers
    what was seen, not what comes later): the decision is cleared, the clock restarts (at `at`, or
    now if that is later, as for a new alert) and it may be escalated again; the assignee and the
    incident stay. Its audit-trail entry; the columns to set."""
    cleared = {"triage_decision": None, "triage_reason": None, "triaged_by": None, "triaged_at": None}
    record(session, SYSTEM, "retriage", "alert", alert["id"], at=now(),
           before={k: alert[k] for k in ("triage_decision", "triage_reason", "triaged_by")}
           | {"triaged_at": alert["triaged_at"].isoformat()}, after=cleared,
           note=f"new occurrence at {at.isoformat()} after the decision of {alert['triaged_at'].isoformat()}: "
                "to be triaged again")
    return {**cleared, "fired_at": max(at, now()), "triage_escalated_at": None}


def resolve(session, rule: str, labels: dict, at: dt.datetime) -> int:
    return stored.resolve_by_key(session, dedup_key(rule, labels), OPEN_STATES, at)


def fit_controls(controls: list) -> tuple[str, str]:
    """A check's criteria for alerts.soc2_control: (as many whole ids as fit the column, the note the
    summary carries naming every one when some did not fit)."""
    joined = ",".join(controls)
    if len(joined) <= MAX_CONTROLS:
        return joined, ""
    kept: list = []
    for control in controls:
        if len(",".join(kept + [control])) > MAX_CONTROLS:
            break
        kept.append(control)
    return ",".join(kept), f" (SOC 2 criteria: {', '.join(controls)})"


def _labels(row: dict) -> dict:
    return {"check": row["check_id"], "account": row["account"], "region": row["region"],
            "resource_type": row["resource_type"], "resource": row["resource"]}


def sync_regressions(engine, run_id: int, at: dt.datetime) -> dict:
    """After run `run_id` is stored: FAIL that was PASS in the previous run fires CheckRegressed;
    a CheckRegressed finding that no longer fails resolves it."""
    def key(r):
        return (r["check_id"], r["account"], r["scope_region"], r["resource_type"], r["resource_id"])
    fired = resolved = 0
    with writing(engine) as session:
        failing, closed = scan_records.finding_changes(session, run_id, "FAIL")
        started, ended = {key(r): r for r in failing}, {key(r): r for r in closed}
        for k, new in started.items():
            old = ended.get(k)
            if old is not None and old["status"] == "PASS":
                controls, all_controls = fit_controls(list(new["controls"] or []))
                fire(session, rule=REGRESSED, labels=_labels(new), severity=new["severity"],
                     soc2_control=controls, at=at, evidence=new["evidence"],
                     summary=f"{new['check_id']} passed in the previous run and fails now on "
                             f"{new['resource_name'] or new['resource']} ({new['account']}, {new['region']}){all_controls}")
                fired += 1
        for k, old in ended.items():
            if old["status"] == "FAIL" and k not in started:  # no longer failing
                resolved += resolve(session, REGRESSED, _labels(old), at)
    return {"fired": fired, "resolved": resolved}


def list_alerts(engine, states: Optional[tuple[str, ...]] = None) -> list[dict]:
    with reading(engine) as session:
        return stored.listing(session, states)


def get(engine, alert_id: int) -> dict:
    with reading(engine) as session:
        alert = stored.get(session, alert_id)
    if alert is None:
        raise UserError(f"alert: no alert {alert_id}")
    return alert


def acknowledge(engine, actor: Actor, alert_id: int, version: int, note: Optional[str] = None) -> dict:
    authorize(actor, "acknowledge_alert")
    current = get(engine, alert_id)
    if current["state"] != "firing":
        raise UserError(f"alert {alert_id}: is {current['state']}, only a firing alert can be acknowledged")
    stamp = now()
    with writing(engine) as session:
        changed = stored.change(session, alert_id, {"state": "acknowledged", "acknowledged_by": actor.name,
                                                    "acknowledged_at": stamp}, version=version, state="firing")
        if changed:
            record(session, actor, "acknowledge", "alert", alert_id, before={"state": "firing"},
                   after={"state": "acknowledged"}, note=note, at=stamp)
    if not changed:
        raise StaleAlert(get(engine, alert_id))
    return get(engine, alert_id)


def evidence_of(session, alert: dict, limit: int = 50) -> list:
    """What stands behind an alert: the hashed API responses of a regression ({sha256, body}), or the
    (redacted) CloudTrail records of an event alert; nothing for the others."""
    if not alert["evidence"]:
        return []
    if alert["rule"] == REGRESSED:
        bodies = {sha: json.loads(data) for sha, data in stored_evidence.raw_bodies(session, alert["evidence"])}
        return [{"sha256": h, "body": bodies.get(h)} for h in alert["evidence"]]
    return stored_trail.match_records(session, alert["rule"], alert["dedup_key"], limit)


def check_states(states: Optional[tuple[str, ...]]) -> None:
    """A state asked for that is not one of STATES is a UserError naming it (`alerts --state`)."""
    for state in states or ():
        if state not in STATES:
            raise UserError(f"--state: {shown(state)} is not one of {', '.join(STATES)}")


def document(session, alert: dict) -> dict:
    """An alert as `alerts --format json` gives it: JSON-ready (times as ISO 8601, None as null), with
    its triage, its suppression and its evidence (evidence_of)."""
    def iso(value):
        return value.isoformat() if value is not None else None
    return {"id": alert["id"], "rule": alert["rule"], "state": alert["state"], "severity": alert["severity"],
            "soc2_control": alert["soc2_control"], "labels": alert["labels"], "summary": alert["summary"],
            "first_seen": iso(alert["first_seen"]), "last_seen": iso(alert["last_seen"]), "count": alert["count"],
            "acknowledged_by": alert["acknowledged_by"], "assignee": alert["assignee"],
            "triage_decision": alert["triage_decision"], "triage_reason": alert["triage_reason"],
            "triaged_by": alert["triaged_by"], "triaged_at": iso(alert["triaged_at"]),
            "incident_id": alert["incident_id"], "suppressed_until": iso(alert["suppressed_until"]),
            "evidence": evidence_of(session, alert)}


def alert_documents(engine, states: Optional[tuple[str, ...]] = None) -> list[dict]:
    """Every alert (in `states`, when given; checked by check_states), newest first, as document()."""
    check_states(states)
    with reading(engine) as session:
        return [document(session, a) for a in stored.listing(session, states or None)]


@hookimpl
def run_stored(engine, run_id: int, at: dt.datetime) -> None:
    """Subscribed to the scan's "run stored" event: a check regressing from PASS to FAIL raises an alert."""
    sync_regressions(engine, run_id, at)
