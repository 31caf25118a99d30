"""What the wall screen reads of the alerts: how many are open per severity, the first few by severity
then age, and the critical ones nobody has acknowledged yet — each counted and sorted by the database
(a store may hold ten thousand open alerts). Suppressed alerts (a suppression in force) are left out."""
from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import case, func, or_, select

from auditbook.store.db import utc
from auditbook.store.models import Alert
from auditbook.store.models_workflow import AlertSuppression

SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _shown(states: Iterable[str], at: dt.datetime):
    """Alerts in `states` that no suppression silences at `at`."""
    silenced = (select(AlertSuppression.id)
                .where(AlertSuppression.id == Alert.suppression_id, AlertSuppression.until > at).exists())
    return (Alert.state.in_(tuple(states)), or_(Alert.suppression_id.is_(None), ~silenced))


def _row(a) -> dict:
    return {"id": a.id, "rule": a.rule, "state": a.state, "severity": a.severity, "summary": a.summary,
            "labels": dict(a.labels or {}), "first_seen": utc(a.first_seen), "last_seen": utc(a.last_seen),
            "count": a.count, "assignee": a.assignee}


def counts(session, states: Iterable[str], at: dt.datetime) -> dict[str, int]:
    """{severity: alerts} of the alerts shown."""
    q = select(Alert.severity, func.count()).where(*_shown(states, at)).group_by(Alert.severity)
    return dict(session.execute(q).all())


def first(session, states: Iterable[str], at: dt.datetime, limit: int) -> list[dict]:
    """The first `limit` alerts shown, most severe first, then the oldest (by first seen)."""
    rank = case(SEVERITY_RANK, value=Alert.severity, else_=len(SEVERITY_RANK))
    q = (select(Alert.id, Alert.rule, Alert.state, Alert.severity, Alert.summary, Alert.labels, Alert.first_seen,
                Alert.last_seen, Alert.count, Alert.assignee)
         .where(*_shown(states, at)).order_by(rank, Alert.first_seen, Alert.id).limit(limit))
    return [_row(a) for a in session.execute(q)]


def unacknowledged(session, severity: str, at: dt.datetime, limit: int) -> tuple[list[dict], int]:
    """Alerts of `severity` still firing and not triaged (nobody has acknowledged them anywhere),
    newest first: (the first `limit`, how many)."""
    where = (*_shown(("firing",), at), Alert.severity == severity, Alert.triage_decision.is_(None))
    total = session.scalar(select(func.count()).select_from(Alert).where(*where))
    q = (select(Alert.id, Alert.rule, Alert.state, Alert.severity, Alert.summary, Alert.labels, Alert.first_seen,
                Alert.last_seen, Alert.count, Alert.assignee)
         .where(*where).order_by(Alert.first_seen.desc(), Alert.id.desc()).limit(limit))
    return [_row(a) for a in session.execute(q)], total or 0
