"""Alerts in the store (`alerts`): reads and writes, each a plain dict. What a state means, when an
alert fires, counts or resolves, is auditbook.monitor's business; this module only runs the queries."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import func, insert, select, update

from auditbook.store.db import utc
from auditbook.store.models import Alert
from auditbook.store.models_workflow import AlertSuppression
from auditbook.store.suppressions import matching

SOC2_CONTROL_LENGTH = Alert.__table__.c.soc2_control.type.length  # rules are held to it when they load
DEDUP_KEY_LENGTH = Alert.__table__.c.dedup_key.type.length
_NO_SYNC = {"synchronize_session": False}  # no ORM objects are kept in these sessions: nothing to refresh


ASSIGNEE_LENGTH = Alert.__table__.c.assignee.type.length
REASON_LENGTH = Alert.__table__.c.triage_reason.type.length


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _as_dict(a, suppression_until: Optional[dt.datetime] = None, at: Optional[dt.datetime] = None) -> dict:
    """An alert as a dict; `suppressed_until` is the end of the suppression silencing it, None when
    none is in force at `at` (now)."""
    until = utc(suppression_until)
    return {"id": a.id, "rule": a.rule, "state": a.state, "severity": a.severity, "soc2_control": a.soc2_control,
            "labels": dict(a.labels or {}), "summary": a.summary, "first_seen": utc(a.first_seen),
            "last_seen": utc(a.last_seen), "count": a.count, "evidence": list(a.evidence or []),
            "acknowledged_by": a.acknowledged_by, "acknowledged_at": utc(a.acknowledged_at),
            "resolved_at": utc(a.resolved_at), "version": a.version, "dedup_key": a.dedup_key,
            "assignee": a.assignee, "triage_decision": a.triage_decision, "triage_reason": a.triage_reason,
            "triaged_by": a.triaged_by, "triaged_at": utc(a.triaged_at),
            "triage_escalated_at": utc(a.triage_escalated_at), "fired_at": utc(a.fired_at),
            "incident_id": a.incident_id,
            "suppression_id": a.suppression_id,
            "suppressed_until": until if until is not None and until > (at or now()) else None}


def with_suppression():
    """SELECT an alert and the end of its suppression (NULL: none), for _as_dict."""
    return (select(Alert, AlertSuppression.until).execution_options(populate_existing=True)
            .outerjoin(AlertSuppression, AlertSuppression.id == Alert.suppression_id))


def as_dicts(session, q, at: Optional[dt.datetime] = None) -> list[dict]:
    """The rows of a with_suppression() query as dicts."""
    at = at or now()
    return [_as_dict(a, until, at) for a, until in session.execute(q)]


def get(session, alert_id: int) -> Optional[dict]:
    found = as_dicts(session, with_suppression().where(Alert.id == alert_id))
    return found[0] if found else None


def listing(session, states: Optional[Iterable[str]] = None, rule: Optional[str] = None) -> list[dict]:
    """Alerts, newest first (by last seen); only those in `states`, and of `rule`, when given."""
    q = with_suppression().order_by(Alert.last_seen.desc(), Alert.id.desc())
    if states:
        q = q.where(Alert.state.in_(tuple(states)))
    if rule is not None:
        q = q.where(Alert.rule == rule)
    return as_dicts(session, q)


def open_by_key(session, dedup_key: str, states: Iterable[str]) -> Optional[dict]:
    """The alert with this dedup key in one of `states` (at most one is open at a time)."""
    q = (select(Alert).execution_options(populate_existing=True)
         .where(Alert.dedup_key == dedup_key, Alert.state.in_(tuple(states))).order_by(Alert.id.desc()).limit(1))
    row = session.scalars(q).first()
    return None if row is None else _as_dict(row)  # (whether it is suppressed is not read here)


def insert_alert(session, *, rule: str, dedup_key: str, state: str, severity: str, soc2_control: str,
                 labels: dict, summary: str, at: dt.datetime, evidence: list) -> int:
    """A new alert, seen once at `at`; its id. Firing: it fired at `at`, or now if that is later (a
    backlog's old events are raised now). An active suppression of its rule covering its labels
    silences it from the start."""
    done = session.execute(insert(Alert).values(
        rule=rule, dedup_key=dedup_key, state=state, severity=severity, soc2_control=soc2_control, labels=labels,
        summary=summary, first_seen=at, last_seen=at, count=1, evidence=evidence, version=1,
        fired_at=max(at, now()) if state == "firing" else None,
        suppression_id=matching(session, rule, labels, max(at, now()))))
    return done.inserted_primary_key[0]


def change(session, alert_id: int, values: dict, *, version: Optional[int] = None,
           state: Optional[str] = None, states: Optional[Iterable[str]] = None, bump: bool = True) -> bool:
    """Set `values` and move the version on by one (bump=False: one more occurrence, not a change
    anyone must see before acting) — only while the alert is still at `version` and in `state` (or
    one of `states`), when given (optimistic: of two writers exactly one wins). True if it changed."""
    q = update(Alert).where(Alert.id == alert_id)
    if version is not None:
        q = q.where(Alert.version == version)
    if state is not None:
        q = q.where(Alert.state == state)
    if states is not None:
        q = q.where(Alert.state.in_(tuple(states)))
    if values.get("state") == "firing":  # a pending alert starts firing now (the triage clock starts)
        values = {"fired_at": func.coalesce(Alert.fired_at, max(values.get("last_seen") or now(), now())), **values}
    values = {**values, "version": Alert.version + 1} if bump else values
    done = session.execute(q.values(**values).execution_options(**_NO_SYNC))
    return done.rowcount == 1


def resolve_by_key(session, dedup_key: str, states: Iterable[str], at: dt.datetime) -> int:
    """Resolve the alert with this dedup key while it is in one of `states`; how many changed."""
    done = session.execute(update(Alert).where(Alert.dedup_key == dedup_key, Alert.state.in_(tuple(states)))
                           .values(state="resolved", resolved_at=at, version=Alert.version + 1)
                           .execution_options(**_NO_SYNC))
    return done.rowcount


def resolve_ids(session, ids: Iterable[int], at: dt.datetime) -> int:
    ids = sorted(set(ids))
    if not ids:
        return 0
    done = session.execute(update(Alert).where(Alert.id.in_(ids), Alert.state != "resolved")
                           .values(state="resolved", resolved_at=at, version=Alert.version + 1)
                           .execution_options(**_NO_SYNC))
    return done.rowcount


def resolve_quiet(session, rule: str, state: str, last_seen_before: dt.datetime, at: dt.datetime) -> int:
    """Resolve the alerts of `rule` in `state` last seen before `last_seen_before`; how many."""
    done = session.execute(update(Alert).where(Alert.rule == rule, Alert.state == state,
                                               Alert.last_seen < last_seen_before)
                           .values(state="resolved", resolved_at=at, version=Alert.version + 1)
                           .execution_options(**_NO_SYNC))
    return done.rowcount


def counts(session) -> list[tuple[str, str, str, int]]:
    """(rule, state, severity, number of alerts) for every combination present."""
    rows = session.execute(select(Alert.rule, Alert.state, Alert.severity, func.count())
                           .group_by(Alert.rule, Alert.state, Alert.severity)
                           .order_by(Alert.rule, Alert.state, Alert.severity))
    return [(rule, state, severity, n) for rule, state, severity, n in rows]
