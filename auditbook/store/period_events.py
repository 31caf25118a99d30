"""The events of an audit period that populations are made of (auditbook.history.populations): the
alerts first seen or open in the period, and the CloudTrail write events kept in it. Plain dicts."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select

from auditbook.store.alerts import as_dicts, with_suppression
from auditbook.store.changes import resources_of
from auditbook.store.db import utc
from auditbook.store.models import Alert
from auditbook.store.models_workflow import CloudTrailChange

IAM_SOURCES = ("iam.amazonaws.com", "identitystore.amazonaws.com", "sso.amazonaws.com")  # access changes
MAX_ROWS = 1_000_000  # a population larger than this is refused by the caller, never cut silently
CHANGE_COLUMNS = ("event_id", "at", "account", "region", "event_source", "event_name", "principal",
                  "principal_type", "session_name", "source_ip", "error_code", "tags", "simulated")


def alerts_in(session, since: dt.datetime, until: dt.datetime, limit: int = MAX_ROWS + 1) -> list[dict]:
    """Alerts first seen before `until` and not resolved before `since` (first seen or open in
    [since, until)), by id."""
    q = (with_suppression().where(Alert.first_seen < until,
                                  or_(Alert.resolved_at.is_(None), Alert.resolved_at >= since))
         .order_by(Alert.id).limit(limit))
    return as_dicts(session, q, at=until)


def changes_in(session, since: dt.datetime, until: dt.datetime, limit: int = MAX_ROWS + 1) -> list[dict]:
    """CloudTrail write events kept with a time in [since, until), oldest first, each with the
    resource keys it touched (`resources`)."""
    columns = [getattr(CloudTrailChange, c) for c in CHANGE_COLUMNS]
    rows = session.execute(select(*columns).where(CloudTrailChange.at >= since, CloudTrailChange.at < until)
                           .order_by(CloudTrailChange.at, CloudTrailChange.id).limit(limit)).all()
    out = [dict(zip(CHANGE_COLUMNS, row)) for row in rows]
    touched = resources_of(session, [e["event_id"] for e in out])
    for event in out:
        event["at"] = utc(event["at"])
        event["resources"] = touched.get(event["event_id"], [])
    return out


def events_for_items(session, since: dt.datetime, until: dt.datetime, limit: int = MAX_ROWS + 1) -> list[dict]:
    """The CloudTrail write events kept with a time in [since, until) that per-change items are matched
    to: {event_id, at, session_name, tags, iam} (iam: an access change), calls that failed (an error
    code: nothing changed) left out, oldest first."""
    rows = session.execute(select(CloudTrailChange.event_id, CloudTrailChange.at, CloudTrailChange.session_name,
                                  CloudTrailChange.tags, CloudTrailChange.event_source)
                           .where(CloudTrailChange.at >= since, CloudTrailChange.at < until,
                                  or_(CloudTrailChange.error_code == "", CloudTrailChange.error_code.is_(None)))
                           .order_by(CloudTrailChange.at, CloudTrailChange.id).limit(limit)).all()
    return [{"event_id": event_id, "at": utc(at), "session_name": session_name, "tags": tags,
             "iam": source in IAM_SOURCES} for event_id, at, session_name, tags, source in rows]
