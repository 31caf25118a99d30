"""Recorded sample draws (auditbook.history.sampling): each draw is an append-only audit-trail entry
(object type `sample`, object id the period as `START..END`, action `draw`), written in the caller's
unit of work; nothing is updated or deleted. No table of their own: the trail is the record."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from auditbook.auth import Actor
from auditbook.store import audit_log

OBJECT_TYPE, ACTION = "sample", "draw"


def period_key(start: dt.date, end: dt.date) -> str:
    return f"{start.isoformat()}..{end.isoformat()}"


def record_draw(session, actor: Actor, start: dt.date, end: dt.date, draw: dict,
                at: Optional[dt.datetime] = None) -> None:
    """Append a draw (a JSON-able dict: criterion, kind, period, hash, seed, size, ids…) to the trail."""
    audit_log.record(session, actor, ACTION, OBJECT_TYPE, period_key(start, end), after=draw, at=at)


def draws(session, start: dt.date, end: dt.date) -> list[dict]:
    """The draws recorded for the period, oldest first: each the recorded dict with `drawn_by`,
    `role` and `drawn_at` (from the trail entry)."""
    return [{**entry["after"], "drawn_by": entry["actor"], "role": entry["role"], "drawn_at": entry["at"]}
            for entry in audit_log.trail(session, OBJECT_TYPE, period_key(start, end))
            if entry["action"] == ACTION and isinstance(entry["after"], dict)]
