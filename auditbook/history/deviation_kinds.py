"""The deviations that are not a check's failure stretch nor a manual item's (docs/deviations.md), for
history.deviations:

- `alert triage` (CC7.3): each alert of the period that fired and was not triaged in time — no triage
  decision by the period's end (or today) once its target passed, resolved without one, or decided after
  its target (the control room's per-severity `triage` setting). A suppressed alert is not a deviation:
  `suppressed_alerts` lists those with the suppression's reason. An AlertTriageBreached alert is the
  escalation of another alert's missed target, which is the deviation: it is not one of its own.
- `log coverage` (CC7.2, CC8.1): each interval no CloudTrail log covered for an account and region in
  scope (history.populations.change_completeness's limits): changes made then are not in the change
  population and nothing alerted on them.
- the criteria a monitoring gap (days without any scan) belongs to: every criterion with automated checks.

Each has a stable id (deviation_id: a hash of what it is), so management's response attaches to the same
deviation in every later build."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Optional

from auditbook.catalog.model import Catalog
from auditbook.errors import UserError
from auditbook.history.period import Period
from auditbook.history.populations import change_completeness
from auditbook.store import period_events
from auditbook.store import settings as stored_settings
from auditbook.store import suppressions as stored_suppressions
from auditbook.store.session import reading

ALERT_CRITERIA = ("CC7.3",)
LOG_COVERAGE_CRITERIA = ("CC7.2", "CC8.1")
# minutes from when an alert fired to its triage decision, per severity (the `triage` setting's defaults;
# the control room's default triage targets too: auditbook.monitor.settings imports them from here)
DEFAULT_TRIAGE = {"critical": 15, "high": 60, "medium": 240, "low": 1440, "warning": 1440}
ESCALATION_RULE = "AlertTriageBreached"  # the escalation alert's rule (auditbook.monitor.triage.TRIAGE_BREACHED is this)


def deviation_id(*parts) -> str:
    """A deviation's stable id: 16 hex digits of the SHA-256 of its kind and identifying facts."""
    key = "|".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _iso(value) -> Optional[str]:
    return value.isoformat() if value is not None else None


def _bounds(period: Period) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(period.start, dt.time(), dt.timezone.utc)
    return start, dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)


def judged_at(period: Period, today: Optional[dt.date] = None) -> dt.datetime:
    """The moment a period is judged at: its end, or (while it runs) the end of `today` / now."""
    now = (dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), dt.timezone.utc) if today
           else dt.datetime.now(dt.timezone.utc).replace(microsecond=0))
    return min(_bounds(period)[1], now)


def in_catalog(catalog: Catalog, criteria) -> list[str]:
    """`criteria` that are criteria of the catalog, in its order."""
    wanted = set(criteria)
    return [c.id for c in catalog.controls if c.id in wanted]


def with_checks(catalog: Catalog) -> list[str]:
    """The criteria with automated checks: those a day without any scan leaves unmonitored."""
    return [c.id for c in catalog.controls if catalog.checks_for(c.id)]


def _base(ident: str, kind: str, criteria: list[str], **facts) -> dict:
    return {"id": ident, "kind": kind, "criteria": criteria, "check": None, "item": None, "account": None,
            "region": None, "resource": None, "resource_name": "", "severity": None, **facts}


# -- alert triage (CC7.3) ------------------------------------------------------------------------------

def triage_targets(engine) -> dict:
    """Minutes to triage per alert severity: the stored `triage` setting over its defaults."""
    with reading(engine) as session:
        return {**DEFAULT_TRIAGE, **(stored_settings.read(session, "triage") or {})}


def _clock_start(alert: dict) -> Optional[dt.datetime]:
    """When the alert's triage clock started: when it fired (None: it never did)."""
    if alert["fired_at"] is not None:
        return alert["fired_at"]
    return None if alert["state"] == "pending" else alert["first_seen"]


def _triage_problem(alert: dict, due: dt.datetime, at: dt.datetime) -> Optional[str]:
    """Why the alert's triage is a deviation, or None when it is not (yet) one."""
    if alert["triaged_at"] is not None:
        return "triaged late" if alert["triaged_at"] > due else None
    if alert["state"] == "resolved" and alert["resolved_at"] is not None and alert["resolved_at"] <= at:
        return "resolved without triage"
    return "not triaged" if at > due else None


