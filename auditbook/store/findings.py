"""Findings as the store keeps them (intervals of unchanged state): the findings observed in one
run, rebuilt from the intervals and the scopes the run attempted."""
from __future__ import annotations

from typing import Iterable, Optional

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from auditbook.evaluate.evaluator import ACCOUNT_SCOPE, SCOPE_WIDE
from auditbook.store.models import FindingState, RunScope
from auditbook.store.resources import evidence_at


def at_run(session: Session, run_id: int, checks: Optional[Iterable[str]] = None) -> list[dict]:
    """The findings observed in run `run_id` (only of `checks`, if given), sorted by check, account,
    region and resource. A finding's evidence is its resource's evidence at that run."""
    scopes = session.execute(select(RunScope.account, RunScope.region, RunScope.resource_type, RunScope.ok)
                             .where(RunScope.run_id == run_id)).all()
    ok = {(s.account, s.region, s.resource_type) for s in scopes if s.ok}
    gap = {(s.account, s.region, s.resource_type) for s in scopes if not s.ok}
    account_types = {(s.account, s.resource_type) for s in scopes}
    q = select(FindingState).where(
        FindingState.first_run <= run_id, FindingState.last_run >= run_id,
        or_(FindingState.closed_run.is_(None), FindingState.closed_run > run_id))
    if checks is not None:
        q = q.where(FindingState.check_id.in_(sorted(set(checks))))
    rows = session.scalars(q).all()
    evidence = evidence_at(session, run_id, {r.resource_type for r in rows} if checks is not None else None)
    out = []
    for r in rows:
        if r.scope_region == ACCOUNT_SCOPE:
            observed = (r.account, r.resource_type) in account_types
        elif r.resource_id == SCOPE_WIDE:
            observed = (r.account, r.scope_region, r.resource_type) in gap
        else:
            observed = (r.account, r.scope_region, r.resource_type) in ok
        if observed:
            out.append({"check": r.check_id, "controls": r.controls, "status": r.status,
                        "severity": r.severity, "account": r.account, "region": r.region,
                        "resource_type": r.resource_type, "resource": r.resource,
                        "resource_name": r.resource_name, "message": r.message,
                        "evidence": evidence.get((r.resource_type, r.account, r.scope_region, r.resource_id),
                                                 r.evidence),
                        "first_seen_run": r.first_run})
    out.sort(key=lambda f: (f["check"], f["account"], f["region"], f["resource"]))
    return out
