"""The wall screen's board: the open alerts by severity then age (the count and the list from one
reading, so they agree, and how many more were cut), the critical alerts nobody has acknowledged
yet, and the active incidents with their age, assignee and SLA countdown."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from auditbook.history.sla import sla_state
from auditbook.monitor import incidents
from auditbook.monitor.alerts import OPEN_STATES
from auditbook.store import wall as stored
from auditbook.store.session import reading

RANK = stored.SEVERITY_RANK


def incident_clock(incident: dict, targets: dict, at: dt.datetime) -> dict:
    """The SLA clock of an incident: the stage it is in (acknowledge, then resolve), when that is due,
    the time left (negative: overdue), and whether any target is breached."""
    state = sla_state(incident, targets, at)
    if incident["acknowledged_at"] is None:
        stage, due = "acknowledge", state.acknowledge_due
    else:
        stage, due = "resolve", state.resolve_due
    return {"stage": stage, "due": due, "left": due - at, "breached": state.breached,
            "breached_stage": "acknowledge" if state.acknowledge_breached else
            "resolve" if state.resolve_breached else None, "age": at - incident["created_at"]}


def board(engine, *, alerts: int = 8, incidents_shown: int = 6, at: Optional[dt.datetime] = None) -> dict:
    """What the wall shows now: {"alerts": {"total", "by_severity", "shown", "more"},
    "critical": {"shown", "total"}, "incidents": {"total", "shown", "more"}}."""
    at = at or dt.datetime.now(dt.timezone.utc)
    with reading(engine) as session:  # one reading: the header's count and the list agree
        by_severity = stored.counts(session, OPEN_STATES, at)
        shown = stored.first(session, OPEN_STATES, at, alerts)
        critical, critical_total = stored.unacknowledged(session, "critical", at, 3)
    total = sum(by_severity.values())
    active = incidents.list_incidents(engine, incidents.ACTIVE)
    targets = incidents.sla_targets(engine)
    active.sort(key=lambda i: (RANK.get(i["severity"], len(RANK)), i["created_at"], i["id"]))
    cut = [{**i, "clock": incident_clock(i, targets, at)} for i in active[:incidents_shown]]
    return {"at": at,
            "alerts": {"total": total, "by_severity": by_severity, "shown": shown, "more": total - len(shown)},
            "critical": {"shown": critical, "total": critical_total},
            "incidents": {"total": len(active), "shown": cut, "more": len(active) - len(cut)}}
