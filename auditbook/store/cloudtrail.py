"""CloudTrail ingestion in the store: the log files read (`cloudtrail_objects`) and the records that
matched an event rule (`cloudtrail_matches`). Which files to read, what matches and what a window
counts are auditbook.monitor.cloudtrail's business."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import func, insert, select, update

from auditbook.store.db import utc
from auditbook.store.models import CloudTrailMatch, CloudTrailObject


def newest_match_at(session, rule: str) -> Optional[dt.datetime]:
    at = session.scalar(select(CloudTrailMatch.at).where(CloudTrailMatch.rule == rule)
                        .order_by(CloudTrailMatch.at.desc()).limit(1))
    return utc(at)


def match_times_since(session, rule: str, since: dt.datetime) -> list[tuple[str, dt.datetime]]:
    """(labels key, time) of the rule's matches at or after `since`."""
    rows = session.execute(select(CloudTrailMatch.labels_key, CloudTrailMatch.at)
                           .where(CloudTrailMatch.rule == rule, CloudTrailMatch.at >= since))
    return [(key, utc(at)) for key, at in rows]


def match_exists(session, rule: str, event_id: str) -> bool:
    return session.scalar(select(CloudTrailMatch.id).where(CloudTrailMatch.rule == rule,
                                                           CloudTrailMatch.event_id == event_id).limit(1)) is not None


def insert_match(session, *, rule: str, labels_key: str, at: dt.datetime, event_id: str, record: dict,
                 record_sha256: str) -> None:
    session.execute(insert(CloudTrailMatch).values(rule=rule, labels_key=labels_key, at=at, event_id=event_id,
                                                   record=record, record_sha256=record_sha256))


def match_records(session, rule: str, labels_key: str, limit: int = 50) -> list[dict]:
    """The stored (redacted) records of one rule and label set, oldest first."""
    return list(session.scalars(select(CloudTrailMatch.record).where(CloudTrailMatch.rule == rule,
                                                                     CloudTrailMatch.labels_key == labels_key)
                                .order_by(CloudTrailMatch.at).limit(limit)))


def match_counts(session, rule: str) -> list[tuple[str, int]]:
    """(labels key, number of matches) of one rule."""
    rows = session.execute(select(CloudTrailMatch.labels_key, func.count()).where(CloudTrailMatch.rule == rule)
                           .group_by(CloudTrailMatch.labels_key).order_by(CloudTrailMatch.labels_key))
    return [(key, n) for key, n in rows]


def known_objects(session, bucket: str) -> dict[str, tuple[str, int, Optional[dict]]]:
    """key -> (etag, size, unreadable) of each log file of the bucket already in the store."""
    rows = session.execute(select(CloudTrailObject.key, CloudTrailObject.etag, CloudTrailObject.size,
                                  CloudTrailObject.unreadable).where(CloudTrailObject.bucket == bucket))
    return {key: (etag, size, unreadable) for key, etag, size, unreadable in rows}


def mark_object(session, bucket: str, key: str, *, etag: str, size: int, records: int, gaps: Optional[list],
                unreadable: Optional[dict], at: dt.datetime) -> None:
    """The file's row: created, or replaced when the file is read again."""
    values = {"etag": etag, "size": size, "records": records, "gaps": gaps, "unreadable": unreadable, "read_at": at}
    found = session.scalar(select(CloudTrailObject.id).where(CloudTrailObject.bucket == bucket,
                                                             CloudTrailObject.key == key))
    if found is None:
        session.execute(insert(CloudTrailObject).values(bucket=bucket, key=key, **values))
    else:
        session.execute(update(CloudTrailObject).where(CloudTrailObject.id == found).values(**values)
                        .execution_options(synchronize_session=False))
