"""Application audit events in the store (`app_audit_events`, `app_audit_reads`,
store/models_app_audit.py). Which log groups are read, how an event is parsed and what a read covers
is auditbook.monitor.app_audit's business; the populations read the period's events through here."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Iterable, Optional

from sqlalchemy import func, insert, select

from auditbook.store.db import utc
from auditbook.store.models_app_audit import (  # noqa: F401  (column sizes: the reader's bounds)
    MAX_ACTION,
    MAX_ERROR,
    MAX_EVENT_ID,
    MAX_EVENT_TYPE,
    MAX_OUTCOME,
    MAX_REASON,
    MAX_RESOURCE,
    MAX_SOURCE_IP,
    MAX_USER,
    MAX_USER_AGENT,
    AppAuditEvent,
    AppAuditRead,
)
from auditbook.store.period_events import MAX_ROWS

CHUNK = 500
KINDS = ("data_access", "system_change", "admin_action")  # the kinds of audit event, in this order
KIND_CRITERIA = {"data_access": ("CC6.3",), "system_change": ("CC8.1",), "admin_action": ("CC6.3",)}
OTHER = "other"  # an event whose type is none of the configured values: kept, in no population
EVENT_COLUMNS = ("source", "account", "region", "log_group", "event_id", "at", "kind", "event_type", "user",
                 "source_ip", "user_agent", "action", "outcome", "resource", "record_sha256", "unread")
READ_COLUMNS = ("source", "account", "region", "log_group", "first_at", "last_at", "read_at", "events", "unread",
                "error")


def match_id(source: str, event_id: str) -> str:
    """An event's id across log groups: its population row id, and the id its rule matches are kept
    under (cloudtrail_matches.event_id, beside CloudTrail's)."""
    return f"app-{hashlib.sha256(source.encode()).hexdigest()[:12]}-{event_id}"


def known_ids(session, source: str, event_ids: list[str]) -> set[str]:
    """The ids among `event_ids` of the log group already stored (read, or noted unreadable)."""
    known: set[str] = set()
    for i in range(0, len(event_ids), CHUNK):
        known.update(session.scalars(select(AppAuditEvent.event_id).where(
            AppAuditEvent.source == source, AppAuditEvent.event_id.in_(event_ids[i:i + CHUNK]))))
    return known


def insert_events(session, rows: Iterable[dict]) -> None:
    """Store events (dicts of AppAuditEvent's columns), each once by (source, event id): one stored
    before, or by a concurrent reader, is left as it is."""
    rows = list(rows)
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(AppAuditEvent.__table__).on_conflict_do_nothing()
    for i in range(0, len(rows), CHUNK):
        session.execute(statement, rows[i:i + CHUNK])


def add_read(session, row: dict) -> None:
    """A read of a log group over [first_at, last_at] (error: why it failed)."""
    session.execute(insert(AppAuditRead).values(**row))


def checkpoint(session, source: str) -> Optional[dt.datetime]:
    """Where the next read of the log group starts: the end of its newest read that succeeded."""
    return utc(session.scalar(select(func.max(AppAuditRead.last_at)).where(AppAuditRead.source == source,
                                                                          AppAuditRead.error.is_(None))))


def reads(session, since: dt.datetime, until: dt.datetime, source: Optional[str] = None) -> list[dict]:
    """The reads (covered or failed) overlapping [since, until], by source and first time."""
    q = select(*(getattr(AppAuditRead, c) for c in READ_COLUMNS)).where(
        AppAuditRead.first_at <= until, AppAuditRead.last_at >= since)
    if source is not None:
        q = q.where(AppAuditRead.source == source)
    rows = session.execute(q.order_by(AppAuditRead.source, AppAuditRead.first_at, AppAuditRead.id))
    return [_times(dict(zip(READ_COLUMNS, row)), ("first_at", "last_at", "read_at")) for row in rows]


def sources(session) -> list[dict]:
    """Every log group ever read (or tried): {source, account, region, log_group}."""
    rows = session.execute(select(AppAuditRead.source, AppAuditRead.account, AppAuditRead.region,
                                  AppAuditRead.log_group).distinct().order_by(AppAuditRead.source))
    return [dict(zip(("source", "account", "region", "log_group"), row)) for row in rows]


def events_in(session, since: dt.datetime, until: dt.datetime, kinds: Optional[tuple] = None,
              unread: bool = False, limit: int = MAX_ROWS + 1) -> list[dict]:
    """The events of [since, until) (by their time), oldest first: those read (of `kinds`, or every
    kind), or with `unread` those that could not be read. At most `limit` (the caller refuses more
    than MAX_ROWS: a population is never cut silently)."""
    q = select(*(getattr(AppAuditEvent, c) for c in EVENT_COLUMNS)).where(
        AppAuditEvent.at >= since, AppAuditEvent.at < until,
        AppAuditEvent.unread.is_not(None) if unread else AppAuditEvent.unread.is_(None))
    if kinds is not None:
        q = q.where(AppAuditEvent.kind.in_(kinds))
    rows = session.execute(q.order_by(AppAuditEvent.at, AppAuditEvent.id).limit(limit))
    return [_times(dict(zip(EVENT_COLUMNS, row)), ("at",)) for row in rows]


def newest(session, since: Optional[dt.datetime], until: Optional[dt.datetime], kind: Optional[str],
           unread: bool, limit: int) -> tuple[list[dict], int]:
    """The newest `limit` events in [since, until) (read ones of `kind`, or with `unread` those not
    read), oldest first, and how many there are."""
    where = [AppAuditEvent.unread.is_not(None) if unread else AppAuditEvent.unread.is_(None)]
    if since is not None:
        where.append(AppAuditEvent.at >= since)
    if until is not None:
        where.append(AppAuditEvent.at < until)
    if kind is not None:
        where.append(AppAuditEvent.kind == kind)
    total = session.scalar(select(func.count()).select_from(AppAuditEvent).where(*where))
    rows = session.execute(select(*(getattr(AppAuditEvent, c) for c in EVENT_COLUMNS)).where(*where)
                           .order_by(AppAuditEvent.at.desc(), AppAuditEvent.id.desc()).limit(limit))
    return [_times(dict(zip(EVENT_COLUMNS, row)), ("at",)) for row in reversed(rows.all())], total


def event_record(session, source: str, event_id: str) -> Optional[dict]:
    """The stored (redacted) message of one event."""
    return session.scalar(select(AppAuditEvent.record).where(AppAuditEvent.source == source,
                                                             AppAuditEvent.event_id == event_id))


def _times(row: dict, names: tuple) -> dict:
    for name in names:
        row[name] = utc(row[name])
    return row
