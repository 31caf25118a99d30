"""Alerts in the store (`alerts`): reads and writes, each a plain dict. What a state means, when an
alert fires, counts or resolves, is auditbook.monitor's business; this module only runs the queries."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import func, insert, select, update

from auditbook.store.db import utc
from auditbook.store.models import Alert

SOC2_CONTROL_LENGTH = Alert.__table__.c.soc2_control.type.length  # rules are held to it when they load
DEDUP_KEY_LENGTH = Alert.__table__.c.dedup_key.type.length
_NO_SYNC = {"synchronize_session": False}  # no ORM objects are kept in these sessions: nothing to refresh


def _as_dict(a) -> dict:
    return {"id": a.id, "rule": a.rule, "state": a.state, "severity": a.severity, "soc2_control": a.soc2_control,
            "labels": dict(a.labels or {}), "summary": a.summary, "first_seen": utc(a.first_seen),
            "last_seen": utc(a.last_seen), "count": a.count, "evidence": list(a.evidence or []),
            "acknowledged_by": a.acknowledged_by, "acknowledged_at": utc(a.acknowledged_at),
            "resolved_at": utc(a.resolved_at), "version": a.version, "dedup_key": a.dedup_key}


def get(session, alert_id: int) -> Optional[dict]:
    row = session.get(Alert, alert_id, populate_existing=True)
    return None if row is None else _as_dict(row)


def listing(session, states: Optional[Iterable[str]] = None, rule: Optional[str] = None) -> list[dict]:
    """Alerts, newest first (by last seen); only those in `states`, and of `rule`, when given."""
    q = select(Alert).execution_options(populate_existing=True).order_by(Alert.last_seen.desc(), Alert.id.desc())
    if states:
        q = q.where(Alert.state.in_(tuple(states)))
    if rule is not None:
        q = q.where(Alert.rule == rule)
    return [_as_dict(a) for a in session.scalars(q)]


def open_by_key(session, dedup_key: str, states: Iterable[str]) -> Optional[dict]:
    """The alert with this dedup key in one of `states` (at most one is open at a time)."""
    q = (select(Alert).execution_options(populate_existing=True)
         .where(Alert.dedup_key == dedup_key, Alert.state.in_(tuple(states))).order_by(Alert.id.desc()).limit(1))
    row = session.scalars(q).first()
    return None if row is None else _as_dict(row)


def insert_alert(session, *, rule: str, dedup_key: str, state: str, severity: str, soc2_control: str,
                 labels: dict, summary: str, at: dt.datetime, evidence: list) -> int:
    """A new alert, seen once at `at`; its id."""
    done = session.execute(insert(Alert).values(
        rule=rule, dedup_key=dedup_key, state=state, severity=severity, soc2_control=soc2_control, labels=labels,
        summary=summary, first_seen=at, last_seen=at, count=1, evidence=evidence, version=1))
    return done.inserted_primary_key[0]


def change(session, alert_id: int, values: dict, *, version: Optional[int] = None,
           state: Optional[str] = None) -> bool:
    """Set `values` and move the version on by one — only while the alert is still at `version`
    and in `state`, when given (optimistic: of two writers exactly one wins). True if it changed."""
    q = update(Alert).where(Alert.id == alert_id)
    if version is not None:
        q = q.where(Alert.version == version)
    if state is not None:
        q = q.where(Alert.state == state)
    done = session.execute(q.values(**values, version=Alert.version + 1).execution_options(**_NO_SYNC))
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
