"""What changed in the findings between two runs, read from the intervals (finding_states) by the
database — never by loading both runs' findings:

  opened  the rows that hold at the later run `b` and began after the earlier run `a`
  closed  the rows that held at `a` and ended by `b` (the resource changed state, or was not seen in a
          scope read in full: it is gone)

  regressions   opened FAIL whose key was PASS at `a`
  new failures  opened FAIL whose key was neither FAIL nor PASS at `a` (new resource, new check, or
                an ERROR / EXCEPTED before)
  fixed         closed FAIL whose key is PASS at `b` (or has no row at `b`: the resource is gone)
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from auditbook.store.models import FindingState
from auditbook.store.posture import Filters, filtered

KINDS = ("new", "regressed", "fixed")
_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _opened(model, a: int, b: int) -> tuple:
    return (model.first_run > a, model.first_run <= b, model.last_run >= b,
            or_(model.closed_run.is_(None), model.closed_run > b))


def _closed(model, a: int, b: int) -> tuple:
    return (model.first_run <= a, model.last_run >= a, model.closed_run.is_not(None),
            model.closed_run > a, model.closed_run <= b)


def _same_key(x, y):
    return and_(x.check_id == y.check_id, x.account == y.account, x.scope_region == y.scope_region,
                x.resource_type == y.resource_type, x.resource_id == y.resource_id)


def _side(model, where: tuple, name: str):
    """The other side of a change (the few rows that began or ended between the two runs) as a
    materialized CTE: the database reads it once by its run index and joins it by key, instead of
    probing every row of a check for each subject row (1.7 s → 0.05 s on a year of daily runs)."""
    return (select(model.id, model.check_id, model.account, model.scope_region, model.resource_type,
                   model.resource_id, model.status).where(*where).cte(name).prefix_with("MATERIALIZED"))


def _query(kind: str, a: int, b: int, flt: Filters):
    """(subject, other, query) of one kind of change: the subject is the row shown (the later row for
    new failures and regressions, the earlier one for fixes)."""
    later, earlier = aliased(FindingState), aliased(FindingState)
    if kind == "fixed":
        side = _side(later, _opened(later, a, b), "later_at_b")
        other = side.c
        q = (select(earlier).outerjoin(side, _same_key(other, earlier))
             .where(*_closed(earlier, a, b), earlier.status == "FAIL",
                    or_(other.id.is_(None), other.status == "PASS")))
        return earlier, other, filtered(q, earlier, a, flt)
    side = _side(earlier, _closed(earlier, a, b), "earlier_at_a")
    other = side.c
    q = select(later).outerjoin(side, _same_key(other, later)).where(*_opened(later, a, b), later.status == "FAIL")
    if kind == "regressed":  # coalesce: the join stays a left join, read in the order above
        q = q.where(func.coalesce(other.status, "") == "PASS")
    else:
        q = q.where(or_(other.id.is_(None), other.status.not_in(("FAIL", "PASS"))))
    return later, other, filtered(q, later, b, flt)


def changes(session: Session, kind: str, a: int, b: int, flt: Optional[Filters] = None,
            limit: int = 500) -> tuple[list[dict], int]:
    """The changes of one kind (KINDS) from run `a` to run `b`, most severe first: (first `limit`
    rows, how many in all)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of change {kind!r}")
    subject, other, q = _query(kind, a, b, flt or Filters())
    total = session.scalar(select(func.count()).select_from(q.with_only_columns(subject.id).subquery()))
    rank = case(_RANK, value=subject.severity, else_=9)
    rows = session.execute(q.with_only_columns(
        subject.check_id, subject.account, subject.region, subject.resource, subject.resource_name,
        subject.severity, subject.status, subject.first_run, subject.closed_run, other.status)
        .order_by(rank, subject.check_id, subject.account, subject.resource).limit(limit)).all()
    out = []
    for check, account, region, resource, name, severity, status, first_run, closed_run, other_status in rows:
        before, after = (status, other_status or "gone") if kind == "fixed" else (other_status or "—", status)
        out.append({"check": check, "severity": severity, "account": account, "region": region,
                    "resource": resource, "resource_name": name, "before": before, "after": after,
                    "run": closed_run if kind == "fixed" else first_run})
    return out, total or 0
