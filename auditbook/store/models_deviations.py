"""Management's response to each deviation of a period (issue 14 §5): one row per deviation id (a
stable hash of what the deviation is, history.deviations.deviation_id), the facts it was recorded
against, the response's fields, who recorded it and when, and a version for UPDATE … WHERE version = ?.
Same Base and metadata as store/models.py."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import JSON, Boolean, Date, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from auditbook.store.models import Base

TEXT_CHARS = 4000  # root cause, compensating control, remediation, response
SHORT_CHARS = 200  # ticket, person


class DeviationResponse(Base):
    """The latest response to one deviation (every earlier one is in the audit trail)."""
    __tablename__ = "deviation_responses"
    deviation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[dict] = mapped_column(JSON)  # the deviation's facts when first responded to
    existed_at_start: Mapped[Optional[bool]] = mapped_column(Boolean, nullable=True)  # None: as computed
    existed_reason: Mapped[Optional[str]] = mapped_column(String(TEXT_CHARS), nullable=True)
    root_cause: Mapped[str] = mapped_column(String(TEXT_CHARS))
    ticket: Mapped[Optional[str]] = mapped_column(String(SHORT_CHARS), nullable=True)
    compensating: Mapped[Optional[str]] = mapped_column(String(TEXT_CHARS), nullable=True)
    remediation: Mapped[Optional[str]] = mapped_column(String(TEXT_CHARS), nullable=True)
    remediated_on: Mapped[Optional[dt.date]] = mapped_column(Date, nullable=True)
    response: Mapped[str] = mapped_column(String(TEXT_CHARS))
    responded_by: Mapped[str] = mapped_column(String(SHORT_CHARS))
    responded_role: Mapped[str] = mapped_column(String(20))
    responded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer)