def alert_deviation(alert: dict, targets: dict, period: Period, at: dt.datetime,
                    criteria: list[str]) -> Optional[dict]:
    """An alert of the period as a deviation of `criteria` when it fired and was not triaged in time;
    None when it was, never fired, is suppressed or is an escalation."""
    start = _clock_start(alert)
    if start is None or alert["suppression_id"] is not None or alert["rule"] == ESCALATION_RULE:
        return None
    minutes = int(targets.get(alert["severity"], targets["low"]))
    due = start + dt.timedelta(minutes=minutes)
    problem = _triage_problem(alert, due, at)
    if problem is None:
        return None
    decided = (f"decision {alert['triage_decision']} by {alert['triaged_by']} at {_iso(alert['triaged_at'])}"
               if alert["triaged_at"] else "no triage decision")
    what = (f"alert {alert['id']} {alert['rule']} ({alert['severity']}): {alert['summary']} — {problem}: "
            f"fired {_iso(start)}, target {minutes} min (due {_iso(due)}); {decided}; acknowledged by "
            f"{alert['acknowledged_by'] or 'nobody'}"
            + (f"; escalated {_iso(alert['triage_escalated_at'])}" if alert["triage_escalated_at"] else ""))
    labels = alert["labels"] or {}
    return _base(deviation_id("alert", alert["id"], _iso(alert["first_seen"])), "alert triage", criteria,
                 account=labels.get("account"), region=labels.get("region"), resource=f"alert-{alert['id']:09d}",
                 resource_name=f"alert {alert['id']} ({alert['rule']})", severity=alert["severity"], what=what,
                 **{"from": _iso(start), "until": _iso(alert["triaged_at"] or alert["resolved_at"]),
                    "state": problem, "existed_at_start_computed": start < _bounds(period)[0],
                    "triage": {"decision": alert["triage_decision"], "reason": alert["triage_reason"],
                               "triaged_by": alert["triaged_by"], "triaged_at": _iso(alert["triaged_at"]),
                               "acknowledged_by": alert["acknowledged_by"], "target_minutes": minutes,
                               "due": _iso(due)}})


def _period_alerts(engine, period: Period) -> list[dict]:
    since, until = _bounds(period)
    with reading(engine) as session:
        found = period_events.alerts_in(session, since, until)
    if len(found) > period_events.MAX_ROWS:
        raise UserError(f"alerts: more than {period_events.MAX_ROWS} in {period.label}; take a shorter period")
    return found


def alert_deviations(engine, catalog: Catalog, period: Period, today: Optional[dt.date] = None) -> list[dict]:
    """Each alert of the period not triaged in time (alert_deviation), a deviation of CC7.3."""
    criteria = in_catalog(catalog, ALERT_CRITERIA)
    targets, at = triage_targets(engine), judged_at(period, today)
    found = (alert_deviation(a, targets, period, at, criteria) for a in _period_alerts(engine, period))
    return [d for d in found if d is not None]


def suppressed_alerts(engine, period: Period) -> list[dict]:
    """The period's alerts silenced by a suppression (not deviations), each with the suppression's
    reason, who made it and until when."""
    alerts = [a for a in _period_alerts(engine, period) if a["suppression_id"] is not None]
    with reading(engine) as session:
        found = {i: stored_suppressions.get(session, i) for i in {a["suppression_id"] for a in alerts}}
    out = []
    for a in alerts:
        s = found.get(a["suppression_id"]) or {}
        out.append({"alert": a["id"], "rule": a["rule"], "severity": a["severity"], "summary": a["summary"],
                    "first_seen": _iso(a["first_seen"]), "suppression": a["suppression_id"],
                    "reason": s.get("reason"), "suppressed_by": s.get("created_by"),
                    "suppressed_until": _iso(s.get("until"))})
    return out


# -- log coverage (CC7.2, CC8.1) -----------------------------------------------------------------------

def coverage_deviation(limit: dict, period: Period, criteria: list[str]) -> dict:
    """An interval no CloudTrail log covered for one account and region (a completeness limit)."""
    begun = dt.datetime.fromisoformat(limit["from"])
    what = (f"no CloudTrail log covered account {limit['account']} region {limit['region']} from {limit['from']} "
            f"to {limit['to']}: {limit['reason']}; changes made then are not in the change population")
    return _base(deviation_id("log coverage", limit["account"], limit["region"], limit["from"]), "log coverage",
                 criteria, account=limit["account"], region=limit["region"], what=what,
                 **{"from": limit["from"], "until": limit["to"], "state": "not covered",
                    "existed_at_start_computed": begun <= _bounds(period)[0]})


def log_coverage_deviations(engine, catalog: Catalog, period: Period,
                            today: Optional[dt.date] = None) -> list[dict]:
    """Each interval no CloudTrail log covered for an account/region in scope over the period."""
    criteria = in_catalog(catalog, LOG_COVERAGE_CRITERIA)
    limits = change_completeness(engine, period, now=judged_at(period, today))["limits"]
    return [coverage_deviation(x, period, criteria) for x in limits]
