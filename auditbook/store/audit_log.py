"""The append-only audit trail (`audit_log`): one row per change, written in the same unit of work as
the change; nothing here is ever updated or deleted."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import insert, select

from auditbook.auth import Actor
from auditbook.store.db import utc
from auditbook.store.models import AuditEntry


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def record(session, actor: Actor, action: str, object_type: str, object_id, *,
           before: Optional[dict] = None, after: Optional[dict] = None, note: Optional[str] = None,
           at: Optional[dt.datetime] = None) -> None:
    session.execute(insert(AuditEntry).values(at=at or now(), actor=actor.name, role=actor.role, action=action,
                                              object_type=object_type, object_id=str(object_id), before=before,
                                              after=after, note=note))


def _entry(r) -> dict:
    return {"at": utc(r.at), "actor": r.actor, "role": r.role, "action": r.action, "before": r.before,
            "after": r.after, "note": r.note}


def trail(session, object_type: str, object_id) -> list[dict]:
    """Every entry about one object, oldest first."""
    rows = session.execute(select(AuditEntry).where(AuditEntry.object_type == object_type,
                                                    AuditEntry.object_id == str(object_id))
                           .order_by(AuditEntry.id)).scalars()
    return [_entry(r) for r in rows]


def trails(session, object_type: str, object_ids: Iterable) -> dict[str, list[dict]]:
    """trail() of many objects of one type at once: {object id (text): entries, oldest first}."""
    ids = sorted({str(i) for i in object_ids})
    out: dict[str, list[dict]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        rows = session.execute(select(AuditEntry).where(AuditEntry.object_type == object_type,
                                                        AuditEntry.object_id.in_(ids[start:start + 500]))
                               .order_by(AuditEntry.id)).scalars()
        for r in rows:
            out[r.object_id].append(_entry(r))
    return out
