"""The append-only audit trail: one row per change, written in the same transaction as the change."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook.auth import Actor
from auditbook.store.models import AuditEntry


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def record(session: Session, actor: Actor, action: str, object_type: str, object_id, *,
           before: Optional[dict] = None, after: Optional[dict] = None, note: Optional[str] = None,
           at: Optional[dt.datetime] = None) -> None:
    session.add(AuditEntry(at=at or now(), actor=actor.name, role=actor.role, action=action,
                           object_type=object_type, object_id=str(object_id), before=before, after=after,
                           note=note))


def trail(engine, object_type: str, object_id) -> list[dict]:
    with Session(engine) as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.object_type == object_type,
                                                        AuditEntry.object_id == str(object_id))
                               .order_by(AuditEntry.id)).all()
        return [{"at": r.at, "actor": r.actor, "role": r.role, "action": r.action, "before": r.before,
                 "after": r.after, "note": r.note} for r in rows]
