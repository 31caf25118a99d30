"""The review of each manual evidence document (issue 14 §2): who submitted it, whether a second
person approved or rejected it (who, when, why), the incident (or, since 0021, the change or account)
a per-event document evidences, the explanation of a flagged one, and a version for the approver's
UPDATE … WHERE version = ?. Same Base and metadata as store/models.py."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from auditbook.store.models import Base

REASON_CHARS = 2000
EXPLANATION_CHARS = 2000
SUBJECT_CHARS = 200


class EvidenceReview(Base):
    """One row per manual_evidence row: pending until a person other than the submitter, with the
    approve_evidence permission, approves or rejects it with a reason. Only an approved document
    counts for its criterion."""
    __tablename__ = "evidence_reviews"
    evidence_id: Mapped[int] = mapped_column(ForeignKey("manual_evidence.id"), primary_key=True)
    submitted_by: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), index=True)  # pending, approved, rejected
    decided_by: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    decided_role: Mapped[Optional[str]] = mapped_column(String(20), nullable=True)
    decided_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    reason: Mapped[Optional[str]] = mapped_column(String(REASON_CHARS), nullable=True)
    incident_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True, index=True)
    note: Mapped[Optional[str]] = mapped_column(String(300), nullable=True)  # e.g. why a migrated one is pending
    # the change (event id or ticket) or account a per-change / per-account document evidences (0021)
    subject: Mapped[Optional[str]] = mapped_column(String(SUBJECT_CHARS), nullable=True)
    # why a flagged (late, backdated) document came late: its submitter's, approved with it (0021)
    explanation: Mapped[Optional[str]] = mapped_column(String(EXPLANATION_CHARS), nullable=True)
    explained_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer)
