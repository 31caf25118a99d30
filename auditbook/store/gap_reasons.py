"""Reasons for monitoring gaps (days without a scan), kept without a table of their own: each reason is
an append-only audit-trail entry of object type `monitoring_gap` (who, when, the days and the reason in
`after`). A later reason for a day supersedes an earlier one; nothing is ever updated or deleted."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import select

from auditbook.auth import Actor
from auditbook.store import audit_log
from auditbook.store.db import utc
from auditbook.store.models import AuditEntry

OBJECT_TYPE = "monitoring_gap"
ACTION = "explain_gap"


def record_reason(session, actor: Actor, first: dt.date, last: dt.date, reason: str,
                  at: Optional[dt.datetime] = None) -> dict:
    """Record why the days first..last (inclusive) have no scan, in the caller's unit of work."""
    after = {"from": first.isoformat(), "to": last.isoformat(), "reason": reason}
    audit_log.record(session, actor, ACTION, OBJECT_TYPE, f"{first.isoformat()}..{last.isoformat()}",
                     after=after, at=at)
    return after


def reasons_overlapping(session, first: dt.date, last: dt.date) -> list[dict]:
    """Every reason recorded for days that overlap first..last, oldest first: {from, to, reason, by,
    role, at} (from and to are dates)."""
    rows = session.execute(select(AuditEntry).where(AuditEntry.object_type == OBJECT_TYPE,
                                                    AuditEntry.action == ACTION)
                           .order_by(AuditEntry.id)).scalars()
    out = []
    for r in rows:
        start, end = dt.date.fromisoformat(r.after["from"]), dt.date.fromisoformat(r.after["to"])
        if start <= last and end >= first:
            out.append({"from": start, "to": end, "reason": r.after["reason"], "by": r.actor, "role": r.role,
                        "at": utc(r.at)})
    return out
