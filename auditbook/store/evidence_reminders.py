"""Manual-evidence reminders (`evidence_reminders`): one row per item an owner was reminded of on a
day, sent or failed. Which items are due and where they go is auditbook.monitor.reminders'."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import insert, select

from auditbook.store.db import utc
from auditbook.store.models_workflow import EvidenceReminder

COLUMNS = ("day", "owner", "channel", "kind", "criterion", "item", "state", "due_on", "status", "error", "at")


def sent_on(session, day: dt.date) -> set[tuple[str, str, str, str]]:
    """(owner, channel, criterion, item) of every reminder sent for `day`."""
    q = (select(EvidenceReminder.owner, EvidenceReminder.channel, EvidenceReminder.criterion, EvidenceReminder.item)
         .where(EvidenceReminder.day == day, EvidenceReminder.status == "sent"))
    return {tuple(row) for row in session.execute(q)}


def tried_on(session, day: dt.date) -> bool:
    """Whether any reminder (sent or failed) is recorded for `day`."""
    return session.execute(select(EvidenceReminder.id).where(EvidenceReminder.day == day).limit(1)).first() is not None


def insert_reminders(session, rows: list[dict]) -> None:
    """Rows with the keys of COLUMNS (error may be None)."""
    if rows:
        session.execute(insert(EvidenceReminder), [{k: r.get(k) for k in COLUMNS} for r in rows])


def listing(session, day: Optional[dt.date] = None, limit: int = 1000) -> list[dict]:
    """Reminders recorded (of one day, or every day), newest first."""
    q = select(EvidenceReminder).order_by(EvidenceReminder.id.desc()).limit(limit)
    if day is not None:
        q = q.where(EvidenceReminder.day == day)
    return [{**{k: getattr(r, k) for k in COLUMNS}, "at": utc(r.at)} for r in session.execute(q).scalars()]
