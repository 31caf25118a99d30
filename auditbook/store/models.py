"""Tables. History is kept as intervals of unchanged state (first_run..last_run, closed_run), so
storage grows with changes, not with runs x resources."""
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
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    tool_version: Mapped[str] = mapped_column(String(40))
    catalog_sha256: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict] = mapped_column(JSON)
    identities: Mapped[list] = mapped_column(JSON)  # per account: sts:GetCallerIdentity or the error
    api_calls: Mapped[int] = mapped_column(Integer)
    counts: Mapped[dict] = mapped_column(JSON)  # findings per status


class RunScope(Base):
    """What a run attempted: each (account, region, resource type), and whether it was read."""
    __tablename__ = "run_scopes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    account: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str] = mapped_column(String(80))
    ok: Mapped[bool] = mapped_column(Boolean)


class GapRow(Base):
    __tablename__ = "gaps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    account: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str] = mapped_column(String(80))
    resource: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    call: Mapped[str] = mapped_column(String(120))
    error: Mapped[str] = mapped_column(String(120))
    message: Mapped[str] = mapped_column(Text)


class Evidence(Base):
    """A raw API response, redacted, as canonical JSON (zlib), addressed by its SHA-256."""
    __tablename__ = "evidence"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # empty when object_url names the bucket copy (0023)
    size: Mapped[int] = mapped_column(Integer)
    first_run_id: Mapped[int] = mapped_column(Integer)
    # where an object-locked copy is (store/evidence_objects.py): s3://bucket/key, its version, retained until
    object_url: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    object_version: Mapped[Optional[str]] = mapped_column(String(1024), nullable=True)
    retain_until: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)


class RecordBlob(Base):
    """A normalised resource record (canonical JSON, zlib), addressed by its SHA-256."""
    __tablename__ = "records"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class ResourceState(Base):
    __tablename__ = "resource_states"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(80))
    account: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    scope_region: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(Text)
    arn: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    record_sha256: Mapped[str] = mapped_column(String(64))
    evidence: Mapped[list] = mapped_column(JSON)
    first_run: Mapped[int] = mapped_column(Integer)
    last_run: Mapped[int] = mapped_column(Integer)
    closed_run: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    __table_args__ = (Index("ix_resource_open", "closed_run", "account", "scope_region", "resource_type"),)


class FindingState(Base):
    __tablename__ = "finding_states"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    check_id: Mapped[str] = mapped_column(String(100))
    controls: Mapped[list] = mapped_column(JSON)
    resource_type: Mapped[str] = mapped_column(String(80))
    account: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    scope_region: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(Text)
    resource: Mapped[str] = mapped_column(Text)
    resource_name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[list] = mapped_column(JSON)
    first_run: Mapped[int] = mapped_column(Integer)
    last_run: Mapped[int] = mapped_column(Integer)
    closed_run: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    __table_args__ = (
        Index("ix_finding_open", "closed_run", "account", "scope_region", "resource_type"),
        Index("ix_finding_runs", "first_run", "last_run"),
        Index("ix_finding_check", "check_id"),
    )


class Document(Base):
    """An uploaded manual-evidence file, content-addressed (zlib-compressed bytes, or an object-locked
    copy in the evidence bucket: content empty, object_url, object_version, retain_until as Evidence)."""
    __tablename__ = "documents"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)  # empty when object_url names the bucket copy (0023)
    object_url: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    object_version: Mapped[Optional[str]] = mapped_column(String(1024), nullable=True)
    retain_until: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)


class ManualEvidence(Base):
    """One piece of manual evidence for a criterion's required item. The effective date (not the
    upload time) places it in an audit period; it lapses at expires_on (from the item's cadence)."""
    __tablename__ = "manual_evidence"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    criterion: Mapped[str] = mapped_column(String(10), index=True)
    item: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(ForeignKey("documents.sha256"))
    owner: Mapped[str] = mapped_column(String(200))
    uploaded_by: Mapped[str] = mapped_column(String(200))
    uploaded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    effective_date: Mapped[dt.date] = mapped_column(Date)
    expires_on: Mapped[Optional[dt.date]] = mapped_column(Date, nullable=True)  # None: per-event, no lapse


class Packet(Base):
    """An audit packet built from the store: where it was written, its manifest's SHA-256 and the
    previous packet's (the chain across periods)."""
    __tablename__ = "packets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period_label: Mapped[str] = mapped_column(String(40))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    path: Mapped[str] = mapped_column(Text)
    manifest_sha256: Mapped[str] = mapped_column(String(64), index=True)
    previous_manifest_sha256: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    signer_algorithm: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(Text)
    built_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    run_ids: Mapped[list] = mapped_column(JSON)
    failed: Mapped[list] = mapped_column(JSON)  # criteria whose notebook failed, with the error


