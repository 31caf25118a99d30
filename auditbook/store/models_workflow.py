"""Tables of the analyst's workflow: alert suppressions, incident action items and attachments,
the CloudTrail write events kept per resource with their coverage, scan requests from the app,
record tags and evidence reminders. Same Base and metadata as store/models.py."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from auditbook.store.models import Base


class AlertSuppression(Base):
    """A rule silenced for a label set (an alert matches when its labels include every one of them)
    until a time, with the reason. Matching alerts are kept and shown as suppressed, never notified
    or escalated; it lapses at `until` (lifting it early sets `until` to that moment)."""
    __tablename__ = "alert_suppressions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(100))
    labels: Mapped[dict] = mapped_column(JSON)
    until: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(String(2000))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    lifted_by: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    lifted_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("ix_alert_suppression_rule", "rule", "until"),)


class IncidentAction(Base):
    """An action item of an incident's post-mortem: who does what by when, and when it was done."""
    __tablename__ = "incident_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    text: Mapped[str] = mapped_column(String(1000))
    owner: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[dt.date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    done_by: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    done_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer)


class IncidentAttachment(Base):
    """A file attached to an incident; its bytes are a content-addressed document (like manual evidence)."""
    __tablename__ = "incident_attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(ForeignKey("documents.sha256"))
    size: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CloudTrailChange(Base):
    """A CloudTrail write event that names a resource (the change behind a finding): who, when, from
    where, which call — kept for every write event read, not only those a rule matched. Its request
    parameters are redacted (auditbook.collect.evidence.redact_cloudtrail) and capped in size."""
    __tablename__ = "cloudtrail_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    account: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    event_source: Mapped[str] = mapped_column(String(100))
    event_name: Mapped[str] = mapped_column(String(100))
    principal: Mapped[str] = mapped_column(Text)  # userIdentity.arn (or principalId, or type)
    principal_type: Mapped[str] = mapped_column(String(40))
    session_name: Mapped[str] = mapped_column(String(100))  # the role session name; '' when none
    source_ip: Mapped[str] = mapped_column(String(100))
    user_agent: Mapped[str] = mapped_column(Text)
    error_code: Mapped[str] = mapped_column(String(100))  # '' when the call succeeded
    tags: Mapped[Optional[dict]] = mapped_column(JSON(none_as_null=True), nullable=True)  # tags in the request
    request: Mapped[Optional[dict]] = mapped_column(JSON(none_as_null=True), nullable=True)  # redacted, capped
    source: Mapped[str] = mapped_column(String(1300))  # bucket/key of the log file, or lookup_events <region>
    simulated: Mapped[bool] = mapped_column(Boolean)  # a record of auditbook's demo (auditbookSimulated)
    __table_args__ = (Index("ix_cloudtrail_change_event", "event_id", unique=True),)


class CloudTrailChangeResource(Base):
    """A resource a CloudTrail write event touched, by the key the resource timeline looks it up with
    (the ARN the collectors give it, IAM paths left out: auditbook.store.changes.resource_key)."""
    __tablename__ = "cloudtrail_change_resources"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource: Mapped[str] = mapped_column(String(1024))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(String(100))
    __table_args__ = (Index("ix_change_resource", "resource", "at", "event_id", unique=True),)


class CloudTrailCoverage(Base):
    """CloudTrail input read for an account and region: a log file (its first and last event times) or
    a LookupEvents call (the time range asked for). A time no row covers is an evidence gap."""
    __tablename__ = "cloudtrail_coverage"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    first_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(1300))
    records: Mapped[int] = mapped_column(Integer)
    unread: Mapped[int] = mapped_column(Integer)  # records of it that could not be read (evidence gaps)
    __table_args__ = (Index("ix_cloudtrail_coverage", "account", "region", "first_at"),)




class ScanRequest(Base):
    """A scan started from the control room: who asked for it, with what, its progress and outcome.
    `slot` is 1 while the request is queued or running and NULL afterwards: its unique index lets one
    request hold it at a time, in every database (NULLs never collide)."""
    __tablename__ = "scan_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    slot: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    state: Mapped[str] = mapped_column(String(16))  # queued, running, done, failed, abandoned
    requested_by: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    options: Mapped[dict] = mapped_column(JSON)  # regions, criterion, and the scope taken from the latest run
    heartbeat_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    planned: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)  # collection jobs
    done: Mapped[int] = mapped_column(Integer)
    current: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)  # the scope collected last
    run_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    error: Mapped[Optional[str]] = mapped_column(String(2000), nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    __table_args__ = (Index("ix_scan_request_slot", "slot", unique=True),)


class RecordTag(Base):
    """An environment or owner tag of a stored resource record (records.sha256), read once from the
    record for the posture filters."""
    __tablename__ = "record_tags"
    record_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)  # lower case
    value: Mapped[str] = mapped_column(String(256))
    __table_args__ = (Index("ix_record_tag", "key", "value"),)


class TaggedRecord(Base):
    """A record whose tags have been read into record_tags (with or without any)."""
    __tablename__ = "tagged_records"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)


class EvidenceReminder(Base):
    """One manual-evidence item an owner was reminded of (or a reminder that failed): which item,
    whose, on which channel, when. A reminder sent is not sent again the same day."""
    __tablename__ = "evidence_reminders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[dt.date] = mapped_column(Date)  # the day reminded for
    owner: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    criterion: Mapped[str] = mapped_column(String(10))
    item: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(10))  # due (lapses soon), expired, missing
    due_on: Mapped[Optional[dt.date]] = mapped_column(Date, nullable=True)  # when it lapses (due) or lapsed
    status: Mapped[str] = mapped_column(String(10))  # sent, failed
    error: Mapped[Optional[str]] = mapped_column(String(300), nullable=True)  # the failure's class, never a secret
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_evidence_reminder_day", "day", "owner", "channel"),)
