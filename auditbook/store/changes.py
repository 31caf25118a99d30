"""CloudTrail write events on resources in the store: the events (`cloudtrail_changes`), the resources
each touched (`cloudtrail_change_resources`, by resource_key) and what CloudTrail input covered which
account, region and time (`cloudtrail_coverage`). Which records are write events and which resources
they touch is auditbook.monitor.cloudtrail_changes' business; the resource timeline reads them through
auditbook.history.resource_timeline."""
from __future__ import annotations

import datetime as dt
import re
from typing import Iterable, Optional

from sqlalchemy import func, insert, select

from auditbook.store.db import utc
from auditbook.store.models_workflow import (
    CloudTrailChange,
    CloudTrailChangeResource,
    CloudTrailCoverage,
)

# column sizes (models.CloudTrailChange): a value longer than its column is an evidence gap, never cut
MAX_ACCOUNT, MAX_REGION, MAX_NAME, MAX_ERROR = 12, 32, 100, 100
MAX_SESSION, MAX_SOURCE_IP, MAX_PRINCIPAL_TYPE = 100, 100, 40
MAX_RESOURCE = 1024  # cloudtrail_change_resources.resource
MAX_SOURCE = 1300  # bucket (255) / key (1024), or lookup_events <region>
MAX_REQUEST = 4096  # bytes of canonical JSON kept of a request's parameters (larger: size and SHA-256)
MAX_TAGS = 20
CHUNK = 500
_IAM_PATHED = re.compile(r"^(arn:[^:]*:iam::[^:]*:(?:user|role|group|policy|instance-profile))/(?:[^/]*/)+([^/]+)$")


def resource_key(arn: str) -> str:
    """The key a resource's write events are kept under: its ARN, with an IAM path left out (a request
    names a user by its name alone, and names are unique in an account whatever the path)."""
    m = _IAM_PATHED.match(arn)
    return f"{m.group(1)}/{m.group(2)}" if m else arn


def _insert_new(session, model, rows: list[dict]) -> None:
    """INSERT the rows that are not there yet (a unique index says which are): a record delivered
    twice, or read from a log file and from LookupEvents, is kept once."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(model.__table__).on_conflict_do_nothing()  # the table: a plain executemany
    for i in range(0, len(rows), CHUNK):
        session.execute(statement, rows[i:i + CHUNK])


def insert_changes(session, changes: Iterable[dict]) -> int:
    """Store write events (each a dict of CloudTrailChange's columns plus `resources`, the keys it
    touched), each once by event id. -> how many were handed in."""
    events, touched = [], []
    for change in changes:
        row = dict(change)
        for key in row.pop("resources"):
            touched.append({"resource": key, "at": row["at"], "event_id": row["event_id"]})
        events.append(row)
    _insert_new(session, CloudTrailChange, events)
    _insert_new(session, CloudTrailChangeResource, touched)
    return len(events)


def new_changes(session, changes: list[dict]) -> list[dict]:
    """The write events of `changes` not stored yet (by event id): a window read again is not counted twice."""
    ids = [c["event_id"] for c in changes]
    known = set()
    for i in range(0, len(ids), CHUNK):
        known.update(session.scalars(select(CloudTrailChange.event_id).where(
            CloudTrailChange.event_id.in_(ids[i:i + CHUNK]))))
    out = []
    for change in changes:
        if change["event_id"] not in known:
            known.add(change["event_id"])
            out.append(change)
    return out


def add_coverage(session, rows: list[dict]) -> None:
    """Coverage rows: {account, region, first_at, last_at, source, records, unread}."""
    if rows:
        session.execute(insert(CloudTrailCoverage), rows)


_EVENT_COLUMNS = ("event_id", "at", "account", "region", "event_source", "event_name", "principal", "principal_type",
                  "session_name", "source_ip", "user_agent", "error_code", "tags", "request", "source", "simulated")


def for_resources(session, keys: list[str], since: Optional[dt.datetime], until: Optional[dt.datetime],
                  limit: int = 500) -> tuple[list[dict], int]:
    """The write events that touched any of `keys` in [since, until], oldest first: (the newest `limit`,
    how many there are)."""
    q = select(CloudTrailChangeResource.event_id).where(CloudTrailChangeResource.resource.in_(keys))
    if since is not None:
        q = q.where(CloudTrailChangeResource.at >= since)
    if until is not None:
        q = q.where(CloudTrailChangeResource.at <= until)
    ids = q.distinct().subquery()
    total = session.scalar(select(func.count()).select_from(ids))
    columns = [getattr(CloudTrailChange, c) for c in _EVENT_COLUMNS]
    rows = session.execute(select(*columns).where(CloudTrailChange.event_id.in_(select(ids.c.event_id)))
                           .order_by(CloudTrailChange.at.desc(), CloudTrailChange.id.desc()).limit(limit)).all()
    out = []
    for row in reversed(rows):
        event = dict(zip(_EVENT_COLUMNS, row))
        event["at"] = utc(event["at"])
        out.append(event)
    return out, total


def resources_of(session, event_ids: list[str]) -> dict[str, list[str]]:
    """event id -> the resource keys that write event touched (for the events among `event_ids` kept)."""
    out: dict[str, list[str]] = {}
    for i in range(0, len(event_ids), CHUNK):
        for event_id, key in session.execute(
                select(CloudTrailChangeResource.event_id, CloudTrailChangeResource.resource)
                .where(CloudTrailChangeResource.event_id.in_(event_ids[i:i + CHUNK]))
                .order_by(CloudTrailChangeResource.id)):
            out.setdefault(event_id, []).append(key)
    return out


MAX_FILE_SPAN = dt.timedelta(days=1)  # coverage a single log file may claim (its first event is cut to it)


def any_coverage(session, since: dt.datetime, until: dt.datetime) -> bool:
    """Whether any CloudTrail log read (any account and region) covers part of [since, until)."""
    q = (select(CloudTrailCoverage.id)
         .where(CloudTrailCoverage.first_at >= since - MAX_FILE_SPAN, CloudTrailCoverage.first_at < until,
                CloudTrailCoverage.last_at >= since).limit(1))
    return session.execute(q).first() is not None


def coverage(session, account: str, region: str, since: dt.datetime, until: dt.datetime) -> list[dict]:
    """The coverage rows of an account and region that overlap [since, until], by first event time."""
    return coverage_by_pair(session, since, until, (account, region)).get((account, region), [])


def coverage_by_pair(session, since: dt.datetime, until: dt.datetime,
                     pair: Optional[tuple[str, str]] = None) -> dict[tuple[str, str], list[dict]]:
    """{(account, region): its coverage rows that overlap [since, until], by first event time} for every
    pair (or only `pair`), in one read."""
    q = (select(CloudTrailCoverage.account, CloudTrailCoverage.region, CloudTrailCoverage.first_at,
                CloudTrailCoverage.last_at, CloudTrailCoverage.source, CloudTrailCoverage.unread)
         .where(CloudTrailCoverage.first_at >= since - MAX_FILE_SPAN, CloudTrailCoverage.first_at <= until)
         .order_by(CloudTrailCoverage.account, CloudTrailCoverage.region, CloudTrailCoverage.first_at,
                   CloudTrailCoverage.id))
    if pair is not None:
        q = q.where(CloudTrailCoverage.account == pair[0], CloudTrailCoverage.region == pair[1])
    out: dict[tuple[str, str], list[dict]] = {}
    for account, region, first, last, source, unread in session.execute(q):
        if utc(last) >= since:
            out.setdefault((account, region), []).append(
                {"first_at": utc(first), "last_at": utc(last), "source": source, "unread": unread})
    return out
