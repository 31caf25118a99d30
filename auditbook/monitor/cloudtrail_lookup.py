"""CloudTrail's LookupEvents (management events of the last 90 days, one account and region) → the
same event rules as the log files (auditbook.monitor.cloudtrail), for endpoints that have the API.
Read from the saved checkpoint (the setting `lookup:<region>`) to now. CloudTrail shows an event in
LookupEvents minutes after the call (typically ~5, up to LOOKUP_LAG), so the checkpoint stays LOOKUP_LAG
behind now: each cycle reads that window again (records and write events are kept once by eventID,
alerts fired once), and only the time up to now - LOOKUP_LAG is recorded as covered."""
from __future__ import annotations

import datetime as dt
import time
from typing import Any, Optional

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from auditbook.collect.clients import aws_error
from auditbook.errors import one_line
from auditbook.monitor.cloudtrail import (
    IngestResult,
    Windows,
    load_windows,
    parse_time,
    process_records,
    triage,
)
from auditbook.monitor.cloudtrail_changes import lookup_spans, write_events
from auditbook.monitor.cloudtrail_records import (
    Gap,
    GapLog,
    latest_event_time,
    merged_gaps,
)
from auditbook.monitor.rules import Rule
from auditbook.store import settings as stored_settings
from auditbook.store.changes import (
    MAX_ACCOUNT,
    MAX_REGION,
    add_coverage,
    insert_changes,
    new_changes,
)
from auditbook.store.session import reading, writing

LOOKUP_LAG = dt.timedelta(minutes=15)  # CloudTrail's delivery delay to LookupEvents (AWS: ~5 min, up to 15)


def _parse_events(events: list, offset: int, log: GapLog) -> list[tuple[int, Any]]:
    """(index, parsed record) of each event of a LookupEvents page; one that does not parse is a gap."""
    out = []
    for index, event in enumerate(events, offset):
        text = event.get("CloudTrailEvent") if isinstance(event, dict) else None
        if not isinstance(text, str):
            log.add(index, "CloudTrailEvent: missing")
            continue
        try:
            out.append((index, orjson.loads(text)))
        except orjson.JSONDecodeError as exc:
            log.add(index, f"CloudTrailEvent: not JSON: {one_line(exc)[:200]}")
    return out


def _read_page(session, events: list, offset: int, rules: list[Rule], windows: Windows, source: str,
               now: dt.datetime, accounts: set) -> tuple[int, int, int, list[Gap]]:
    """One LookupEvents page in the caller's unit of work: rule matches (alerts) and write events kept.
    -> (matches, alerts fired, write events, gaps); `accounts` gets the accounts the page's records name."""
    log = GapLog(source)
    parsed = _parse_events(events, offset, log)
    sorted_out = triage(parsed, rules, source)
    changes = new_changes(session, write_events(sorted_out.writes, latest_event_time(now), source, sorted_out.log))
    m, f, more = process_records(session, sorted_out.found, rules, windows, source, now)
    insert_changes(session, changes)
    accounts.update(_accounts(record for _index, record in parsed))
    return m, f, len(changes), merged_gaps(log.gaps(), sorted_out.log.gaps(), more)


def _accounts(records) -> set:
    """The accounts (12 digits) records name as their recipient."""
    named = (r.get("recipientAccountId") for r in records if isinstance(r, dict))
    return {a for a in named if isinstance(a, str) and len(a) == MAX_ACCOUNT and a.isdigit() and a.isascii()}


def ingest_lookup(engine, client, rules: list[Rule], windows: Optional[Windows] = None,
                  now: Optional[dt.datetime] = None, first_lookback: dt.timedelta = dt.timedelta(hours=1)) -> IngestResult:
    """From the saved checkpoint to now, each page committed with the checkpoint, records counted
    once (by eventID) even where pages (or cycles: the last LOOKUP_LAG is read again) overlap; the
    checkpoint and the coverage end at now - LOOKUP_LAG, as events may still appear before it. An
    endpoint without the API gets an evidence gap, never a silent nothing; so does a record of the
    wrong shape (its index counts the events read in this call). Once every page is read, the time
    range up to now - LOOKUP_LAG is recorded as covered for the region and each account the records
    name (with the checkpoint)."""
    t0 = time.perf_counter()
    result = IngestResult()
    now = now or dt.datetime.now(dt.timezone.utc)
    windows = windows or load_windows(engine, rules, now)
    key, source = f"lookup:{client.meta.region_name}", f"lookup_events {client.meta.region_name}"
    with reading(engine) as session:
        saved = stored_settings.read(session, key)
    since = parse_time(saved["until"]) if saved else now - first_lookback
    accounts: set = set()
    try:
        for page in client.get_paginator("lookup_events").paginate(StartTime=since, EndTime=now):
            events = page.get("Events", [])
            with writing(engine) as session:
                m, f, c, gaps = _read_page(session, events, result.records, rules, windows, source, now, accounts)
                stored_settings.create_if_missing(session, key, {"until": since.isoformat()})
            result.records += len(events)
            result.matches += m
            result.fired += f
            result.changes += c
            result.gaps += gaps
    except (ClientError, BotoCoreError) as exc:
        result.source_error = aws_error(exc)
        result.gaps.append(Gap(source, None, result.source_error))
        result.seconds = time.perf_counter() - t0
        return result
    settled = max(since, now - LOOKUP_LAG)  # an event before this has been delivered
    with writing(engine) as session:
        stored_settings.write(session, key, {"until": settled.isoformat()})
        add_coverage(session, _coverage(accounts, client.meta.region_name, since, settled, source, result))
    result.seconds = time.perf_counter() - t0
    return result


def _coverage(accounts: set, region: str, since: dt.datetime, until: dt.datetime, source: str,
              result: IngestResult) -> list[dict]:
    if len(region) > MAX_REGION:
        return []
    unread = sum(g.index is not None for g in result.gaps)
    return [{"account": account, "region": region, "first_at": start, "last_at": end, "source": source,
             "records": result.records, "unread": unread}
            for account in sorted(accounts) for start, end in lookup_spans(since, until)]
