"""Application audit events from CloudWatch Logs → the store (populations for CC6.3 and CC8.1) and the
`app_events` alert rules, with the guarantees of the CloudTrail ingestion (docs/app-audit.md):

- **Checkpointed, never double-counted.** Each log group (app-audit.yml `sources`) is read with
  FilterLogEvents, paginated, from its checkpoint — the end of its last read that succeeded, or 14
  days before the group's creation the first time (the oldest event CloudWatch Logs takes) — to now.
  Each page's new events, the matches and alerts they raise commit together; an event is kept once
  by the group's own event id, so pages or cycles that overlap count nothing twice. The checkpoint
  stays `lag` behind now (an event may reach CloudWatch Logs a little late), so each cycle reads that
  stretch again; an event that arrives more than `lag` after its own time is not read (a limit).
- **A failed read is a coverage gap**, recorded with its time range and reason (`app_audit_reads`),
  never an empty success; the checkpoint does not move, so the next cycle reads the range again.
- **Hostile events are evidence gaps** (auditbook.monitor.app_audit_events): noted with their id, time
  and reason, and counted in the population's completeness; the rest is read.
- **Secrets never reach the store**: each message is redacted before it is stored or matched."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Callable, Optional

from botocore.exceptions import BotoCoreError, ClientError

from auditbook.collect.clients import aws_client, aws_error, new_session, retry_config
from auditbook.errors import one_line
from auditbook.monitor.alerts import dedup_key, fire
from auditbook.monitor.app_audit_config import AppAuditConfig, Source
from auditbook.monitor.app_audit_events import (
    cloudwatch_time,
    parse_message,
    rule_fields,
)
from auditbook.monitor.cloudtrail import IngestResult, Windows
from auditbook.monitor.cloudtrail_records import BadRecord, Gap, GapLog
from auditbook.monitor.rules import Rule
from auditbook.store import alerts as stored_alerts
from auditbook.store import app_audit as stored
from auditbook.store import cloudtrail as stored_matches
from auditbook.store.app_audit import MAX_ERROR, MAX_EVENT_ID, MAX_REASON, match_id
from auditbook.store.session import reading, writing

APP_RULES = "app_events"
# CloudWatch Logs takes events up to 14 days old (PutLogEvents): a group's first read starts that long
# before its creation, so events an agent sent late are not left out
MAX_EVENT_AGE = dt.timedelta(days=14)
SESSION_NAME = "auditbook-app-audit"


@dataclass
class AppIngestResult(IngestResult):
    """One log group's read: `records` events new to the store, `kept` of them read and `unread`
    not (each an evidence gap); `covered` the time range recorded as read (None: the read failed)."""
    kept: int = 0
    unread: int = 0
    covered: Optional[tuple] = None


def source_key(account: str, region: str, log_group: str) -> str:
    return f"{account}/{region}/{log_group}"


def connect(source: Source) -> tuple[object, str]:
    """(a CloudWatch Logs client for the source, its account): through the source's role when it names
    one, else the current credentials. A failure is a ClientError/BotoCoreError for the caller's gap."""
    sts = aws_client("sts", source.region)
    if not source.role:
        return aws_client("logs", source.region), sts.get_caller_identity()["Account"]
    params = {"RoleArn": source.role, "RoleSessionName": SESSION_NAME}
    if source.external_id:
        params["ExternalId"] = source.external_id
    creds = sts.assume_role(**params)["Credentials"]
    return (new_session(credentials=creds).create_client("logs", region_name=source.region, config=retry_config(4)),
            source.role.split(":")[4])


def _millis(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def _first_start(logs, log_group: str) -> dt.datetime:
    """Where the first read of a log group starts: MAX_EVENT_AGE before its creation (the oldest event
    it can hold); ResourceNotFound when it is not there."""
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=log_group):
        for group in page.get("logGroups", []):
            if group.get("logGroupName") == log_group:
                created = cloudwatch_time(group.get("creationTime"))
                return created - MAX_EVENT_AGE if created else dt.datetime(2010, 1, 1, tzinfo=dt.timezone.utc)
    raise ClientError({"Error": {"Code": "ResourceNotFoundException",
                                 "Message": f"the log group {log_group} does not exist"}}, "DescribeLogGroups")


