"""CloudTrail log files → alerts. Reads the files CloudTrail writes to its bucket
(`AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`, gzipped `{"Records": [...]}`),
incrementally: each file is read once, and its matches, the alerts they raise and the note that the
file was read commit in one transaction — a crash mid-file leaves nothing, and the next cycle reads
the file again from the start, so nothing is counted twice. Event rules count matching records per
label set in a sliding window (auditbook.monitor.rules).

Every file is hostile until read: it is inflated as a stream up to a cap (a gzip bomb stops there),
and a file that is not gzip, not JSON or not `{"Records": [...]}` is an evidence gap (not marked
read, reported every cycle; noted with its ETag so an unchanged bad file is not fetched again).
Inside a file, a record of the wrong shape is a gap (file, index, reason), and so is one dated after
the file was delivered; the rest of the file is read. A bucket that cannot be listed is a gap too.
A matching record is stored redacted (auditbook.collect.evidence.redact_cloudtrail) with the SHA-256 of
what was stored."""
from __future__ import annotations

import bisect
import datetime as dt
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Optional

from botocore.exceptions import BotoCoreError, ClientError

from auditbook.collect.clients import aws_error
from auditbook.monitor.alerts import dedup_key, fire
from auditbook.monitor.cloudtrail_changes import (
    file_span,
    is_write,
    keep_file_changes,
    write_events,
)
from auditbook.monitor.cloudtrail_records import (  # noqa: F401
    DEFAULT_MAX_INFLATED,
    FUTURE_SLACK,
    LOG_KEY,
    MAX_DEPTH,
    MAX_ENV,
    BadFile,
    BadRecord,
    Gap,
    GapLog,
    cheap_fields,
    delivered_at,
    event_id,
    event_time,
    fetch,
    latest_event_time,
    list_log_keys,
    max_inflated,
    merged_gaps,
    normalise,
    read_log,
    stored_form,
    too_deep,
)
from auditbook.monitor.rules import Rule, load_rules
from auditbook.store import alerts as stored_alerts
from auditbook.store import cloudtrail as stored
from auditbook.store.session import reading, writing


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Windows:
    """Per (rule, label set): the times of matching records inside the rule's window."""
    times: dict = field(default_factory=lambda: defaultdict(list))

    def add(self, rule: Rule, key: str, at: float) -> int:
        """Remember a matching record at `at`; -> how many are in its window (at - window, at]. Only
        times before this record's window are forgotten (memory stays flat as input grows): never
        relative to the newest time seen, which one record dated ahead would make everything else."""
        seen = self.times[(rule.name, key)]
        bisect.insort(seen, at)
        cut = bisect.bisect_left(seen, at - rule.window)
        if cut:
            del seen[:cut]
        return bisect.bisect_right(seen, at)


@dataclass
class IngestResult:
    files: int = 0
    skipped: int = 0
    records: int = 0
    matches: int = 0
    fired: int = 0
    changes: int = 0  # write events naming a resource (kept for the resource timeline)
    seconds: float = 0.0
    gaps: list = field(default_factory=list)  # Gap: evidence gaps, never silently dropped
    source_error: Optional[str] = None  # why the source could not be read at all (a bucket not listed)

    @property
    def bad_files(self) -> list[tuple[str, str]]:
        """(where, reason) of each gap: the file, or the file and the record's index."""
        return [(g.where, g.reason) for g in self.gaps]


def _labels(rule: Rule, event: dict) -> dict:
    return {b: event.get(b, "") for b in rule.by}


def load_windows(engine, rules: list[Rule], now: Optional[dt.datetime] = None) -> Windows:
    """Window memory from the matches already stored: each rule's window before its newest match, or
    before now if that is earlier (a record dated a little ahead does not move the window past the
    records about to be read)."""
    windows = Windows()
    now = now or dt.datetime.now(dt.timezone.utc)
    with reading(engine) as session:
        for rule in rules:
            if rule.kind != "events":
                continue
            newest = stored.newest_match_at(session, rule.name)
            if newest is None:
                continue
            since = min(newest, now) - dt.timedelta(seconds=rule.window)
            for key, at in stored.match_times_since(session, rule.name, since):
                bisect.insort(windows.times[(rule.name, key)], at.timestamp())
    return windows


@dataclass
class Triaged:
    """One file's (or LookupEvents page's) records sorted out on their cheap fields: those some event
    rule may match, the write events, the smallest and largest eventTime text, and the gaps."""
    found: list = field(default_factory=list)  # (index, record)
    writes: list = field(default_factory=list)  # (index, record)
    first: Optional[str] = None
    last: Optional[str] = None
    log: GapLog = field(default_factory=lambda: GapLog(""))


