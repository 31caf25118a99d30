"""Alert triage (CC7.3): an assignee, notes, and a decision with its required reason — a true
positive becomes an incident in the same action (linked both ways), a benign true positive or a
false positive is recorded as such — acknowledging and resolving, for one alert or a selection at
once. Every change is authorised, version-checked (UPDATE … WHERE version = the version the person
saw: never a lost update; a selection is saved whole or not at all) and written to the audit trail in
the same unit of work. Time to triage runs from when auditbook raised the alert as firing to its
decision, against a target per severity (the `triage` setting); an untriaged alert past its target is escalated once by
the watch cycle, as incident SLA breaches are (an `escalate` entry and an AlertTriageBreached alert)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from auditbook.auth import Actor, authorize
from auditbook.errors import UserError
from auditbook.history.deviation_kinds import ESCALATION_RULE
from auditbook.history.sla import SEVERITIES
from auditbook.monitor import settings
from auditbook.monitor.alerts import OPEN_STATES, SYSTEM, StaleAlert, fire
from auditbook.monitor.incidents import MAX_TEXT, alert_incident
from auditbook.store import alerts as stored
from auditbook.store import incidents as stored_incidents
from auditbook.store import triage as stored_triage
from auditbook.store.audit_log import now, record
from auditbook.store.session import reading, writing

DECISIONS = ("true-positive", "benign-true-positive", "false-positive")
TRIAGE_BREACHED = ESCALATION_RULE  # the escalation's own alert (a CC7.3 deviation is the alert it escalates)
ESCALATIONS = (TRIAGE_BREACHED, "IncidentSLABreached")  # escalations themselves: never escalated again
MAX_NOTE = 4000
MAX_SELECTION = 500  # alerts changed by one bulk action
UNCHANGED = object()  # assignee left as it is (None or "" unassigns)


@dataclass(frozen=True)
class Change:
    """What one triage action does to each alert it is given (every part optional, at least one)."""
    decision: Optional[str] = None
    reason: Optional[str] = None
    assignee: object = UNCHANGED
    note: Optional[str] = None
    acknowledge: bool = False
    resolve: bool = False


def text(value: Optional[str], field: str, limit: int, required: bool = False) -> Optional[str]:
    """Free text from a person, stripped and bounded (stored as typed); None when empty."""
    value = (value or "").strip()
    if required and not value:
        raise UserError(f"{field}: required")
    if len(value) > limit:
        raise UserError(f"{field}: {len(value)} characters; at most {limit}")
    return value or None


def checked(change: Change) -> Change:
    """The change with its text cleaned, or a UserError naming the field that is wrong."""
    if change.decision is not None and change.decision not in DECISIONS:
        raise UserError(f"--decision: {change.decision!r} is not one of {', '.join(DECISIONS)}")
    reason = text(change.reason, "reason", stored.REASON_LENGTH, required=change.decision is not None)
    if reason and change.decision is None:
        raise UserError("reason: give it with a decision (a note is for anything else)")
    assignee = change.assignee
    if assignee is not UNCHANGED:
        assignee = text(assignee, "assignee", stored.ASSIGNEE_LENGTH)
    clean = Change(change.decision, reason, assignee, text(change.note, "note", MAX_NOTE),
                   change.acknowledge, change.resolve)
    if clean == Change():
        raise UserError("triage: nothing to do (give a decision and reason, an assignee, a note, acknowledge or resolve)")
    return clean


def _authorize(actor: Actor, change: Change) -> None:
    if change.decision or change.assignee is not UNCHANGED or change.note or change.resolve:
        authorize(actor, "triage_alert")
    if change.acknowledge:
        authorize(actor, "acknowledge_alert")
    if change.decision == "true-positive":
        authorize(actor, "create_incident")


def _values(alert: dict, change: Change, actor: Actor, stamp: dt.datetime) -> dict:
    """The columns `change` really changes on `alert` (incident_id aside)."""
    values: dict = {}
    if change.assignee is not UNCHANGED and change.assignee != alert["assignee"]:
        values["assignee"] = change.assignee
    if change.decision is not None and (change.decision, change.reason) != (alert["triage_decision"], alert["triage_reason"]):
        values.update(triage_decision=change.decision, triage_reason=change.reason, triaged_by=actor.name,
                      triaged_at=stamp)
    if change.acknowledge and alert["state"] == "firing":
        values.update(state="acknowledged", acknowledged_by=actor.name, acknowledged_at=stamp)
    if change.resolve and alert["state"] != "resolved":
        values.update(state="resolved", resolved_at=stamp)
    return values


def _json(values: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in values.items()}


def _open_incident(session, actor: Actor, alerts: list[dict], change: Change, stamp: dt.datetime) -> int:
    """One incident for the true positives without one (monitor.incidents.alert_incident of the
    first; the most severe severity; linked to each alert and its criteria), in the caller's unit of
    work, with its audit-trail entry."""
    fields = alert_incident(alerts[0])
    for other in alerts[1:]:
        more = alert_incident(other)
        fields["links"] += [link for link in more["links"] if link not in fields["links"]]
        fields["severity"] = min(fields["severity"], more["severity"], key=SEVERITIES.index)
    if len(alerts) > 1:
        tail = f" (+{len(alerts) - 1} more alerts)"
        fields["title"] = fields["title"][:stored_incidents.TITLE_LENGTH - len(tail)] + tail
        fields["description"] += "".join(f"\nAlso alert {a['id']} ({a['rule']}, {a['severity']}): {a['summary']}"
                                         for a in alerts[1:])
    fields["description"] = f"Triaged as a true positive by {actor.name}: {change.reason}\n\n{fields['description']}"
    assignee = change.assignee if change.assignee is not UNCHANGED else alerts[0]["assignee"]
    made = stored_incidents.insert_incident(session, title=fields["title"], description=fields["description"][:MAX_TEXT],
                                            severity=fields["severity"], status="open", assignee=assignee,
                                            created_by=actor.name, at=stamp, links=fields["links"])
    record(session, actor, "create", "incident", made["id"], at=stamp,
           after=_json({k: made[k] for k in ("title", "severity", "status", "assignee", "links")}))
    return made["id"]


def _current(session, versions: dict[int, int]) -> list[dict]:
    """The alerts as they are now, each at the version its caller saw (else StaleAlert, nothing saved)."""
    out = []
    for alert_id, version in versions.items():
        alert = stored.get(session, alert_id)
        if alert is None:
            raise UserError(f"alert: no alert {alert_id}")
        if alert["version"] != version:
            raise StaleAlert(alert)
        out.append(alert)
    return out


def _entries(alert: dict, values: dict) -> list[tuple[str, dict, dict]]:
    """(action, before, after) of each audit-trail entry one alert's change makes."""
    out = []
    if "assignee" in values:
        out.append(("assign", {"assignee": alert["assignee"]}, {"assignee": values["assignee"]}))
    if "acknowledged_by" in values:
        out.append(("acknowledge", {"state": alert["state"]}, {"state": "acknowledged"}))
    keys = [k for k in ("triage_decision", "triage_reason", "incident_id") if k in values]
    if keys:
        out.append(("triage", {k: alert[k] for k in keys}, {k: values[k] for k in keys}))
    if "resolved_at" in values:
        was = "acknowledged" if "acknowledged_by" in values else alert["state"]
        out.append(("resolve", {"state": was}, {"state": "resolved"}))
    return out


