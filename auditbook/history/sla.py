"""Incident severities and their SLA targets (minutes to acknowledge and to resolve): the defaults,
and an incident's state against its targets. Pure: the targets themselves are a setting
(auditbook.monitor.settings). It lives in history/, below both monitoring (which escalates breaches)
and the packet (which reports them), so both judge an incident by this one rule."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

SEVERITIES = ("critical", "high", "medium", "low")
# minutes to acknowledge (leave "open") and to resolve
DEFAULT_SLA = {"critical": {"acknowledge": 15, "resolve": 240}, "high": {"acknowledge": 60, "resolve": 1440},
               "medium": {"acknowledge": 240, "resolve": 4320}, "low": {"acknowledge": 1440, "resolve": 20160}}


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


def targets_in_force(stored: Optional[dict]) -> dict:
    """The SLA targets in force: the stored `sla` setting over the defaults (per severity)."""
    return {**DEFAULT_SLA, **(stored or {})}


def sla_state(incident: dict, targets: dict, at: Optional[dt.datetime] = None) -> SlaState:
    at = at or dt.datetime.now(dt.timezone.utc)
    t = targets[incident["severity"]]
    created = incident["created_at"]
    ack_due = created + dt.timedelta(minutes=t["acknowledge"])
    res_due = created + dt.timedelta(minutes=t["resolve"])
    acked, resolved = incident["acknowledged_at"], incident["resolved_at"]
    return SlaState(ack_due, res_due, (acked - created) if acked else None, (resolved - created) if resolved else None,
                    (acked or at) > ack_due, (resolved or at) > res_due)


def valid_targets(value: dict) -> dict:
    """SLA targets for every severity (a missing one: its default), each a whole number of minutes
    ≥ 1 with resolve ≥ acknowledge; ValueError naming the first that is not."""
    out = {}
    for severity in SEVERITIES:
        target = value.get(severity, DEFAULT_SLA[severity])
        if not isinstance(target, dict):
            raise ValueError(f"sla.{severity}: {target!r} is not a mapping of acknowledge and resolve minutes")
        for kind in ("acknowledge", "resolve"):
            minutes = target.get(kind)
            if not isinstance(minutes, int) or minutes < 1:
                raise ValueError(f"sla.{severity}.{kind}: {minutes!r} is not a whole number of minutes ≥ 1")
        if target["resolve"] < target["acknowledge"]:
            raise ValueError(f"sla.{severity}.resolve: shorter than the time to acknowledge")
        out[severity] = {"acknowledge": target["acknowledge"], "resolve": target["resolve"]}
    return out