def load_app_windows(engine, rules: list[Rule], now: dt.datetime) -> Windows:
    """The app_events rules' window memory from their stored matches (as cloudtrail.load_windows)."""
    windows = Windows()
    with reading(engine) as session:
        for rule in (r for r in rules if r.kind == APP_RULES):
            newest = stored_matches.newest_match_at(session, rule.name)
            if newest is None:
                continue
            since = min(newest, now) - dt.timedelta(seconds=rule.window)
            for key, at in stored_matches.match_times_since(session, rule.name, since):
                windows.times[(rule.name, key)].append(at.timestamp())
            for times in windows.times.values():
                times.sort()
    return windows


class _Reader:
    """One read of one log group: the rows of each page, the rules on them, the gaps."""

    def __init__(self, engine, where: dict, config: AppAuditConfig, rules: list[Rule], windows: Windows,
                 now: dt.datetime, result: AppIngestResult):
        self.engine, self.where, self.config, self.windows, self.now = engine, where, config, windows, now
        self.result = result
        self.rules = [r for r in rules if r.kind == APP_RULES]
        self.log = GapLog(where["source"])
        self.offset = 0

    def row(self, index: int, event: dict) -> Optional[dict]:
        """The stored row of one event (read, or unread with its reason); None when it has no usable
        id or time (then only a gap: it cannot be kept once)."""
        ident, arrived = event.get("eventId"), cloudwatch_time(event.get("timestamp"))
        if ident.__class__ is not str or not 0 < len(ident) <= MAX_EVENT_ID or not ident.isprintable() \
                or arrived is None:
            self.log.add(index, "eventId or timestamp missing or malformed")
            self.result.unread += 1
            return None
        base = {**self.where, "event_id": ident, "ingested_at": self.now}
        ingested = cloudwatch_time(event.get("ingestionTime")) or self.now
        latest = min(self.now, max(ingested, arrived)) + dt.timedelta(minutes=10)
        earliest = min(ingested, arrived) - dt.timedelta(seconds=self.config.lag_seconds)
        try:
            return {**base, **parse_message(event.get("message"), self.config, latest, earliest), "unread": None}
        except BadRecord as exc:
            reason = one_line(str(exc))[:MAX_REASON]
            self.log.add(index, reason)
            return {**base, "at": arrived, "kind": "", "event_type": "", "user": "", "source_ip": "", "user_agent": "",
                    "action": "", "outcome": "", "resource": "", "record": None, "record_sha256": "", "unread": reason}

    def page(self, events: list) -> None:
        """One FilterLogEvents page, committed: its new events, their matches and alerts."""
        with writing(self.engine) as session:
            ids = [e.get("eventId") for e in events if isinstance(e, dict) and isinstance(e.get("eventId"), str)]
            known = stored.known_ids(session, self.where["source"], ids)
            rows, seen = [], set()
            for index, event in enumerate(events, self.offset):
                if not isinstance(event, dict) or event.get("eventId") in known or event.get("eventId") in seen:
                    continue
                row = self.row(index, event)
                if row is not None:
                    seen.add(row["event_id"])
                    rows.append(row)
            stored.insert_events(session, rows)
            for row in rows:
                if row["unread"] is None:
                    self.match(session, row)
        self.offset += len(events)
        self.result.records += len(rows)
        self.result.kept += sum(r["unread"] is None for r in rows)
        self.result.unread += sum(r["unread"] is not None for r in rows)

    def match(self, session, row: dict) -> None:
        event = rule_fields(row)
        ident = match_id(row["source"], row["event_id"])
        for rule in (r for r in self.rules if r.test(event)):
            if stored_matches.match_exists(session, rule.name, ident):
                continue
            labels = {b: event.get(b, "") for b in rule.by}
            key = dedup_key(rule.name, labels)
            stored_matches.insert_match(session, rule=rule.name, labels_key=key, at=row["at"], event_id=ident,
                                        record=row["record"], record_sha256=row["record_sha256"])
            self.result.matches += 1
            if rule.passes(self.windows.add(rule, key, row["at"].timestamp())):
                alert = fire(session, rule=rule.name, labels=labels, severity=rule.severity,
                             soc2_control=rule.soc2_control, summary=rule.summary, at=row["at"], evidence=[ident])
                self.result.fired += alert["count"] == 1


