"""The environment and owner tags of stored records (`record_tags`), read once per record (records are
content-addressed, so a record's tags never change) for the posture filters; `tagged_records` names the
records already read."""
from __future__ import annotations

import json
import zlib
from typing import Iterator, Optional

from sqlalchemy import func, insert, or_, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from auditbook.store.models import RecordBlob, ResourceState
from auditbook.store.models_workflow import RecordTag, TaggedRecord

KEY_LENGTH = RecordTag.__table__.c.key.type.length
VALUE_LENGTH = RecordTag.__table__.c.value.type.length
BATCH = 500


class TagsBusy(Exception):
    """SQLite's one writer stayed busy past its timeout (a scan storing its run): nothing was added;
    the tags are read on a later look."""


def untagged(session: Session, limit: int = BATCH) -> list[tuple[str, str, Optional[dict]]]:
    """Up to `limit` stored records whose tags have not been read: (sha256, resource type, record;
    None if its body is missing)."""
    indexed = select(TaggedRecord.sha256).where(TaggedRecord.sha256 == ResourceState.record_sha256)
    shas = dict(session.execute(select(ResourceState.record_sha256, ResourceState.resource_type)
                                .where(~indexed.exists()).distinct().limit(limit)).all())
    if not shas:
        return []
    bodies = dict(session.execute(select(RecordBlob.sha256, RecordBlob.body)
                                  .where(RecordBlob.sha256.in_(sorted(shas)))).all())
    return [(sha, rtype, json.loads(zlib.decompress(bodies[sha])) if sha in bodies else None)
            for sha, rtype in sorted(shas.items())]


def add(session: Session, tags: dict[str, dict[str, str]]) -> None:
    """Record that each record's tags were read ({sha256: {key: value}}; keys lower case, cut to the
    column sizes). TagsBusy when SQLite's write lock stayed taken (the caller's unit of work must end:
    it is rolled back)."""
    if not tags:
        return
    rows = [{"record_sha256": sha, "key": key[:KEY_LENGTH], "value": value[:VALUE_LENGTH]}
            for sha, found in tags.items() for key, value in found.items()]
    try:
        session.execute(insert(TaggedRecord), [{"sha256": sha} for sha in sorted(tags)])
        if rows:
            session.execute(insert(RecordTag), rows)
    except OperationalError as exc:
        if "database is locked" in str(exc.orig):
            raise TagsBusy() from exc
        raise


def values(session: Session, run_id: int) -> list[tuple[str, str, int]]:
    """(key, value, resources) of the tags of the resources observed in the run."""
    q = (select(RecordTag.key, RecordTag.value, func.count())
         .join(ResourceState, ResourceState.record_sha256 == RecordTag.record_sha256)
         .where(ResourceState.first_run <= run_id, ResourceState.last_run >= run_id,
                or_(ResourceState.closed_run.is_(None), ResourceState.closed_run > run_id))
         .group_by(RecordTag.key, RecordTag.value).order_by(RecordTag.key, RecordTag.value))
    return [tuple(r) for r in session.execute(q)]


def batches(session: Session) -> Iterator[list[tuple[str, str, Optional[dict]]]]:
    """untagged() a batch at a time until none is left (the caller adds each batch's tags)."""
    while True:
        batch = untagged(session)
        if not batch:
            return
        yield batch
