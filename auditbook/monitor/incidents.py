"""Incidents: created blank, from a failing finding or from an alert; severity, assignee, status
open → investigating → contained → resolved → closed, SLA targets per severity, a timeline of notes,
links to criteria, findings and alerts, and the post-mortem's fields (monitor.postmortem: category,
impact, notifications, root cause, lessons learned — required to close a high or critical one).
Every change is authorised, version-checked (two analysts never silently overwrite each other) and
appended to the audit trail; nothing is deleted. The queries are the store's
(auditbook.store.incidents, auditbook.store.audit_log)."""
from __future__ import annotations

import datetime as dt
from typing import Optional, Sequence

from auditbook.auth import Actor, authorize
from auditbook.errors import UserError
from auditbook.history.sla import SEVERITIES, sla_state  # noqa: F401 (part of this API: front ends use them)
from auditbook.monitor import postmortem, settings
from auditbook.monitor.alerts import fire
from auditbook.monitor.incident_attachments import CheckedFile, store_file
from auditbook.store import alerts as stored_alerts
from auditbook.store import audit_log
from auditbook.store import incident_actions as stored_actions
from auditbook.store import incident_attachments as stored_attachments
from auditbook.store import incidents as stored
from auditbook.store.audit_log import now, record
from auditbook.store.session import reading, writing

STATUSES = ("open", "investigating", "contained", "resolved", "closed")
ACTIVE = ("open", "investigating", "contained")
# where each status may go: forward through the response, straight to resolved (e.g. a false
# positive), and a resolved incident may be reopened
TRANSITIONS = {
    "open": ("investigating", "resolved"),
    "investigating": ("contained", "resolved"),
    "contained": ("resolved",),
    "resolved": ("closed", "investigating"),
    "closed": (),
}
LINK_KINDS = ("criterion", "finding", "alert")
MAX_TEXT = 20000
FIELDS = ("status", "severity", "assignee", "title", "description", *postmortem.FIELDS)  # what update() changes
SYSTEM = Actor("auditbook", "system")


class Conflict(Exception):
    """Somebody else changed the incident first; `current` is its state now."""

    def __init__(self, current: dict):
        super().__init__(f"incident {current['id']} was changed by someone else (now version {current['version']}); "
                         "nothing was saved — review its current state and try again")
        self.current = current


def _json(d: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in d.items()}


def sla_targets(engine) -> dict:
    return settings.get(engine, "sla")


def _clean(text: Optional[str], field: str, required: bool = False, limit: int = MAX_TEXT) -> Optional[str]:
    value = (text or "").strip()
    if required and not value:
        raise UserError(f"{field}: required")
    if len(value) > limit:
        raise UserError(f"{field}: longer than {limit} characters")
    return value or None


