"""Notification deliveries (`notifications`): one row per attempt series — channel, what was sent,
how it went. Which deliveries are due is auditbook.monitor.notify's business."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import insert, select

from auditbook.store.models import Notification


def already_sent(session, channel: str, object_type: str, object_id, event: str,
                 since: Optional[dt.datetime] = None) -> bool:
    """Has this event of this object been delivered to this channel (at or after `since`)?"""
    query = select(Notification.id).where(
        Notification.channel == channel, Notification.object_type == object_type,
        Notification.object_id == str(object_id), Notification.event == event, Notification.status == "sent")
    if since is not None:
        query = query.where(Notification.at >= since)
    return session.scalar(query.limit(1)) is not None


def insert_delivery(session, *, channel: str, kind: str, event: str, object_type: str, object_id, status: str,
                    attempts: int, error: Optional[str] = None, response: Optional[str] = None,
                    at: Optional[dt.datetime] = None) -> None:
    session.execute(insert(Notification).values(
        channel=channel, kind=kind, event=event, object_type=object_type, object_id=str(object_id), status=status,
        attempts=attempts, last_error=error, response=response, at=at or dt.datetime.now(dt.timezone.utc)))


def listing(session) -> list[dict]:
    """Every delivery recorded, oldest first."""
    rows = session.execute(select(Notification).order_by(Notification.id)).scalars()
    return [{"id": r.id, "channel": r.channel, "kind": r.kind, "event": r.event, "object_type": r.object_type,
             "object_id": r.object_id, "status": r.status, "attempts": r.attempts, "last_error": r.last_error,
             "response": r.response, "at": r.at} for r in rows]
