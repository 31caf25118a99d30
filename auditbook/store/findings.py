"""Findings as the store keeps them (intervals of unchanged state): the findings observed in one
run, rebuilt from the intervals and the scopes the run attempted.

The rows are read as plain columns (no ORM objects), statuses are filtered by the database when the
caller wants only some, and the JSON columns are decoded only where used: `controls` once per
distinct value (a few dozen in a run), a finding's own `evidence` only when its resource has none at
the run. A 1,000-account run holds ~45,000 findings; this is what keeps reading them well under a
second."""
from __future__ import annotations

import json
from typing import Iterable, Optional

from sqlalchemy import Text, or_, select, type_coerce
from sqlalchemy.orm import Session

from auditbook.evaluate.evaluator import ACCOUNT_SCOPE, SCOPE_WIDE
from auditbook.store.models import FindingState, RunScope
from auditbook.store.resources import evidence_at

WORST_FIRST = {"FAIL": 0, "ERROR": 1, "EXCEPTED": 2}  # then anything else (PASS)
_OWN = object()  # a finding whose resource has no evidence at the run: its own evidence

_COLUMNS = (FindingState.check_id, type_coerce(FindingState.controls, Text).label("controls"),
            FindingState.status, FindingState.severity, FindingState.account, FindingState.region,
            FindingState.scope_region, FindingState.resource_type, FindingState.resource_id,
            FindingState.resource, FindingState.resource_name, FindingState.message,
            type_coerce(FindingState.evidence, Text).label("evidence"), FindingState.first_run, FindingState.id)


def _json(value, memo: Optional[dict] = None):
    """A JSON column's value (text on SQLite; PostgreSQL's driver may hand it over decoded already),
    decoded through `memo` when given (the same text decoded once; each caller gets its own list)."""
    if not isinstance(value, (str, bytes)):
        return value
    if memo is None:
        return json.loads(value)
    if value not in memo:
        memo[value] = json.loads(value)
    found = memo[value]
    return list(found) if isinstance(found, list) else found


_COUNTED = (FindingState.check_id, FindingState.status, FindingState.account, FindingState.scope_region,
            FindingState.resource_type, FindingState.resource_id)  # what counting and _observed read


def _rows(session: Session, run_id: int, checks: Optional[Iterable[str]], statuses: Optional[Iterable[str]],
          not_passing: bool = False, columns: tuple = _COLUMNS):
    q = select(*columns).where(
        FindingState.first_run <= run_id, FindingState.last_run >= run_id,
        or_(FindingState.closed_run.is_(None), FindingState.closed_run > run_id))
    if checks is not None:
        q = q.where(FindingState.check_id.in_(sorted(set(checks))))
    if statuses is not None:
        q = q.where(FindingState.status.in_(sorted(set(statuses))))
    if not_passing:
        q = q.where(FindingState.status != "PASS")
    return session.connection().execute(q).all()  # plain rows: no ORM loading for 45,000 of them


def _observed(session: Session, run_id: int, rows) -> list:
    """The rows the run observed: an account-wide finding where the run attempted its type in the
    account, a scope-wide one (its list call failed) where that scope was not read, any other where
    its scope was read."""
    types = sorted({r.resource_type for r in rows})
    scopes = session.connection().execute(
        select(RunScope.account, RunScope.region, RunScope.resource_type, RunScope.ok)
        .where(RunScope.run_id == run_id, RunScope.resource_type.in_(types))).all() if types else []
    ok = {(a, r, t) for a, r, t, read in scopes if read}
    gap = {(a, r, t) for a, r, t, read in scopes if not read}
    account_types = {(a, t) for a, _r, t, _read in scopes}

    def seen(r) -> bool:
        if r.scope_region == ACCOUNT_SCOPE:
            return (r.account, r.resource_type) in account_types
        if r.resource_id == SCOPE_WIDE:
            return (r.account, r.scope_region, r.resource_type) in gap
        return (r.account, r.scope_region, r.resource_type) in ok
    return [r for r in rows if seen(r)]


def _as_dicts(session: Session, run_id: int, rows, all_types: bool) -> list[dict]:
    """The rows as findings, each with its resource's evidence at the run (its own, if none)."""
    evidence = evidence_at(session, run_id, None if all_types else {r.resource_type for r in rows})
    memo: dict = {}
    out = []
    for r in rows:
        found = evidence.get((r.resource_type, r.account, r.scope_region, r.resource_id), _OWN)
        out.append({"check": r.check_id, "controls": _json(r.controls, memo), "status": r.status,
                    "severity": r.severity, "account": r.account, "region": r.region,
                    "resource_type": r.resource_type, "resource": r.resource,
                    "resource_name": r.resource_name, "message": r.message,
                    "evidence": _json(r.evidence) if found is _OWN else found,
                    "first_seen_run": r.first_run})
    return out


def at_run(session: Session, run_id: int, checks: Optional[Iterable[str]] = None,
           statuses: Optional[Iterable[str]] = None) -> list[dict]:
    """The findings observed in run `run_id` (only of `checks` and `statuses`, if given), sorted by
    check, account, region and resource. A finding's evidence is its resource's evidence at that run."""
    rows = _observed(session, run_id, _rows(session, run_id, checks, statuses))
    rows.sort(key=lambda r: (r.check_id, r.account, r.region, r.resource, r.id))  # id: ties in the order stored
    return _as_dicts(session, run_id, rows, checks is None and statuses is None)


def statuses_at_run(session: Session, run_id: int) -> list[dict]:
    """The findings observed in run `run_id` as at_run gives them, with only their "check" and "status"
    (what counting them reads: the packet index's overview), in no particular order."""
    return [{"check": r.check_id, "status": r.status}
            for r in _observed(session, run_id, _rows(session, run_id, None, None, columns=_COUNTED))]


def worst_at_run(session: Session, run_id: int, checks: Iterable[str],
                 limit: Optional[int]) -> tuple[list[dict], int]:
    """The findings of `checks` observed in the run that are not passing, worst first (fail, error,
    excepted; then by check, account, resource and region): the first `limit` of them, and how many
    there are (None: all). Only the rows returned are turned into findings."""
    rows = _observed(session, run_id, _rows(session, run_id, checks, None, not_passing=True))
    rows.sort(key=lambda r: (WORST_FIRST.get(r.status, 3), r.check_id, r.account, r.resource, r.region, r.id))
    return _as_dicts(session, run_id, rows if limit is None else rows[:max(limit, 0)], False), len(rows)