def create(engine, actor: Actor, *, title: str, severity: str, description: str = "",
           assignee: Optional[str] = None, links: Optional[list[dict]] = None) -> dict:
    authorize(actor, "create_incident")
    title = _clean(title, "title", required=True, limit=stored.TITLE_LENGTH)
    if severity not in SEVERITIES:
        raise UserError(f"severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
    for link in links or []:
        if link.get("kind") not in LINK_KINDS or not link.get("ref"):
            raise UserError(f"links: {link!r} is not a criterion, finding or alert reference")
    stamp = now()
    with writing(engine) as session:
        out = stored.insert_incident(session, title=title, description=_clean(description, "description") or "",
                                     severity=severity, status="open",
                                     assignee=_clean(assignee, "assignee", limit=stored.ASSIGNEE_LENGTH),
                                     created_by=actor.name, at=stamp, links=list(links or []))
        record(session, actor, "create", "incident", out["id"], after=_json(out), at=stamp)
    return out


def from_finding(engine, actor: Actor, finding: dict, severity: Optional[str] = None) -> dict:
    """An incident about one failing finding (as findings_for_run returns it)."""
    title = f"{finding['check']} failing on {finding.get('resource_name') or finding['resource']}"
    links = [{"kind": "finding", "ref": f"{finding['check']}|{finding['account']}|{finding['region']}|{finding['resource']}",
              "label": title}]
    links += [{"kind": "criterion", "ref": c, "label": c} for c in finding.get("controls", [])]
    sev = severity or (finding.get("severity") if finding.get("severity") in SEVERITIES else "medium")
    return create(engine, actor, title=title[:300], severity=sev, links=links,
                  description=f"{finding.get('message', '')}\nAccount {finding['account']}, region {finding['region']}, "
                              f"resource {finding['resource']}.")


def alert_incident(alert: dict, label: str = "") -> dict:
    """The title, severity, description and links of an incident opened from `alert` (as
    store.alerts.get returns it), every word of them taken from the alert; `label` (e.g. SIMULATED)
    leads the title and the description."""
    lead = f"{label}: " if label else ""
    links = [{"kind": "alert", "ref": str(alert["id"]), "label": f"{alert['rule']}: {alert['summary']}"[:300]}]
    links += [{"kind": "criterion", "ref": c.strip(), "label": c.strip()}
              for c in str(alert["soc2_control"]).split(",") if c.strip()]
    labels = ", ".join(f"{k}={v}" for k, v in sorted((alert.get("labels") or {}).items()))
    description = (f"{lead}opened from alert {alert['id']} ({alert['rule']}, {alert['severity']}, "
                   f"{alert['soc2_control']}; first seen {alert['first_seen']:%Y-%m-%d %H:%M} UTC"
                   f"{', ' + labels if labels else ''}): {alert['summary']}")
    return {"title": f"{lead}{alert['rule']}: {alert['summary']}"[:stored.TITLE_LENGTH],
            "severity": alert["severity"] if alert["severity"] in SEVERITIES else "medium",
            "description": description[:MAX_TEXT], "links": links}


def from_alert(engine, actor: Actor, alert_id: int, label: str = "") -> dict:
    with reading(engine) as session:
        alert = stored_alerts.get(session, alert_id)
    if alert is None:
        raise UserError(f"alert: no alert {alert_id}")
    return create(engine, actor, **alert_incident(alert, label))


def get(engine, incident_id: int) -> dict:
    with reading(engine) as session:
        found = stored.get(session, incident_id)
    if found is None:
        raise UserError(f"incident: no incident {incident_id}")
    return found


def list_incidents(engine, statuses: Optional[tuple[str, ...]] = None) -> list[dict]:
    with reading(engine) as session:
        return stored.listing(session, statuses)


def detail(engine, incident_id: int) -> dict:
    """The incident with its post-mortem's action items and attachments (records, no bytes), read in
    one unit of work."""
    with reading(engine) as session:
        found = stored.get(session, incident_id)
        if found is None:
            raise UserError(f"incident: no incident {incident_id}")
        return {**found, "actions": stored_actions.of_incident(session, incident_id),
                "attachments": stored_attachments.of_incident(session, incident_id)}


def timeline(engine, incident_id: int) -> list[dict]:
    """The incident's audit trail, oldest first: every change, note, escalation and runbook."""
    with reading(engine) as session:
        return audit_log.trail(session, "incident", incident_id)


def _status_values(current: dict, target: str, stamp: dt.datetime) -> dict:
    """The columns a move to status `target` sets, or a UserError when the move is not allowed."""
    if target not in TRANSITIONS.get(current["status"], ()):
        raise UserError(f"status: cannot go from {current['status']} to {target} "
                        f"(allowed: {', '.join(TRANSITIONS[current['status']]) or 'none'})")
    values: dict = {"status": target}
    if current["acknowledged_at"] is None:
        values["acknowledged_at"] = stamp  # leaving "open" acknowledges it
    if target == "resolved":
        values["resolved_at"] = stamp
    elif target == "investigating" and current["status"] == "resolved":
        values["resolved_at"] = None  # reopened
    if target == "closed":
        values["closed_at"] = stamp
    return values


def _changed_values(current: dict, changes: dict, stamp: dt.datetime) -> dict:
    """The columns `changes` really change (status, severity, assignee, title, description), checked."""
    values: dict = {}
    if "status" in changes and changes["status"] != current["status"]:
        values.update(_status_values(current, changes["status"], stamp))
    if "severity" in changes and changes["severity"] != current["severity"]:
        if changes["severity"] not in SEVERITIES:
            raise UserError(f"severity: {changes['severity']!r} is not one of {', '.join(SEVERITIES)}")
        values["severity"] = changes["severity"]
    texts = {"assignee": _clean(changes.get("assignee"), "assignee", limit=stored.ASSIGNEE_LENGTH),
             "title": _clean(changes.get("title"), "title", required="title" in changes, limit=stored.TITLE_LENGTH),
             "description": _clean(changes.get("description"), "description") or ""}
    for name in ("assignee", "title", "description"):
        if name in changes and texts[name] != current[name]:
            values[name] = texts[name]
    values.update(postmortem.postmortem_values(current, {k: v for k, v in changes.items() if k in postmortem.FIELDS}))
    refusal = postmortem.closing_refusal(current, values)
    if refusal:
        raise UserError(refusal)
    return values


def update(engine, actor: Actor, incident_id: int, version: int, *, actions: Sequence[dict] = (),
           files: Sequence[CheckedFile] = (), done: Sequence[int] = (), **changes) -> dict:
    """Change status, severity, assignee, title, description or the post-mortem's fields
    (postmortem.FIELDS). `version` is the version the caller saw: if the incident changed since,
    nothing is saved and Conflict carries its current state. Closing a high or critical incident
    without root cause and lessons learned is refused (a UserError saying so). New action items
    (`actions`: {owner, due, text}), files (`files`, checked by incident_attachments) and action
    items marked done (`done`: their ids) are saved in the same unit of work: all of it, or nothing."""
    authorize(actor, "update_incident")
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise UserError(f"{sorted(unknown)[0]}: not a field of an incident")
    new_actions = [postmortem.checked_action(a.get("owner"), a.get("due"), a.get("text")) for a in actions]
    current = get(engine, incident_id)
    if current["version"] != version:
        raise Conflict(current)
    stamp = now()
    values = _changed_values(current, changes, stamp)
    if not (values or new_actions or files or done):
        return current
    with writing(engine) as session:
        saved = not values or stored.change_if_version(session, incident_id, version, {**values, "updated_at": stamp})
        if values and saved:
            record(session, actor, "update", "incident", incident_id, at=stamp,
                   before=_json({k: current[k] for k in values}), after=_json(values))
        if saved:
            _add_items(session, actor, incident_id, new_actions, files, done, stamp)
    if not saved:
        raise Conflict(get(engine, incident_id))
    return get(engine, incident_id)


def _add_items(session, actor: Actor, incident_id: int, new_actions: list[dict], files: Sequence[CheckedFile],
               done: Sequence[int], stamp: dt.datetime) -> None:
    for checked in new_actions:
        postmortem.insert_action(session, actor, incident_id, checked, stamp)
    for file in files:
        store_file(session, actor, incident_id, file, stamp)
    for action_id in done:
        current = postmortem.action_of(session, incident_id, action_id)
        if not postmortem.change_done(session, actor, current, current["version"], True, stamp):
            raise postmortem.ActionConflict(current)


def add_note(engine, actor: Actor, incident_id: int, text: str) -> None:
    """A note on the timeline. Notes never conflict: they are appended, not edited."""
    authorize(actor, "note_incident")
    text = _clean(text, "note", required=True)
    with writing(engine) as session:
        if stored.get(session, incident_id) is None:
            raise UserError(f"incident: no incident {incident_id}")
        record(session, actor, "note", "incident", incident_id, note=text)


def add_link(engine, actor: Actor, incident_id: int, version: int, kind: str, ref: str, label: str = "") -> dict:
    authorize(actor, "update_incident")
    if kind not in LINK_KINDS or not ref:
        raise UserError(f"link: {kind!r} {ref!r} is not a criterion, finding or alert reference")
    current = get(engine, incident_id)
    if current["version"] != version:
        raise Conflict(current)
    link = {"kind": kind, "ref": ref, "label": label or ref}
    with writing(engine) as session:
        saved = stored.change_if_version(session, incident_id, version,
                                         {"links": [*current["links"], link], "updated_at": now()})
        if saved:
            record(session, actor, "link", "incident", incident_id, after=link)
    if not saved:
        raise Conflict(get(engine, incident_id))
    return get(engine, incident_id)


def escalate_breaches(engine, at: Optional[dt.datetime] = None) -> list[dict]:
    """Active incidents past an SLA target are escalated once per target: an entry on the timeline
    and an IncidentSLABreached alert (which the notification channels page out)."""
    at = at or now()
    targets = sla_targets(engine)
    out = []
    with writing(engine) as session:
        active = stored.listing(session, ACTIVE)
        trails = audit_log.trails(session, "incident", [inc["id"] for inc in active])
        for inc in active:
            state = sla_state(inc, targets, at)
            done = {e["note"] for e in trails[str(inc["id"])] if e["action"] == "escalate"}
            for kind, breached, due in (("acknowledge", state.acknowledge_breached, state.acknowledge_due),
                                        ("resolve", state.resolve_breached, state.resolve_due)):
                note = f"{kind} SLA breached (due {due:%Y-%m-%d %H:%M} UTC): escalated"
                if not breached or note in done:
                    continue
                record(session, SYSTEM, "escalate", "incident", inc["id"], note=note, at=at)
                fire(session, rule="IncidentSLABreached", labels={"incident": str(inc["id"]), "sla": kind},
                     severity=inc["severity"], soc2_control="CC7.4", at=at,
                     summary=f"incident {inc['id']} ({inc['title'][:80]}) missed its {kind} target")
                out.append({"incident": inc["id"], "sla": kind})
    return out
