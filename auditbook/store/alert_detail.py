"""What an alert concerns, read for its detail view: the findings open now on the resources it
names (the latest interval of each, not closed). Which resources an alert names is
auditbook.monitor.alert_views' business."""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import or_, select

from auditbook.store.models import FindingState


def open_findings_on(session, resources: Iterable[str], accounts: Iterable[str] = (), limit: int = 200) -> list[dict]:
    """The findings still open (their interval not closed) on `resources` (a finding's resource or
    resource id), in `accounts` when given: {check, status, severity, account, region, resource,
    resource_name, message, first_run, last_run}, failures first."""
    names = sorted({str(r) for r in resources if r})
    if not names:
        return []
    q = (select(FindingState.check_id, FindingState.status, FindingState.severity, FindingState.account,
                FindingState.region, FindingState.resource, FindingState.resource_name, FindingState.message,
                FindingState.first_run, FindingState.last_run, FindingState.controls)
         .where(FindingState.closed_run.is_(None),
                or_(FindingState.resource.in_(names), FindingState.resource_id.in_(names)))
         .order_by(FindingState.status != "FAIL", FindingState.check_id, FindingState.resource).limit(limit))
    wanted = sorted({str(a) for a in accounts if a})
    if wanted:
        q = q.where(FindingState.account.in_(wanted))
    return [{"check": c, "status": st, "severity": sev, "account": acc, "region": reg, "resource": res,
             "resource_name": name, "message": msg, "first_run": first, "last_run": last,
             "controls": list(controls or [])}
            for c, st, sev, acc, reg, res, name, msg, first, last, controls in session.execute(q)]
