"""The review of each manual evidence document (issue 14 §2): who submitted it, whether a second
person approved or rejected it (who, when, why), the incident a per-incident document evidences,
and a version for the approver's UPDATE … WHERE version = ?. Same Base and metadata as store/models.py."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from auditbook.store.models import Base

REASON_CHARS = 2000


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
    version: Mapped[int] = mapped_column(Integer)
