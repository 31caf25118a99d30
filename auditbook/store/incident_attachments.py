"""Files attached to incidents (`incident_attachments`): the record (name, SHA-256, size, who, when)
and the bytes, stored once per content as a row of `documents` (zlib-compressed, addressed by
SHA-256, like manual evidence: its bytes are read back with store.manual_evidence.document). Each
read is a plain dict."""
from __future__ import annotations

import datetime as dt
import zlib
from typing import Iterable, Optional

from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from auditbook.store.db import utc
from auditbook.store.models import Document
from auditbook.store.models_workflow import IncidentAttachment

FILENAME_LENGTH = IncidentAttachment.__table__.c.filename.type.length


def _as_dict(row) -> dict:
    return {"id": row.id, "incident_id": row.incident_id, "filename": row.filename, "sha256": row.sha256,
            "size": row.size, "uploaded_by": row.uploaded_by, "uploaded_at": utc(row.uploaded_at)}


def _store_document(session, sha256: str, content: bytes) -> None:
    """The bytes under their SHA-256, once (INSERT … ON CONFLICT DO NOTHING: a document another
    writer stores at the same moment is the same bytes, and this unit of work carries on)."""
    dialect = session.get_bind().dialect.name
    values = {"sha256": sha256, "size": len(content), "content": zlib.compress(content, 6)}
    if dialect == "postgresql":
        statement = postgresql_insert(Document).values(**values).on_conflict_do_nothing(index_elements=["sha256"])
    elif dialect == "sqlite":
        statement = sqlite_insert(Document).values(**values).on_conflict_do_nothing(index_elements=["sha256"])
    else:
        raise ValueError(f"incident attachments: unsupported database {dialect!r}")
    session.execute(statement)


def insert_attachment(session, *, incident_id: int, filename: str, sha256: str, content: bytes,
                      uploaded_by: str, at: dt.datetime) -> dict:
    """The file's bytes (once per content) and its record on the incident; the record as stored."""
    _store_document(session, sha256, content)
    done = session.execute(insert(IncidentAttachment).values(
        incident_id=incident_id, filename=filename, sha256=sha256, size=len(content), uploaded_by=uploaded_by,
        uploaded_at=at))
    return get(session, done.inserted_primary_key[0])


def get(session, attachment_id: int) -> Optional[dict]:
    row = session.get(IncidentAttachment, attachment_id)
    return None if row is None else _as_dict(row)


def of_incident(session, incident_id: int) -> list[dict]:
    """An incident's attachments (records, not bytes), in the order they were added."""
    q = select(IncidentAttachment).where(IncidentAttachment.incident_id == incident_id).order_by(IncidentAttachment.id)
    return [_as_dict(r) for r in session.scalars(q)]


def of_incidents(session, incident_ids: Iterable[int]) -> dict[int, list[dict]]:
    """of_incident() of many incidents at once: {incident id: attachment records}."""
    ids = sorted(set(incident_ids))
    out: dict[int, list[dict]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        q = (select(IncidentAttachment).where(IncidentAttachment.incident_id.in_(ids[start:start + 500]))
             .order_by(IncidentAttachment.id))
        for row in session.scalars(q):
            out[row.incident_id].append(_as_dict(row))
    return out
