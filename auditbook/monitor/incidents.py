"""Incidents: created blank, from a failing finding or from an alert; severity, assignee, status
open → investigating → contained → resolved → closed, SLA targets per severity, a timeline of notes,
links to criteria, findings and alerts. Every change is authorised, version-checked (two analysts
never silently overwrite each other) and appended to the audit trail; nothing is deleted."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select
from sqlalchemy import update as sa_update
from sqlalchemy.orm import Session

from auditbook.store.audit_log import now, record
from auditbook.auth import Actor, authorize
from auditbook.errors import UserError
from auditbook.store.db import utc as _utc
from auditbook.store.models import Alert, Incident

SEVERITIES = ("critical", "high", "medium", "low")
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
# minutes to acknowledge (leave "open") and to resolve
DEFAULT_SLA = {"critical": {"acknowledge": 15, "resolve": 240}, "high": {"acknowledge": 60, "resolve": 1440},
               "medium": {"acknowledge": 240, "resolve": 4320}, "low": {"acknowledge": 1440, "resolve": 20160}}
MAX_TEXT = 20000


class Conflict(Exception):
    """Somebody else changed the incident first; `current` is its state now."""

    def __init__(self, current: dict):
        super().__init__(f"incident {current['id']} was changed by someone else (now version {current['version']}); "
                         "nothing was saved — review its current state and try again")
        self.current = current


def as_dict(row: Incident) -> dict:
    return {"id": row.id, "title": row.title, "description": row.description, "severity": row.severity,
            "status": row.status, "assignee": row.assignee, "created_by": row.created_by,
            "created_at": _utc(row.created_at), "updated_at": _utc(row.updated_at),
            "acknowledged_at": _utc(row.acknowledged_at), "resolved_at": _utc(row.resolved_at),
            "closed_at": _utc(row.closed_at), "links": list(row.links or []), "version": row.version}


def _json(d: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in d.items()}


def sla_targets(engine) -> dict:
    from auditbook.monitor.settings import get
    return get(engine, "sla")


@dataclass
class SlaState:
    acknowledge_due: dt.datetime
    resolve_due: dt.datetime
    time_to_acknowledge: Optional[dt.timedelta]
    time_to_resolve: Optional[dt.timedelta]
    acknowledge_breached: bool
    resolve_breached: bool

    @property
    def breached(self) -> bool:
        return self.acknowledge_breached or self.resolve_breached


def sla_state(incident: dict, targets: dict, at: Optional[dt.datetime] = None) -> SlaState:
    at = at or now()
    t = targets[incident["severity"]]
    created = incident["created_at"]
    ack_due = created + dt.timedelta(minutes=t["acknowledge"])
    res_due = created + dt.timedelta(minutes=t["resolve"])
    acked, resolved = incident["acknowledged_at"], incident["resolved_at"]
    return SlaState(ack_due, res_due, (acked - created) if acked else None, (resolved - created) if resolved else None,
                    (acked or at) > ack_due, (resolved or at) > res_due)


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
    title = _clean(title, "title", required=True, limit=300)
    if severity not in SEVERITIES:
        raise UserError(f"severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
    for link in links or []:
        if link.get("kind") not in ("criterion", "finding", "alert") or not link.get("ref"):
            raise UserError(f"links: {link!r} is not a criterion, finding or alert reference")
    stamp = now()
    with Session(engine) as session, session.begin():
        row = Incident(title=title, description=_clean(description, "description") or "", severity=severity,
                       status="open", assignee=_clean(assignee, "assignee", limit=200), created_by=actor.name,
                       created_at=stamp, updated_at=stamp, links=list(links or []), version=1)
        session.add(row)
        session.flush()
        out = as_dict(row)
        record(session, actor, "create", "incident", row.id, after=_json(out), at=stamp)
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


def from_alert(engine, actor: Actor, alert_id: int) -> dict:
    with Session(engine) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            raise UserError(f"alert: no alert {alert_id}")
        links = [{"kind": "alert", "ref": str(alert.id), "label": f"{alert.rule}: {alert.summary}"[:300]}]
        links += [{"kind": "criterion", "ref": c, "label": c} for c in str(alert.soc2_control).split(",") if c.strip()]
        severity = alert.severity if alert.severity in SEVERITIES else "medium"
        title, description = f"{alert.rule}: {alert.summary}"[:300], alert.summary
    return create(engine, actor, title=title, severity=severity, description=description, links=links)


def get(engine, incident_id: int) -> dict:
    with Session(engine) as session:
        row = session.get(Incident, incident_id)
        if row is None:
            raise UserError(f"incident: no incident {incident_id}")
        return as_dict(row)


def list_incidents(engine, statuses: Optional[tuple[str, ...]] = None) -> list[dict]:
    with Session(engine) as session:
        q = select(Incident).order_by(Incident.id.desc())
        if statuses:
            q = q.where(Incident.status.in_(statuses))
        return [as_dict(r) for r in session.scalars(q)]


class _Stale(Exception):
    pass


def _save(session: Session, incident_id: int, version: int, values: dict) -> None:
    """UPDATE ... WHERE version = the version the caller saw: atomic in every database, so of two
    concurrent writers exactly one wins (the other's transaction is rolled back)."""
    done = session.execute(sa_update(Incident).where(Incident.id == incident_id, Incident.version == version)
                           .values(**values, version=version + 1))
    if done.rowcount != 1:
        raise _Stale()


def update(engine, actor: Actor, incident_id: int, version: int, **changes) -> dict:
    """Change status, severity, assignee, title or description. `version` is the version the caller
    saw: if the incident changed since, nothing is saved and Conflict carries its current state."""
    authorize(actor, "update_incident")
    allowed = {"status", "severity", "assignee", "title", "description"}
    unknown = set(changes) - allowed
    if unknown:
        raise UserError(f"{sorted(unknown)[0]}: not a field of an incident")
    current = get(engine, incident_id)
    if current["version"] != version:
        raise Conflict(current)
    stamp = now()
    values: dict = {}
    if "status" in changes and changes["status"] != current["status"]:
        target = changes["status"]
        if target not in TRANSITIONS.get(current["status"], ()):
            raise UserError(f"status: cannot go from {current['status']} to {target} "
                            f"(allowed: {', '.join(TRANSITIONS[current['status']]) or 'none'})")
        values["status"] = target
        if current["acknowledged_at"] is None:
            values["acknowledged_at"] = stamp  # leaving "open" acknowledges it
        if target == "resolved":
            values["resolved_at"] = stamp
        elif target == "investigating" and current["status"] == "resolved":
            values["resolved_at"] = None  # reopened
        if target == "closed":
            values["closed_at"] = stamp
    if "severity" in changes and changes["severity"] != current["severity"]:
        if changes["severity"] not in SEVERITIES:
            raise UserError(f"severity: {changes['severity']!r} is not one of {', '.join(SEVERITIES)}")
        values["severity"] = changes["severity"]
    if "assignee" in changes and _clean(changes["assignee"], "assignee", limit=200) != current["assignee"]:
        values["assignee"] = _clean(changes["assignee"], "assignee", limit=200)
    if "title" in changes and _clean(changes["title"], "title", required=True, limit=300) != current["title"]:
        values["title"] = _clean(changes["title"], "title", required=True, limit=300)
    if "description" in changes and (_clean(changes["description"], "description") or "") != current["description"]:
        values["description"] = _clean(changes["description"], "description") or ""
    if not values:
        return current
    try:
        with Session(engine) as session, session.begin():
            _save(session, incident_id, version, {**values, "updated_at": stamp})
            record(session, actor, "update", "incident", incident_id, at=stamp,
                   before=_json({k: current[k] for k in values}), after=_json(values))
    except _Stale:
        raise Conflict(get(engine, incident_id))
    return get(engine, incident_id)


def add_note(engine, actor: Actor, incident_id: int, text: str) -> None:
    """A note on the timeline. Notes never conflict: they are appended, not edited."""
    authorize(actor, "note_incident")
    text = _clean(text, "note", required=True)
    with Session(engine) as session, session.begin():
        if session.get(Incident, incident_id) is None:
            raise UserError(f"incident: no incident {incident_id}")
        record(session, actor, "note", "incident", incident_id, note=text)


def add_link(engine, actor: Actor, incident_id: int, version: int, kind: str, ref: str, label: str = "") -> dict:
    authorize(actor, "update_incident")
    if kind not in ("criterion", "finding", "alert") or not ref:
        raise UserError(f"link: {kind!r} {ref!r} is not a criterion, finding or alert reference")
    current = get(engine, incident_id)
    if current["version"] != version:
        raise Conflict(current)
    link = {"kind": kind, "ref": ref, "label": label or ref}
    try:
        with Session(engine) as session, session.begin():
            _save(session, incident_id, version, {"links": [*current["links"], link], "updated_at": now()})
            record(session, actor, "link", "incident", incident_id, after=link)
    except _Stale:
        raise Conflict(get(engine, incident_id))
    return get(engine, incident_id)


SYSTEM = Actor("auditbook", "system")


def escalate_breaches(engine, at: Optional[dt.datetime] = None) -> list[dict]:
    """Active incidents past an SLA target are escalated once per target: an entry on the timeline
    and an IncidentSLABreached alert (which the notification channels page out)."""
    from sqlalchemy.orm import Session as _Session

    from auditbook.monitor.alerts import fire
    from auditbook.store.audit_log import trail
    at = at or now()
    targets = sla_targets(engine)
    out = []
    for inc in list_incidents(engine, ACTIVE):
        state = sla_state(inc, targets, at)
        done = {e["note"] for e in trail(engine, "incident", inc["id"]) if e["action"] == "escalate"}
        for kind, breached, due in (("acknowledge", state.acknowledge_breached, state.acknowledge_due),
                                    ("resolve", state.resolve_breached, state.resolve_due)):
            note = f"{kind} SLA breached (due {due:%Y-%m-%d %H:%M} UTC): escalated"
            if not breached or note in done:
                continue
            with _Session(engine) as session, session.begin():
                record(session, SYSTEM, "escalate", "incident", inc["id"], note=note, at=at)
                fire(session, rule="IncidentSLABreached", labels={"incident": str(inc["id"]), "sla": kind},
                     severity=inc["severity"], soc2_control="CC7.4", at=at,
                     summary=f"incident {inc['id']} ({inc['title'][:80]}) missed its {kind} target")
            out.append({"incident": inc["id"], "sla": kind})
    return out
