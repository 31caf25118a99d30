"""Alerts through filters, a page at a time (what the alerts page and `alerts list` show): counted
and paged in SQL, never loaded whole. What the filters mean for a person (names, validation) is
auditbook.monitor.triage's business; an AlertQuery here is already checked."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import and_, case, false, func, not_, or_, select

from auditbook.store.alerts import as_dicts, with_suppression
from auditbook.store.models import Alert
from auditbook.store.models_workflow import AlertSuppression

SEVERITY_ORDER = ("critical", "high", "medium", "low", "warning")  # most severe first; others after
UNTRIAGED, OVERDUE = "untriaged", "overdue"


@dataclass(frozen=True)
class AlertQuery:
    """Filters (empty: any). `triage`: "untriaged", "overdue" (untriaged past its target) or a
    decision; `suppressed`: True only suppressed, False none, None both. `cutoffs`: per severity, the
    time it fired before which an untriaged alert is overdue (for "overdue"; "*": any other severity)."""
    states: tuple = ()
    severities: tuple = ()
    rules: tuple = ()
    accounts: tuple = ()
    regions: tuple = ()
    assignee: Optional[str] = None  # "" : unassigned
    since: Optional[dt.datetime] = None  # seen at or after (last_seen)
    until: Optional[dt.datetime] = None  # seen before (first_seen)
    triage: Optional[str] = None
    suppressed: Optional[bool] = None
    cutoffs: tuple = ()  # ((severity, datetime), …)
    at: Optional[dt.datetime] = None  # "now", for suppressions in force


def _label(name: str):
    return Alert.labels[name].as_string()


def _suppressed(at: dt.datetime):
    return and_(Alert.suppression_id.is_not(None), AlertSuppression.until > at)


def overdue_condition(cutoffs: tuple):
    """Untriaged and firing since before its severity's cutoff (fired_at: never while pending)."""
    named = [sev for sev, _ in cutoffs if sev != "*"]
    parts = [and_(Alert.severity == sev, Alert.fired_at < when) for sev, when in cutoffs if sev != "*"]
    parts += [and_(Alert.severity.not_in(named), Alert.fired_at < when) for sev, when in cutoffs if sev == "*"]
    return and_(Alert.triage_decision.is_(None), or_(*parts) if parts else false())


def _where(q, f: AlertQuery):
    at = f.at or dt.datetime.now(dt.timezone.utc)
    for column, values in ((Alert.state, f.states), (Alert.severity, f.severities), (Alert.rule, f.rules),
                           (_label("account"), f.accounts), (_label("region"), f.regions)):
        if values:
            q = q.where(column.in_(tuple(values)))
    if f.assignee is not None:
        q = q.where(Alert.assignee.is_(None) if f.assignee == "" else Alert.assignee == f.assignee)
    if f.since is not None:
        q = q.where(Alert.last_seen >= f.since)
    if f.until is not None:
        q = q.where(Alert.first_seen < f.until)
    if f.triage == UNTRIAGED:
        q = q.where(Alert.triage_decision.is_(None))
    elif f.triage == OVERDUE:
        q = q.where(overdue_condition(f.cutoffs))
    elif f.triage:
        q = q.where(Alert.triage_decision == f.triage)
    if f.suppressed is not None:
        q = q.where(_suppressed(at) if f.suppressed else not_(_suppressed(at)))
    return q


def _severity_rank():
    return case({s: i for i, s in enumerate(SEVERITY_ORDER)}, value=Alert.severity, else_=len(SEVERITY_ORDER))


ORDERS = {  # name -> ORDER BY
    "severity, oldest first": lambda: (_severity_rank(), Alert.first_seen, Alert.id),
    "severity, newest first": lambda: (_severity_rank(), Alert.first_seen.desc(), Alert.id.desc()),
    "newest first": lambda: (Alert.last_seen.desc(), Alert.id.desc()),
    "oldest first": lambda: (Alert.first_seen, Alert.id),
}


def page(session, f: AlertQuery, order: str = "severity, oldest first", limit: int = 50, offset: int = 0) -> list[dict]:
    """One page of the alerts through `f`, in `order` (a key of ORDERS)."""
    q = _where(with_suppression(), f).order_by(*ORDERS[order]()).limit(limit).offset(offset)
    return as_dicts(session, q, f.at)


def count(session, f: AlertQuery) -> int:
    q = _where(select(func.count(Alert.id)).select_from(Alert)
               .outerjoin(AlertSuppression, AlertSuppression.id == Alert.suppression_id), f)
    return session.scalar(q) or 0


def counts_by_state(session, f: AlertQuery) -> dict[str, int]:
    """{state: number of alerts} through `f` (its own state filter aside)."""
    q = _where(select(Alert.state, func.count(Alert.id)).select_from(Alert)
               .outerjoin(AlertSuppression, AlertSuppression.id == Alert.suppression_id)
               .group_by(Alert.state), AlertQuery(**{**f.__dict__, "states": ()}))
    return {state: n for state, n in session.execute(q)}


def facets(session) -> dict[str, list[str]]:
    """The values the filters can take, as present in the store: rules, severities, accounts,
    regions, assignees (each sorted; empty and missing values left out)."""
    out = {}
    for name, column in (("rules", Alert.rule), ("severities", Alert.severity), ("accounts", _label("account")),
                         ("regions", _label("region")), ("assignees", Alert.assignee)):
        values = session.scalars(select(column).distinct().where(column.is_not(None)))
        out[name] = sorted(str(v) for v in values if v not in (None, ""))
    return out
