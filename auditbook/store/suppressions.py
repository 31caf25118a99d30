"""Alert suppressions in the store (`alert_suppressions`, and `alerts.suppression_id`): reads and
writes, each a plain dict. Who may suppress, for how long and why is auditbook.monitor.suppressions'
business; this module runs the queries (and the one rule the store applies itself: a new alert whose
labels include every label of an active suppression of its rule is born suppressed)."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import insert, select, update

from auditbook.store.db import utc
from auditbook.store.models import Alert
from auditbook.store.models_workflow import AlertSuppression

REASON_LENGTH = AlertSuppression.__table__.c.reason.type.length
RULE_LENGTH = AlertSuppression.__table__.c.rule.type.length
_NO_SYNC = {"synchronize_session": False}


def _as_dict(row) -> dict:
    return {"id": row.id, "rule": row.rule, "labels": dict(row.labels or {}), "until": utc(row.until),
            "reason": row.reason, "created_by": row.created_by, "created_at": utc(row.created_at),
            "lifted_by": row.lifted_by, "lifted_at": utc(row.lifted_at), "version": row.version}


def covers(suppression_labels: dict, alert_labels: dict) -> bool:
    """A suppression covers an alert of its rule when the alert carries every one of its labels."""
    return all(k in alert_labels and str(alert_labels[k]) == str(v) for k, v in suppression_labels.items())


def get(session, suppression_id: int) -> Optional[dict]:
    row = session.get(AlertSuppression, suppression_id, populate_existing=True)
    return None if row is None else _as_dict(row)


def listing(session, at: dt.datetime, active_only: bool = True, limit: int = 500) -> list[dict]:
    """Suppressions, the latest to lapse first; only those still in force at `at` when active_only."""
    q = (select(AlertSuppression).execution_options(populate_existing=True)
         .order_by(AlertSuppression.until.desc(), AlertSuppression.id.desc()).limit(limit))
    if active_only:
        q = q.where(AlertSuppression.until > at)
    return [_as_dict(r) for r in session.scalars(q)]


def active_for_rule(session, rule: str, at: dt.datetime) -> list[dict]:
    q = (select(AlertSuppression).execution_options(populate_existing=True)
         .where(AlertSuppression.rule == rule, AlertSuppression.until > at)
         .order_by(AlertSuppression.until.desc(), AlertSuppression.id))
    return [_as_dict(r) for r in session.scalars(q)]


def matching(session, rule: str, labels: dict, at: dt.datetime) -> Optional[int]:
    """The id of the active suppression of `rule` covering `labels` that lasts longest; None if none."""
    for s in active_for_rule(session, rule, at):
        if covers(s["labels"], labels):
            return s["id"]
    return None


def insert_suppression(session, *, rule: str, labels: dict, until: dt.datetime, reason: str, created_by: str,
                       at: dt.datetime) -> dict:
    done = session.execute(insert(AlertSuppression).values(rule=rule, labels=labels, until=until, reason=reason,
                                                           created_by=created_by, created_at=at, version=1))
    return get(session, done.inserted_primary_key[0])


def lift(session, suppression_id: int, version: int, *, by: str, at: dt.datetime) -> bool:
    """End a suppression now (only while it is still at `version` and in force). True if it changed."""
    done = session.execute(update(AlertSuppression)
                           .where(AlertSuppression.id == suppression_id, AlertSuppression.version == version,
                                  AlertSuppression.until > at)
                           .values(until=at, lifted_by=by, lifted_at=at, version=version + 1)
                           .execution_options(**_NO_SYNC))
    return done.rowcount == 1


def open_alerts_of_rule(session, rule: str, states: Iterable[str], at: dt.datetime) -> list[dict]:
    """(id, labels, the end of the suppression in force on it or None) of the rule's alerts in `states`."""
    rows = session.execute(select(Alert.id, Alert.labels, AlertSuppression.until)
                           .outerjoin(AlertSuppression, AlertSuppression.id == Alert.suppression_id)
                           .where(Alert.rule == rule, Alert.state.in_(tuple(states))).order_by(Alert.id))
    return [{"id": i, "labels": dict(labels or {}), "suppressed_until": u if u is not None and u > at else None}
            for i, labels, u in ((i, labels, utc(u)) for i, labels, u in rows)]


def attach(session, alert_ids: Iterable[int], suppression_id: int) -> int:
    """Mark alerts as silenced by a suppression (not a change of their state or triage: no new version)."""
    ids, changed = sorted(set(alert_ids)), 0
    for start in range(0, len(ids), 500):
        done = session.execute(update(Alert).where(Alert.id.in_(ids[start:start + 500]))
                               .values(suppression_id=suppression_id).execution_options(**_NO_SYNC))
        changed += done.rowcount
    return changed


def attached(session, suppression_id: int) -> list[dict]:
    """{id, labels} of every alert a suppression silences (or silenced), oldest first."""
    rows = session.execute(select(Alert.id, Alert.labels).where(Alert.suppression_id == suppression_id)
                           .order_by(Alert.id))
    return [{"id": i, "labels": dict(labels or {})} for i, labels in rows]


def alerts_of(session, suppression_id: int, limit: int = 1000) -> list[int]:
    """The ids of the alerts a suppression silences (or silenced), oldest first."""
    return list(session.scalars(select(Alert.id).where(Alert.suppression_id == suppression_id)
                                .order_by(Alert.id).limit(limit)))