def _save(session, actor: Actor, alert: dict, values: dict, change: Change, stamp: dt.datetime) -> None:
    """One alert's change, version-checked, and its audit-trail entries."""
    if values and not stored.change(session, alert["id"], values, version=alert["version"]):
        raise StaleAlert(stored.get(session, alert["id"]) or alert)
    for action, before, after in _entries(alert, values):
        record(session, actor, action, "alert", alert["id"], before=before, after=after, at=stamp,
               note=change.reason if action == "triage" else None)
    if change.note:
        record(session, actor, "note", "alert", alert["id"], note=change.note, at=stamp)


def apply(engine, actor: Actor, versions: dict[int, int], change: Change) -> list[dict]:
    """Apply one change to each alert of `versions` ({alert id: the version its caller saw}), in one
    unit of work: all saved, or — one alert changed meanwhile (StaleAlert), missing or refused — none.
    A true positive without an incident gets one (one for the selection), linked to each alert."""
    if not versions:
        raise UserError("alerts: none selected")
    if len(versions) > MAX_SELECTION:
        raise UserError(f"alerts: {len(versions)} selected; at most {MAX_SELECTION} at once")
    change = checked(change)
    _authorize(actor, change)
    stamp = now()
    with writing(engine) as session:
        alerts = _current(session, versions)
        planned = {a["id"]: _values(a, change, actor, stamp) for a in alerts}
        if change.decision == "true-positive":
            new = [a for a in alerts if a["incident_id"] is None]
            if new:
                incident_id = _open_incident(session, actor, new, change, stamp)
                for a in new:
                    planned[a["id"]]["incident_id"] = incident_id
        for alert in alerts:
            _save(session, actor, alert, planned[alert["id"]], change, stamp)
        return [stored.get(session, a["id"]) for a in alerts]


def triage(engine, actor: Actor, alert_id: int, version: int, **change) -> dict:
    """One alert: apply(engine, actor, {alert_id: version}, Change(**change))."""
    return apply(engine, actor, {alert_id: version}, Change(**change))[0]


def current_versions(engine, alert_ids: list[int]) -> dict[int, int]:
    """{id: version} of alerts as they are now (the CLI acts on what it has just read)."""
    with reading(engine) as session:
        found = {i: stored.get(session, i) for i in dict.fromkeys(alert_ids)}
    missing = [str(i) for i, a in found.items() if a is None]
    if missing:
        raise UserError(f"alert: no alert {', '.join(missing)}")
    return {i: a["version"] for i, a in found.items()}


# -- time to triage and its targets ---------------------------------------------------------------

