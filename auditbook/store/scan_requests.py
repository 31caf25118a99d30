"""Scans started from the control room (`scan_requests`): reads and writes, each a plain dict. One
request at a time holds the slot (a unique index: of two concurrent inserts exactly one succeeds, in
SQLite and PostgreSQL alike); what the states mean is auditbook.monitor.scan_requests' business."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from auditbook.store.db import utc
from auditbook.store.models_workflow import ScanRequest

ERROR_LENGTH = ScanRequest.__table__.c.error.type.length
CURRENT_LENGTH = ScanRequest.__table__.c.current.type.length
_NO_SYNC = {"synchronize_session": False}


class SlotTaken(Exception):
    """Another request holds the slot (a scan is queued or running)."""


class StoreBusy(Exception):
    """SQLite's one writer is busy (the scan storing its run holds the lock past the busy timeout)."""


def _as_dict(r) -> dict:
    return {"id": r.id, "active": r.slot is not None, "state": r.state, "requested_by": r.requested_by,
            "role": r.role, "requested_at": utc(r.requested_at), "options": dict(r.options or {}),
            "heartbeat_at": utc(r.heartbeat_at), "started_at": utc(r.started_at),
            "finished_at": utc(r.finished_at), "planned": r.planned, "done": r.done, "current": r.current,
            "run_id": r.run_id, "error": r.error, "version": r.version}


def insert_request(session, *, requested_by: str, role: str, at: dt.datetime, options: dict) -> dict:
    """A new queued request holding the slot; SlotTaken when another holds it. Raised from a failed
    INSERT, so the caller's unit of work must end (it is rolled back): nothing of it is kept."""
    try:
        done = session.execute(insert(ScanRequest).values(
            slot=1, state="queued", requested_by=requested_by, role=role, requested_at=at, options=options,
            heartbeat_at=at, done=0, version=1))
    except IntegrityError as exc:
        raise SlotTaken() from exc
    return get(session, done.inserted_primary_key[0])


def get(session, request_id: int) -> Optional[dict]:
    row = session.get(ScanRequest, request_id, populate_existing=True)
    return None if row is None else _as_dict(row)


def active(session) -> Optional[dict]:
    """The request holding the slot, if any."""
    row = session.scalars(select(ScanRequest).execution_options(populate_existing=True)
                          .where(ScanRequest.slot == 1)).first()
    return None if row is None else _as_dict(row)


def recent(session, limit: int = 5) -> list[dict]:
    """The latest requests, newest first."""
    rows = session.scalars(select(ScanRequest).execution_options(populate_existing=True)
                           .order_by(ScanRequest.id.desc()).limit(limit))
    return [_as_dict(r) for r in rows]


def change(session, request_id: int, version: int, values: dict) -> bool:
    """Set `values` and move the version on, only while the request is still at `version` (of two
    writers exactly one wins). True if it changed."""
    done = session.execute(update(ScanRequest).where(ScanRequest.id == request_id, ScanRequest.version == version)
                           .values(**values, version=version + 1).execution_options(**_NO_SYNC))
    return done.rowcount == 1


def release(session, request_id: int, state: str, at: dt.datetime, *, run_id: Optional[int] = None,
            error: Optional[str] = None) -> bool:
    """End a request that holds the slot: its final state, and the slot freed. True if it changed."""
    done = session.execute(update(ScanRequest).where(ScanRequest.id == request_id, ScanRequest.slot == 1)
                           .values(slot=None, state=state, finished_at=at, heartbeat_at=at, run_id=run_id,
                                   error=error, version=ScanRequest.version + 1).execution_options(**_NO_SYNC))
    return done.rowcount == 1


def progress(session, request_id: int, at: dt.datetime, **values) -> bool:
    """Progress of the running request (state, planned, done, current, started_at) and its heartbeat.
    True if it changed; StoreBusy when SQLite's write lock stayed taken (the caller's unit of work
    must end: it is rolled back)."""
    try:
        done = session.execute(update(ScanRequest).where(ScanRequest.id == request_id, ScanRequest.slot == 1)
                               .values(**values, heartbeat_at=at, version=ScanRequest.version + 1)
                               .execution_options(**_NO_SYNC))
    except OperationalError as exc:
        if "database is locked" in str(exc.orig):
            raise StoreBusy() from exc
        raise
    return done.rowcount == 1
