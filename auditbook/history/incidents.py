"""Incidents over an audit period, the evidence for CC7.3–CC7.5: every incident open at any time in
the period, its SLA breaches (judged by history.sla, the rule monitoring escalates by), its
post-mortem (category, impact, notifications, root cause, lessons learned, action items, the
attachments' names and SHA-256) and its timeline from the audit trail, read in one unit of work."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from auditbook.history.period import Period
from auditbook.history.sla import sla_state, targets_in_force
from auditbook.store import (
    audit_log,
    incident_actions,
    incident_attachments,
    incidents,
    settings,
)
from auditbook.store.session import reading

INCIDENT_CRITERIA = ("CC7.3", "CC7.4", "CC7.5")  # evaluating, responding to and recovering from incidents


def _concerns(incident: dict, criterion: Optional[str]) -> bool:
    if not criterion or criterion in INCIDENT_CRITERIA:
        return True
    return criterion in {link["ref"] for link in incident["links"] if link["kind"] == "criterion"}


def incidents_in_period(engine, period: Period, criterion: Optional[str] = None) -> list[dict]:
    """Incidents open at any time in the period (created by its end, not closed before its start),
    each with its SLA breaches and timeline. With `criterion`: those linked to it, or all of them
    for the incident-response criteria (CC7.3–CC7.5)."""
    start = dt.datetime.combine(period.start, dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    with reading(engine) as session:
        found = [i for i in incidents.listing(session)
                 if i["created_at"] < end and (i["closed_at"] is None or i["closed_at"] >= start)
                 and _concerns(i, criterion)]
        targets = targets_in_force(settings.read(session, "sla"))
        timelines = audit_log.trails(session, "incident", [i["id"] for i in found])
        actions = incident_actions.of_incidents(session, [i["id"] for i in found])
        attachments = incident_attachments.of_incidents(session, [i["id"] for i in found])
    at = min(end, dt.datetime.now(dt.timezone.utc))
    out = []
    for incident in sorted(found, key=lambda i: i["id"]):
        state = sla_state(incident, targets, at)
        out.append({**incident, "acknowledge_breached": state.acknowledge_breached,
                    "resolve_breached": state.resolve_breached, "actions": actions[incident["id"]],
                    "attachments": attachments[incident["id"]], "timeline": timelines[str(incident["id"])]})
    return out
