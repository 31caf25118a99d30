"""CloudTrail's LookupEvents (management events of the last 90 days, one account and region) → the
same event rules as the log files (auditbook.monitor.cloudtrail), for endpoints that have the API.
Read from the saved checkpoint (the setting `lookup:<region>`) to now."""
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
    candidates,
    load_windows,
    parse_time,
    process_records,
)
from auditbook.monitor.cloudtrail_records import Gap, GapLog
from auditbook.monitor.rules import Rule
from auditbook.store import settings as stored_settings
from auditbook.store.session import reading, writing


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


def _by_index(gaps: list[Gap]) -> list[Gap]:
    return sorted(gaps, key=lambda g: (g.index is None, g.index or 0))


def ingest_lookup(engine, client, rules: list[Rule], windows: Optional[Windows] = None,
                  now: Optional[dt.datetime] = None, first_lookback: dt.timedelta = dt.timedelta(hours=1)) -> IngestResult:
    """From the saved checkpoint to now, each page committed with the checkpoint, records counted
    once (by eventID) even where pages overlap. An endpoint without the API gets an evidence gap,
    never a silent nothing; so does a record of the wrong shape (its index counts the events read in
    this call)."""
    t0 = time.perf_counter()
    result = IngestResult()
    now = now or dt.datetime.now(dt.timezone.utc)
    windows = windows or load_windows(engine, rules, now)
    key, source = f"lookup:{client.meta.region_name}", f"lookup_events {client.meta.region_name}"
    with reading(engine) as session:
        saved = stored_settings.read(session, key)
    since = parse_time(saved["until"]) if saved else now - first_lookback
    try:
        for page in client.get_paginator("lookup_events").paginate(StartTime=since, EndTime=now):
            events, log = page.get("Events", []), GapLog(source)
            found, bad = candidates(_parse_events(events, result.records, log), rules, source)
            with writing(engine) as session:
                m, f, more = process_records(session, found, rules, windows, source, now)
                stored_settings.create_if_missing(session, key, {"until": since.isoformat()})
            result.records += len(events)
            result.matches += m
            result.fired += f
            result.gaps += _by_index(log.gaps() + bad + more)
    except (ClientError, BotoCoreError) as exc:
        result.source_error = aws_error(exc)
        result.gaps.append(Gap(source, None, result.source_error))
        result.seconds = time.perf_counter() - t0
        return result
    with writing(engine) as session:
        stored_settings.write(session, key, {"until": now.isoformat()})
    result.seconds = time.perf_counter() - t0
    return result
