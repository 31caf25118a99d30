"""Manual evidence on file: the documents (content-addressed, compressed), their records (criterion,
item, owner, effective date, lapse) and their review (submitted by, pending / approved / rejected by
a second person with a reason, the incident a per-incident document evidences, version)."""
from __future__ import annotations

import datetime as dt
import zlib
from typing import Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from auditbook.evaluate.manual_evidence import EvidenceRecord, NewEvidence
from auditbook.store.db import utc
from auditbook.store.evidence_objects import EvidenceBucket, StoredObject, read_object
from auditbook.store.models import Document, Incident, ManualEvidence
from auditbook.store.models_evidence import EvidenceReview


def _record(row: ManualEvidence, review: Optional[EvidenceReview]) -> EvidenceRecord:
    if review is None:  # cannot happen after migration 0019 (every row gets one); never counted
        return EvidenceRecord(row.id, row.criterion, row.item, row.filename, row.sha256, row.owner, row.uploaded_by,
                              utc(row.uploaded_at), row.effective_date, row.expires_on, note="no review on file")
    return EvidenceRecord(row.id, row.criterion, row.item, row.filename, row.sha256, row.owner, review.submitted_by,
                          utc(row.uploaded_at), row.effective_date, row.expires_on, review.status, review.decided_by,
                          utc(review.decided_at), review.reason, review.incident_id, review.version, review.note,
                          review.subject, review.explanation, utc(review.explained_at))


def _query():
    return (select(ManualEvidence, EvidenceReview)
            .outerjoin(EvidenceReview, EvidenceReview.evidence_id == ManualEvidence.id))


def add(session: Session, new: NewEvidence, uploaded_at: dt.datetime,
        bucket: Optional[EvidenceBucket] = None) -> EvidenceRecord:
    """Store the document (once per content: in the store, or uploaded to `bucket` before the
    caller's transaction commits), its record and its review (pending)."""
    if session.get(Document, new.sha256) is None:
        if bucket is None:
            session.add(Document(sha256=new.sha256, size=len(new.content), content=zlib.compress(new.content, 6)))
        else:
            session.add(_placed(new.sha256, bucket.put_content(new.sha256, new.content)))
    row = ManualEvidence(criterion=new.criterion, item=new.item, filename=new.filename, sha256=new.sha256,
                         owner=new.owner, uploaded_by=new.uploaded_by, uploaded_at=uploaded_at,
                         effective_date=new.effective_date, expires_on=new.expires_on)
    session.add(row)
    session.flush()
    review = EvidenceReview(evidence_id=row.id, submitted_by=new.uploaded_by, status="pending",
                            incident_id=new.incident_id, version=1)
    session.add(review)
    session.flush()
    return _record(row, review)


def records(session: Session, *, criterion: Optional[str] = None, effective_by: Optional[dt.date] = None,
            status: Optional[str] = None) -> list[EvidenceRecord]:
    """Records on file (of one criterion, effective on or before a day, in a review status, if given),
    by effective date, each with its review."""
    q = _query().order_by(ManualEvidence.effective_date, ManualEvidence.id)
    if criterion is not None:
        q = q.where(ManualEvidence.criterion == criterion)
    if effective_by is not None:
        q = q.where(ManualEvidence.effective_date <= effective_by)
    if status is not None:
        q = q.where(EvidenceReview.status == status)
    return [_record(row, review) for row, review in session.execute(q)]


def record(session: Session, evidence_id: int) -> Optional[EvidenceRecord]:
    """One record with its review (None: no such record)."""
    found = session.execute(_query().where(ManualEvidence.id == evidence_id)).first()
    return None if found is None else _record(*found)


def decide_if_version(session: Session, evidence_id: int, version: int, *, status: str, by: str, role: str,
                      at: dt.datetime, reason: str) -> bool:
    """UPDATE … WHERE version = the version the decider saw and the document is still pending, moving
    the version on by one: False when another decision came first (nothing written)."""
    done = session.execute(update(EvidenceReview)
                           .where(EvidenceReview.evidence_id == evidence_id, EvidenceReview.version == version,
                                  EvidenceReview.status == "pending")
                           .values(status=status, decided_by=by, decided_role=role, decided_at=at, reason=reason,
                                   version=version + 1)
                           .execution_options(synchronize_session=False))
    return done.rowcount == 1


def annotate_if_version(session: Session, evidence_id: int, version: int, *, subject: Optional[str] = None,
                        explanation: Optional[str] = None, at: dt.datetime) -> bool:
    """Set a pending document's subject and/or explanation (UPDATE … WHERE version = the version the
    submitter saw and still pending, moving the version on): False when it changed first."""
    values = {"version": version + 1}
    if subject is not None:
        values["subject"] = subject
    if explanation is not None:
        values.update(explanation=explanation, explained_at=at)
    done = session.execute(update(EvidenceReview)
                           .where(EvidenceReview.evidence_id == evidence_id, EvidenceReview.version == version,
                                  EvidenceReview.status == "pending")
                           .values(**values).execution_options(synchronize_session=False))
    return done.rowcount == 1


def incidents_opened(session: Session, since: Optional[dt.date], until: dt.date) -> list[tuple[int, dt.date]]:
    """(id, day opened, UTC) of the incidents opened from `since` (None: ever) to `until`, inclusive:
    the population a per-incident item evidences."""
    q = select(Incident.id, Incident.created_at).order_by(Incident.id)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    q = q.where(Incident.created_at < end)
    if since is not None:
        q = q.where(Incident.created_at >= dt.datetime.combine(since, dt.time(), dt.timezone.utc))
    return [(i, utc(at).date()) for i, at in session.execute(q)]


def incident_exists(session: Session, incident_id: int) -> bool:
    return session.get(Incident, incident_id) is not None


def _placed(sha256: str, stored: StoredObject) -> Document:
    return Document(sha256=sha256, size=stored.size, content=b"", object_url=stored.url,
                    object_version=stored.version, retain_until=stored.retain_until)


def move_to_bucket(session: Session, sha256: str, bucket: EvidenceBucket) -> Optional[StoredObject]:
    """Upload a document held in the store to `bucket` and keep only where it is (None: no such
    document). One already in a bucket stays where it is."""
    row = session.get(Document, sha256)
    if row is None:
        return None
    if row.object_url is not None:
        return StoredObject(row.object_url, row.object_version, row.size, utc(row.retain_until))
    stored = bucket.put_content(sha256, zlib.decompress(row.content))
    row.content, row.object_url, row.object_version, row.retain_until = (
        b"", stored.url, stored.version, stored.retain_until)
    session.flush()
    return stored


def held_documents(session: Session) -> list[str]:
    """SHA-256 of every document the store holds itself (not in an evidence bucket)."""
    return list(session.scalars(select(Document.sha256).where(Document.object_url.is_(None)).order_by(Document.sha256)))


def document(session: Session, sha256: str) -> Optional[bytes]:
    """A document's bytes (None: no such document); one in the evidence bucket is read at its
    version and checked against its SHA-256 (EvidenceObjectError otherwise)."""
    row = session.get(Document, sha256)
    if row is None:
        return None
    return zlib.decompress(row.content) if row.object_url is None else read_object(
        sha256, row.object_url, row.object_version)


def object_refs(session: Session):
    """(sha256, url, version, retain_until) of every document kept in the evidence bucket."""
    q = (select(Document.sha256, Document.object_url, Document.object_version, Document.retain_until)
         .where(Document.object_url.is_not(None)).order_by(Document.sha256))
    for row in session.execute(q):
        yield tuple(row)