def ingest_source(engine, logs, account: str, source: Source, config: AppAuditConfig, rules: list[Rule],
                  windows: Optional[Windows] = None, now: Optional[dt.datetime] = None) -> AppIngestResult:
    """Read one log group from its checkpoint to now (module docstring); the range up to now - lag is
    recorded as covered once every page is read, or the whole range as a gap when a call fails."""
    t0, now = time.perf_counter(), now or dt.datetime.now(dt.timezone.utc)
    result = AppIngestResult()
    where = {"source": source_key(account, source.region, source.log_group), "account": account,
             "region": source.region, "log_group": source.log_group}
    reader = _Reader(engine, where, config, rules, windows or load_app_windows(engine, rules, now), now, result)
    with reading(engine) as session:
        since = stored.checkpoint(session, where["source"])
    try:
        since = since or _first_start(logs, source.log_group)
        pages = logs.get_paginator("filter_log_events").paginate(
            logGroupName=source.log_group, startTime=_millis(since), endTime=_millis(now))
        for page in pages:
            reader.page(page.get("events", []))
    except (ClientError, BotoCoreError) as exc:
        result.source_error = aws_error(exc)
    settled = max(since or now, now - dt.timedelta(seconds=config.lag_seconds))
    row = {**where, "first_at": since or now, "last_at": now if result.source_error else settled, "read_at": now,
           "events": result.kept, "unread": result.unread,
           "error": result.source_error[:MAX_ERROR] if result.source_error else None}
    with writing(engine) as session:
        stored.add_read(session, row)
    result.covered = None if result.source_error else (row["first_at"], row["last_at"])
    result.gaps = reader.log.gaps() + ([Gap(where["source"], None, result.source_error)] if result.source_error else [])
    result.seconds = time.perf_counter() - t0
    return result


def _failed(source: Source, why: str) -> AppIngestResult:
    result = AppIngestResult(source_error=why)
    result.gaps.append(Gap(f"{source.region}/{source.log_group}", None, why))
    return result


def ingest(engine, config: AppAuditConfig, rules: list[Rule], now: Optional[dt.datetime] = None,
           connect_to: Callable[[Source], tuple] = connect) -> dict[str, AppIngestResult]:
    """Every source of app-audit.yml read once: {account/region/log group: result}. A source that
    cannot be reached (its role, its credentials) is a gap named by its region and log group; the
    others are still read. app_events alerts gone quiet after acknowledgement resolve."""
    now = now or dt.datetime.now(dt.timezone.utc)
    windows = load_app_windows(engine, rules, now)
    out: dict[str, AppIngestResult] = {}
    for source in config.sources:
        try:
            logs, account = connect_to(source)
        except (ClientError, BotoCoreError) as exc:
            out[f"{source.region}/{source.log_group}"] = _failed(source, f"cannot connect: {aws_error(exc)}")
            continue
        out[source_key(account, source.region, source.log_group)] = ingest_source(
            engine, logs, account, source, config, rules, windows, now)
    resolve_quiet_app(engine, rules, now)
    return out


def resolve_quiet_app(engine, rules: list[Rule], now: dt.datetime) -> int:
    """app_events alerts resolve once acknowledged and quiet for the rule's window (as CloudTrail's)."""
    resolved = 0
    with writing(engine) as session:
        for rule in (r for r in rules if r.kind == APP_RULES):
            resolved += stored_alerts.resolve_quiet(session, rule.name, "acknowledged",
                                                    now - dt.timedelta(seconds=rule.window), now)
    return resolved
