"""Alert triage in the store: the alerts past their triage target not yet escalated, marking them
escalated, and the triaged alerts of a period (for time-to-triage and false-positive statistics).
What the targets are and what escalating does is auditbook.monitor.triage's business."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import and_, not_, select, update

from auditbook.store.alert_filters import overdue_condition
from auditbook.store.db import utc
from auditbook.store.models import Alert
from auditbook.store.models_workflow import AlertSuppression


def overdue_unescalated(session, cutoffs: tuple, states: Iterable[str], at: dt.datetime,
                        skip_rules: Iterable[str] = ()) -> list[dict]:
    """Alerts in `states`, untriaged past their cutoff (overdue_condition), not suppressed at `at` and
    not escalated yet: {id, rule, severity, summary, fired_at}, oldest first."""
    q = (select(Alert.id, Alert.rule, Alert.severity, Alert.summary, Alert.fired_at)
         .outerjoin(AlertSuppression, AlertSuppression.id == Alert.suppression_id)
         .where(Alert.state.in_(tuple(states)), Alert.triage_escalated_at.is_(None), overdue_condition(cutoffs),
                not_(and_(Alert.suppression_id.is_not(None), AlertSuppression.until > at)))
         .order_by(Alert.fired_at, Alert.id))
    skip = tuple(skip_rules)
    if skip:
        q = q.where(Alert.rule.not_in(skip))
    return [{"id": i, "rule": rule, "severity": sev, "summary": summary, "fired_at": utc(fired)}
            for i, rule, sev, summary, fired in session.execute(q)]


def mark_escalated(session, alert_id: int, at: dt.datetime) -> bool:
    """Note that an alert's missed triage target was escalated (once: False if it already was)."""
    done = session.execute(update(Alert).where(Alert.id == alert_id, Alert.triage_escalated_at.is_(None))
                           .values(triage_escalated_at=at).execution_options(synchronize_session=False))
    return done.rowcount == 1


def triaged_between(session, since: Optional[dt.datetime], until: Optional[dt.datetime],
                    limit: int = 100000) -> list[dict]:
    """Alerts first seen in [since, until) with their triage: {id, rule, severity, state,
    triage_decision, first_seen, fired_at, triaged_at, resolved_at, escalated} (not triaged: None)."""
    q = select(Alert.id, Alert.rule, Alert.severity, Alert.state, Alert.triage_decision, Alert.first_seen,
               Alert.fired_at, Alert.triaged_at, Alert.resolved_at, Alert.triage_escalated_at).order_by(Alert.id).limit(limit)
    if since is not None:
        q = q.where(Alert.first_seen >= since)
    if until is not None:
        q = q.where(Alert.first_seen < until)
    return [{"id": i, "rule": rule, "severity": sev, "state": state, "triage_decision": decision,
             "first_seen": utc(first), "fired_at": utc(fired), "triaged_at": utc(triaged),
             "resolved_at": utc(resolved), "escalated": escalated is not None}
            for i, rule, sev, state, decision, first, fired, triaged, resolved, escalated in session.execute(q)]