def triage(records: Iterable[tuple[int, Any]], rules: list[Rule], source: str = "") -> Triaged:
    """The records (index, record) some event rule may match, judged on four fields read without
    normalising (most records: none, and nothing more is read from them), the write events (kept for
    the resource timeline), the span of eventTimes, and the gaps: records that are not objects, whose
    four fields are not text, or (candidates) nested too deep."""
    anchors = [r.anchor for r in rules if r.kind == "events"]
    out = Triaged(log=GapLog(source))
    found, writes, first, last = out.found, out.writes, None, None
    for index, record in records:
        try:
            cheap = cheap_fields(record)
        except BadRecord as exc:
            out.log.add(index, str(exc))
            continue
        at = record.get("eventTime")
        if at.__class__ is str:
            if first is None or at < first:
                first = at
            if last is None or at > last:
                last = at
        for anchor in anchors:
            if anchor(cheap):
                if too_deep(record):
                    out.log.add(index, f"nested more than {MAX_DEPTH} levels deep")
                else:
                    found.append((index, record))
                break
        if is_write(record, cheap["eventName"]):
            writes.append((index, record))
    out.first, out.last = first, last
    return out


_WORKER_RULES: dict = {}


class ScannedFile(NamedTuple):
    records: int
    found: list  # (index, record) some event rule may match
    changes: list  # write events naming a resource, as stored (store.changes.insert_changes)
    span: Optional[tuple]  # (first, last) event time: what the file covers
    gaps: list
    error: Optional[str]  # why the whole file could not be read


def scan_file(body: Optional[bytes], rules_path: Optional[str], cap: int = DEFAULT_MAX_INFLATED,
              source: str = "", latest: Optional[dt.datetime] = None) -> ScannedFile:
    """In a worker process: scan_file_local with the rules loaded once per process."""
    if rules_path not in _WORKER_RULES:
        _WORKER_RULES[rules_path] = load_rules(rules_path)
    return scan_file_local(body, _WORKER_RULES[rules_path], cap, source, latest)


def scan_file_local(body: Optional[bytes], rules: list[Rule], cap: int = DEFAULT_MAX_INFLATED,
                    source: str = "", latest: Optional[dt.datetime] = None) -> ScannedFile:
    """Inflate, parse and prefilter one log file, and take its write events out; `latest`: the latest
    eventTime believed (latest_event_time; default: now plus the slack)."""
    if body is None:
        return ScannedFile(0, [], [], None, [], "not fetched")
    try:
        records = read_log(body, cap)
    except BadFile as exc:
        return ScannedFile(0, [], [], None, [], str(exc))
    latest = latest or latest_event_time(dt.datetime.now(dt.timezone.utc))
    sorted_out = triage(enumerate(records), rules, source)
    key = LOG_KEY.search(source)
    changes = write_events(sorted_out.writes, latest, source, sorted_out.log, key.group(1) if key else "")
    span = file_span(sorted_out.first, sorted_out.last, latest)
    return ScannedFile(len(records), sorted_out.found, changes, span, sorted_out.log.gaps(), None)


def process_records(session, found: Iterable[tuple[int, dict]], rules: list[Rule], windows: Windows,
                    source: str = "", now: Optional[dt.datetime] = None,
                    delivered: Optional[dt.datetime] = None) -> tuple[int, int, list[Gap]]:
    """Match prefiltered records (index, record) against the event rules, store each match (redacted,
    with its hash), fire alerts. A record of the wrong shape is a gap, and so is one dated after the
    file was `delivered` (or after now). -> (matches, fired, gaps)"""
    event_rules = [r for r in rules if r.kind == "events"]
    latest = latest_event_time(now or dt.datetime.now(dt.timezone.utc), delivered)
    matches = fired = 0
    seen: set = set()
    log = GapLog(source)
    for index, record in found:
        try:
            event = normalise(record)
            hits = [rule for rule in event_rules if rule.test(event)]
            if not hits:
                continue
            at, ident = event_time(record.get("eventTime"), latest), event_id(record.get("eventID"))
            kept, sha = stored_form(record)
        except BadRecord as exc:
            log.add(index, str(exc))
            continue
        for rule in hits:
            if (rule.name, ident) in seen or stored.match_exists(session, rule.name, ident):
                continue  # the same record delivered twice: counted once
            labels = _labels(rule, event)
            key = dedup_key(rule.name, labels)
            seen.add((rule.name, ident))
            stored.insert_match(session, rule=rule.name, labels_key=key, at=at, event_id=ident, record=kept,
                                record_sha256=sha)
            matches += 1
            if rule.passes(windows.add(rule, key, at.timestamp())):
                alert = fire(session, rule=rule.name, labels=labels, severity=rule.severity,
                             soc2_control=rule.soc2_control, summary=rule.summary, at=at, evidence=[ident])
                fired += alert["count"] == 1
    return matches, fired, log.gaps()


def _windowed(pool, fn, calls: Iterable[tuple], window: int):
    """fn(*args) for each call in the pool, results in order, with at most `window` calls submitted
    and not yet consumed: a backlog's files are fetched as the workers need them, not all held in
    memory at once (Executor.map submits every call up front)."""
    pending: deque = deque()
    for args in calls:
        pending.append(pool.submit(fn, *args))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _still_unreadable(known: Optional[tuple], etag: str, size: int, cap: int) -> Optional[str]:
    """Why a file found unreadable before still is — the same object (ETag and size), and a cap no
    larger than then — without fetching it again; None when it must be read."""
    if known is None or known[2] is None:
        return None
    old_etag, old_size, unreadable = known
    if (old_etag, old_size) != (etag, size) or cap > unreadable.get("cap", 0):
        return None
    return f"{unreadable.get('reason', 'unreadable')} (the same object as before: not fetched again)"


