"""Manual evidence on file: the documents (content-addressed, compressed) and their records
(criterion, item, owner, effective date, lapse)."""
from __future__ import annotations

import datetime as dt
import zlib
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook.evaluate.manual_evidence import EvidenceRecord, NewEvidence
from auditbook.store.db import utc
from auditbook.store.models import Document, ManualEvidence


def _record(row: ManualEvidence) -> EvidenceRecord:
    return EvidenceRecord(row.id, row.criterion, row.item, row.filename, row.sha256, row.owner, row.uploaded_by,
                          utc(row.uploaded_at), row.effective_date, row.expires_on)


def add(session: Session, new: NewEvidence, uploaded_at: dt.datetime) -> EvidenceRecord:
    """Store the document (once per content) and its record."""
    if session.get(Document, new.sha256) is None:
        session.add(Document(sha256=new.sha256, size=len(new.content), content=zlib.compress(new.content, 6)))
    row = ManualEvidence(criterion=new.criterion, item=new.item, filename=new.filename, sha256=new.sha256,
                         owner=new.owner, uploaded_by=new.uploaded_by, uploaded_at=uploaded_at,
                         effective_date=new.effective_date, expires_on=new.expires_on)
    session.add(row)
    session.flush()
    return _record(row)


def records(session: Session, *, criterion: Optional[str] = None,
            effective_by: Optional[dt.date] = None) -> list[EvidenceRecord]:
    """Records on file (of one criterion, effective on or before a day, if given), by effective date."""
    q = select(ManualEvidence).order_by(ManualEvidence.effective_date, ManualEvidence.id)
    if criterion is not None:
        q = q.where(ManualEvidence.criterion == criterion)
    if effective_by is not None:
        q = q.where(ManualEvidence.effective_date <= effective_by)
    return [_record(r) for r in session.scalars(q)]


def document(session: Session, sha256: str) -> Optional[bytes]:
    """A document's bytes (None: no such document)."""
    row = session.get(Document, sha256)
    return None if row is None else zlib.decompress(row.content)