class CriterionCount(Base):
    """Each run's posture per criterion (what the control room's trend reads: 61 rows a run)."""
    __tablename__ = "criterion_counts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    criterion: Mapped[str] = mapped_column(String(10))
    passed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    excepted: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))


class Alert(Base):
    """One alert, deduplicated by rule and labels (dedup_key); firing -> acknowledged -> resolved.
    Its triage (assignee, decision and reason, who and when, the incident it became, when a missed
    triage target was escalated) and the suppression that silenced it are kept on the row; every
    change by a person is in the audit trail. `version` moves on with each change of state or
    triage (not with each new occurrence, which only adds to count and last_seen)."""
    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(100))
    dedup_key: Mapped[str] = mapped_column(String(600), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    soc2_control: Mapped[str] = mapped_column(String(40))
    labels: Mapped[dict] = mapped_column(JSON)
    summary: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[list] = mapped_column(JSON)
    acknowledged_by: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    acknowledged_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    version: Mapped[int] = mapped_column(Integer)
    assignee: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    triage_decision: Mapped[Optional[str]] = mapped_column(String(24), nullable=True)  # None: not triaged
    triage_reason: Mapped[Optional[str]] = mapped_column(String(2000), nullable=True)
    triaged_by: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    triaged_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    triage_escalated_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    # when auditbook raised it as firing (never before the event; the triage clock starts here): a
    # backlog of old CloudTrail logs is not overdue the moment it is read; None while pending
    fired_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    incident_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)  # the incident it became
    suppression_id: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)  # alert_suppressions.id
    __table_args__ = (Index("ix_alert_rule", "rule"),)


class Incident(Base):
    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    assignee: Mapped[Optional[str]] = mapped_column(String(200), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    links: Mapped[list] = mapped_column(JSON)  # [{"kind": criterion|finding|alert, "ref": ..., "label": ...}]
    version: Mapped[int] = mapped_column(Integer)
    # the post-mortem (CC7.4, CC7.5); root cause and lessons are required to close a high/critical one
    category: Mapped[Optional[str]] = mapped_column(String(40), nullable=True)
    impact_systems: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    impact_data: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    customers_affected: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)  # None: not assessed
    customer_notice_required: Mapped[Optional[bool]] = mapped_column(Boolean, nullable=True)  # None: undecided
    customers_notified_on: Mapped[Optional[dt.date]] = mapped_column(Date, nullable=True)
    regulator_notice_required: Mapped[Optional[bool]] = mapped_column(Boolean, nullable=True)
    regulator_notified_on: Mapped[Optional[dt.date]] = mapped_column(Date, nullable=True)
    root_cause: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    lessons_learned: Mapped[Optional[str]] = mapped_column(Text, nullable=True)


class AuditEntry(Base):
    """The append-only audit trail: every change made through auditbook (who, when, before, after).
    Incident notes are entries too; nothing here is ever updated or deleted."""
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str] = mapped_column(String(100))
    before: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)
    after: Mapped[Optional[dict]] = mapped_column(JSON, nullable=True)
    note: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    __table_args__ = (Index("ix_audit_object", "object_type", "object_id"),)


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)


class CloudTrailObject(Base):
    """A CloudTrail log file read into the store (once: its matches and this row commit together)."""
    __tablename__ = "cloudtrail_objects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    bucket: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(1024))
    etag: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    records: Mapped[int] = mapped_column(Integer)
    read_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    gaps: Mapped[Optional[list]] = mapped_column(JSON, nullable=True)  # [{index, reason}]: records not read
    # {reason, cap}: the file could not be read at all under that inflated-size cap (null: it was read);
    # it is fetched again only once its etag or size changes, or the cap grows
    unreadable: Mapped[Optional[dict]] = mapped_column(JSON(none_as_null=True), nullable=True)
    __table_args__ = (Index("ix_cloudtrail_object", "bucket", "key", unique=True),)


class CloudTrailMatch(Base):
    """A CloudTrail record that matched an event rule: the evidence behind its alerts, and the
    window counts' memory across watch cycles."""
    __tablename__ = "cloudtrail_matches"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(100))
    labels_key: Mapped[str] = mapped_column(String(600))
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[str] = mapped_column(String(100))
    record: Mapped[dict] = mapped_column(JSON)  # redacted (auditbook.collect.evidence.redact_cloudtrail)
    record_sha256: Mapped[str] = mapped_column(String(64))  # of the canonical JSON of `record`, as stored
    __table_args__ = (Index("ix_cloudtrail_match_window", "rule", "labels_key", "at"),
                      Index("ix_cloudtrail_match_event", "rule", "event_id", unique=True))


class Notification(Base):
    """One notification to Slack, PagerDuty or Jira: what, where, and how it went (after retries)."""
    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(20))  # trigger, acknowledge, resolve, create
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(10))  # sent, failed
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    response: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_notification_object", "channel", "object_type", "object_id", "event"),)


# the resource timeline reads a resource's states by its ARN
Index("ix_resource_arn", ResourceState.arn)