def _mark(session, bucket: str, key: str, etag: str, size: int, records: int, gaps: list,
          unreadable: Optional[dict]) -> None:
    """The file's row in cloudtrail_objects: read (with the gaps of its records), or unreadable."""
    stored.mark_object(session, bucket, key, etag=etag, size=size, records=records, unreadable=unreadable,
                       gaps=[{"index": g.index, "reason": g.reason} for g in gaps] or None,
                       at=dt.datetime.now(dt.timezone.utc))


def _todo(engine, s3, bucket: str, prefix: str, cap: int, result: IngestResult) -> list[tuple[str, str, int]]:
    """The bucket's log files to read now; a file unreadable before and unchanged is reported from
    the store (not fetched again), a bucket that cannot be listed is an evidence gap."""
    try:
        listed = list_log_keys(s3, bucket, prefix)
    except (ClientError, BotoCoreError) as exc:
        result.source_error = f"cannot list the bucket: {aws_error(exc)}"
        result.gaps.append(Gap(bucket, None, result.source_error))
        return []
    with reading(engine) as session:
        known, todo = stored.known_objects(session, bucket), []
    result.skipped = sum(1 for _etag, _size, unreadable in known.values() if unreadable is None)
    for key, etag, size in listed:
        if key in known and known[key][2] is None:
            continue
        why = _still_unreadable(known.get(key), etag, size, cap)
        if why:
            result.gaps.append(Gap(key, None, why))
        else:
            todo.append((key, etag, size))
    return todo


def ingest_bucket(engine, s3, bucket: str, rules: list[Rule], prefix: str = "", windows: Optional[Windows] = None,
                  pool=None, rules_path: Optional[str] = None, cap: Optional[int] = None,
                  window: int = 8, now: Optional[dt.datetime] = None) -> IngestResult:
    """Read the bucket's new log files in key (time) order. With `pool` (a process pool), files are
    decompressed, parsed and prefiltered in the pool while this process fetches and commits, at most
    `window` files ahead of the one being committed. A file that cannot be fetched is a gap, tried
    again next cycle; one whose content cannot be read is a gap noted with its ETag (reported again
    every cycle, fetched again only once it changes); a file that can is marked read with the gaps
    of its bad records."""
    t0 = time.perf_counter()
    cap = cap or max_inflated()
    now = now or dt.datetime.now(dt.timezone.utc)
    result = IngestResult()
    windows = windows or load_windows(engine, rules, now)
    todo = _todo(engine, s3, bucket, prefix, cap, result)
    keys = [key for key, _etag, _size in todo]
    unfetched: dict = {}

    def bodies():
        for key, _etag, size in todo:
            body, why = fetch(s3, bucket, key, size, cap)
            if why:
                unfetched[key] = why
            yield body
    latest = [latest_event_time(now, delivered_at(key)) for key in keys]
    if pool is not None:
        scanned = _windowed(pool, scan_file, ((body, rules_path, cap, key, at) for body, key, at in
                                              zip(bodies(), keys, latest)), max(2, window))
    else:
        scanned = (scan_file_local(body, rules, cap, key, at) for body, key, at in zip(bodies(), keys, latest))
    for (key, etag, size), file in zip(todo, scanned):
        if key in unfetched:  # a failed GetObject may pass: tried again next cycle
            result.gaps.append(Gap(key, None, unfetched[key]))
            continue
        with writing(engine) as session:
            if file.error:
                _mark(session, bucket, key, etag, size, 0, [], {"reason": file.error, "cap": cap})
                result.gaps.append(Gap(key, None, file.error))
                continue
            m, f, bad = process_records(session, file.found, rules, windows, key, now, delivered_at(key))
            gaps = merged_gaps(file.gaps, bad)
            keep_file_changes(session, bucket, key, file.changes, file.span, file.records, gaps)
            _mark(session, bucket, key, etag, size, file.records, gaps, None)
        result.files += 1
        result.records += file.records
        result.matches += m
        result.fired += f
        result.changes += len(file.changes)
        result.gaps += gaps
    result.seconds = time.perf_counter() - t0
    return result


def resolve_quiet(engine, rules: list[Rule], now: dt.datetime) -> int:
    """Event alerts resolve once somebody has acknowledged them and no matching record has arrived
    for the rule's window. An unacknowledged one stays firing: a root sign-in must be looked at, not
    timed out."""
    resolved = 0
    with writing(engine) as session:
        for rule in rules:
            if rule.kind == "events":
                resolved += stored_alerts.resolve_quiet(session, rule.name, "acknowledged",
                                                        now - dt.timedelta(seconds=rule.window), now)
    return resolved


def evidence_records(engine, alert: dict, limit: int = 50) -> list[dict]:
    """The CloudTrail records behind an event alert."""
    if not alert.get("evidence"):
        return []
    with reading(engine) as session:
        return stored.match_records(session, alert["rule"], alert["dedup_key"], limit)