def targets(engine) -> dict:
    """Minutes to triage per alert severity (the `triage` setting over its defaults)."""
    return settings.get(engine, "triage")


def target_minutes(targets_: dict, severity: str) -> int:
    return int(targets_.get(severity, targets_["low"]))


def clock_start(alert: dict) -> Optional[dt.datetime]:
    """When an alert's triage clock started: when auditbook raised it as firing (None: still pending)."""
    if alert.get("fired_at") is not None:
        return alert["fired_at"]
    return None if alert["state"] == "pending" else alert["first_seen"]


def time_to_triage(alert: dict, targets_: dict, at: Optional[dt.datetime] = None) -> dict:
    """{elapsed, due, breached, triaged} of one alert: the time from when it fired to its decision
    (or to its resolution, or so far); breached when that passed the due time. A pending alert (not
    firing yet) has no clock running: due None, not breached."""
    at = at or now()
    start = clock_start(alert)
    if start is None:
        return {"elapsed": None, "due": None, "breached": False, "triaged": alert["triaged_at"] is not None}
    due = start + dt.timedelta(minutes=target_minutes(targets_, alert["severity"]))
    end = alert["triaged_at"] or (alert["resolved_at"] if alert["state"] == "resolved" else None) or at
    return {"elapsed": end - start, "due": due, "breached": end > due, "triaged": alert["triaged_at"] is not None}


def cutoffs(targets_: dict, at: dt.datetime) -> tuple:
    """((severity, the firing time before which an untriaged alert is overdue), …), "*" for the others."""
    out = tuple((sev, at - dt.timedelta(minutes=int(m))) for sev, m in targets_.items())
    return out + (("*", at - dt.timedelta(minutes=target_minutes(targets_, "low"))),)


def escalate_triage_breaches(engine, at: Optional[dt.datetime] = None) -> list[dict]:
    """Open alerts untriaged past their target (not suppressed, not escalations themselves) are
    escalated once each: an `escalate` entry in the alert's trail and an AlertTriageBreached alert
    (CC7.3) for the channels."""
    at = at or now()
    limits = targets(engine)
    out = []
    with writing(engine) as session:
        for alert in stored_triage.overdue_unescalated(session, cutoffs(limits, at), OPEN_STATES, at,
                                                       skip_rules=ESCALATIONS):
            if not stored_triage.mark_escalated(session, alert["id"], at):
                continue
            minutes = target_minutes(limits, alert["severity"])
            due = alert["fired_at"] + dt.timedelta(minutes=minutes)
            note = f"triage target missed ({minutes} min, due {due:%Y-%m-%d %H:%M} UTC): escalated"
            record(session, SYSTEM, "escalate", "alert", alert["id"], note=note, at=at)
            fire(session, rule=TRIAGE_BREACHED, labels={"alert": str(alert["id"])}, severity=alert["severity"],
                 soc2_control="CC7.3", at=at,
                 summary=f"alert {alert['id']} ({alert['rule']}: {alert['summary'][:80]}) was not triaged within "
                         f"{minutes} minutes")
            out.append({"alert": alert["id"], "severity": alert["severity"], "due": due})
    return out



def _summary(rows: list[dict], limits: dict, at: dt.datetime) -> dict:
    triaged = [r for r in rows if r["triaged_at"] is not None]
    minutes = sorted((r["triaged_at"] - (clock_start(r) or r["first_seen"])).total_seconds() / 60 for r in triaged)
    false_positives = sum(r["triage_decision"] == "false-positive" for r in triaged)
    middle = len(minutes) // 2
    median = None if not minutes else (minutes[middle] if len(minutes) % 2 else (minutes[middle - 1] + minutes[middle]) / 2)
    return {"alerts": len(rows), "triaged": len(triaged), "false_positives": false_positives,
            "false_positive_rate": false_positives / len(triaged) if triaged else None,
            "median_minutes_to_triage": median,
            "breached": sum(time_to_triage(r, limits, at)["breached"] for r in rows)}


def triage_stats(engine, since: Optional[dt.datetime] = None, until: Optional[dt.datetime] = None,
                 at: Optional[dt.datetime] = None) -> dict:
    """Of the alerts first seen in [since, until): per rule and per severity, how many, how many
    triaged, false positives and their rate (which rules to tune), the median minutes to triage and
    how many missed their target — {"rules": {rule: …}, "severities": {severity: …}, "all": …}."""
    at = at or now()
    limits = targets(engine)
    with reading(engine) as session:
        rows = stored_triage.triaged_between(session, since, until)
    by_rule: dict = {}
    by_severity: dict = {}
    for r in rows:
        by_rule.setdefault(r["rule"], []).append(r)
        by_severity.setdefault(r["severity"], []).append(r)
    return {"rules": {k: _summary(v, limits, at) for k, v in sorted(by_rule.items())},
            "severities": {k: _summary(v, limits, at) for k, v in by_severity.items()},
            "all": _summary(rows, limits, at), "targets": limits}
