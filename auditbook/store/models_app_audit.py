"""Application audit events read from CloudWatch Logs (issue 15, auditbook.monitor.app_audit): each
event read once per log group (`app_audit_events`, by the group's own event id; an event that could
not be read keeps its reason and no content) and each read of a log group over a time range
(`app_audit_reads`: what was covered, or why it was not — a failed read is a coverage gap). Same Base
and metadata as store/models.py."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import JSON, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from auditbook.store.models import Base

MAX_SOURCE = 600  # account/region/log group (a log group name: at most 512 characters)
MAX_LOG_GROUP = 512
MAX_EVENT_ID = 100  # CloudWatch Logs event ids are 56 digits
MAX_KIND = 20
MAX_EVENT_TYPE = 100
MAX_USER = 512
MAX_SOURCE_IP = 100
MAX_USER_AGENT = 1024
MAX_ACTION = 200
MAX_OUTCOME = 100
MAX_RESOURCE = 1024
MAX_REASON = 500
MAX_ERROR = 1000


class AppAuditEvent(Base):
    """One event of an application audit log group: its fields as read (text, bounded, printable) and
    the message itself, redacted, with the SHA-256 of what is stored; or, when it could not be read,
    only why (`unread`), its CloudWatch time and id — counted in the population's completeness."""
    __tablename__ = "app_audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(MAX_SOURCE))
    account: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    log_group: Mapped[str] = mapped_column(String(MAX_LOG_GROUP))
    event_id: Mapped[str] = mapped_column(String(MAX_EVENT_ID))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))  # the event's time (unread: CloudWatch's)
    kind: Mapped[str] = mapped_column(String(MAX_KIND))  # data_access, system_change, admin_action, other; '' unread
    event_type: Mapped[str] = mapped_column(String(MAX_EVENT_TYPE))
    user: Mapped[str] = mapped_column(String(MAX_USER))
    source_ip: Mapped[str] = mapped_column(String(MAX_SOURCE_IP))
    user_agent: Mapped[str] = mapped_column(String(MAX_USER_AGENT))
    action: Mapped[str] = mapped_column(String(MAX_ACTION))
    outcome: Mapped[str] = mapped_column(String(MAX_OUTCOME))
    resource: Mapped[str] = mapped_column(String(MAX_RESOURCE))
    record: Mapped[Optional[dict]] = mapped_column(JSON(none_as_null=True), nullable=True)  # redacted
    record_sha256: Mapped[str] = mapped_column(String(64))  # '' when unread
    unread: Mapped[Optional[str]] = mapped_column(String(MAX_REASON), nullable=True)
    ingested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_app_audit_event", "source", "event_id", unique=True),
                      Index("ix_app_audit_event_at", "at"))


class AppAuditRead(Base):
    """One read of a log group over [first_at, last_at]: covered (error null) with the events it
    found, or not (error: why — a coverage gap until a later read covers the time)."""
    __tablename__ = "app_audit_reads"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(MAX_SOURCE))
    account: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    log_group: Mapped[str] = mapped_column(String(MAX_LOG_GROUP))
    first_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    read_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    events: Mapped[int] = mapped_column(Integer)  # new events kept
    unread: Mapped[int] = mapped_column(Integer)  # new events that could not be read
    error: Mapped[Optional[str]] = mapped_column(String(MAX_ERROR), nullable=True)
    __table_args__ = (Index("ix_app_audit_read", "source", "last_at"),)
