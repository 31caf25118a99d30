"""CloudTrail log files → alerts. Reads the files CloudTrail writes to its bucket
(`AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`, gzipped `{"Records": [...]}`),
incrementally: each file is read once, and its matches, the alerts they raise and the note that the
file was read commit in one transaction — a crash mid-file leaves nothing, and the next cycle reads
the file again from the start, so nothing is counted twice. Event rules count matching records per
label set in a sliding window (auditbook.rules).

Every file is hostile until read: it is inflated as a stream up to a cap (a gzip bomb stops there),
and a file that is not gzip, not JSON or not `{"Records": [...]}` is an evidence gap (not marked
read, reported every cycle). Inside a file, a record of the wrong shape is a gap (file, index,
reason) and the rest of the file is read. A matching record is stored redacted
(auditbook.evidence.redact_cloudtrail) with the SHA-256 of what was stored."""
from __future__ import annotations

import bisect
import datetime as dt
import re
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import orjson
from sqlalchemy import select
from sqlalchemy import update as sa_update
from sqlalchemy.orm import Session

from auditbook.alerts import dedup_key, fire
from auditbook.cloudtrail_records import (DEFAULT_MAX_INFLATED, FUTURE_SLACK, MAX_DEPTH, MAX_ENV, BadFile,  # noqa: F401
                                          BadRecord, Gap, GapLog, cheap_fields, event_id, event_time, max_inflated,
                                          normalise, read_log, stored_form, too_deep)
from auditbook.errors import one_line
from auditbook.rules import Rule
from auditbook.store.db import utc
from auditbook.store.models import Alert, CloudTrailMatch, CloudTrailObject

LOG_KEY = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/[^/]+\.json\.gz$")


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Windows:
    """Per (rule, label set): the times of matching records inside the rule's window."""
    times: dict = field(default_factory=lambda: defaultdict(list))

    def add(self, rule: Rule, key: str, at: float) -> int:
        seen = self.times[(rule.name, key)]
        bisect.insort(seen, at)
        # forget what has left the window of the newest record (memory stays flat as input grows)
        newest = seen[-1]
        cut = bisect.bisect_left(seen, newest - rule.window)
        if cut:
            del seen[:cut]
        lo = bisect.bisect_left(seen, at - rule.window)
        hi = bisect.bisect_right(seen, at)
        return hi - lo


@dataclass
class IngestResult:
    files: int = 0
    skipped: int = 0
    records: int = 0
    matches: int = 0
    fired: int = 0
    seconds: float = 0.0
    gaps: list = field(default_factory=list)  # Gap: evidence gaps, never silently dropped

    @property
    def bad_files(self) -> list[tuple[str, str]]:
        """(where, reason) of each gap: the file, or the file and the record's index."""
        return [(g.where, g.reason) for g in self.gaps]


def _labels(rule: Rule, event: dict) -> dict:
    return {b: event.get(b, "") for b in rule.by}


def load_windows(engine, rules: list[Rule]) -> Windows:
    """Window memory from the matches already stored (the newest window of each rule)."""
    windows = Windows()
    with Session(engine) as session:
        for rule in rules:
            if rule.kind != "events":
                continue
            newest = session.scalar(select(CloudTrailMatch.at).where(CloudTrailMatch.rule == rule.name)
                                    .order_by(CloudTrailMatch.at.desc()).limit(1))
            if newest is None:
                continue
            newest = utc(newest)
            since = newest - dt.timedelta(seconds=rule.window)
            for key, at in session.execute(select(CloudTrailMatch.labels_key, CloudTrailMatch.at)
                                           .where(CloudTrailMatch.rule == rule.name, CloudTrailMatch.at >= since)):
                bisect.insort(windows.times[(rule.name, key)], utc(at).timestamp())
    return windows


def candidates(records: Iterable[tuple[int, Any]], rules: list[Rule], source: str = "") -> tuple[list, list]:
    """The records (index, record) some event rule may match, judged on four fields read without
    normalising (most records: none, and nothing more is read from them), and the gaps: records
    that are not objects, whose four fields are not text, or (candidates) nested too deep."""
    anchors = [r.anchor for r in rules if r.kind == "events"]
    found, log = [], GapLog(source)
    for index, record in records:
        try:
            cheap = cheap_fields(record)
        except BadRecord as exc:
            log.add(index, str(exc))
            continue
        for anchor in anchors:
            if anchor(cheap):
                if too_deep(record):
                    log.add(index, f"nested more than {MAX_DEPTH} levels deep")
                else:
                    found.append((index, record))
                break
    return found, log.gaps()


_WORKER_RULES: dict = {}


def scan_file(body: Optional[bytes], rules_path: Optional[str], cap: int = DEFAULT_MAX_INFLATED,
              source: str = "") -> tuple[int, list, list, Optional[str]]:
    """In a worker process: scan_file_local with the rules loaded once per process."""
    from auditbook.rules import load_rules
    if rules_path not in _WORKER_RULES:
        _WORKER_RULES[rules_path] = load_rules(rules_path)
    return scan_file_local(body, _WORKER_RULES[rules_path], cap, source)


def scan_file_local(body: Optional[bytes], rules: list[Rule], cap: int = DEFAULT_MAX_INFLATED,
                    source: str = "") -> tuple[int, list, list, Optional[str]]:
    """Inflate, parse and prefilter one log file -> (records, candidates, gaps, why the whole file
    could not be read)."""
    if body is None:
        return 0, [], [], "not fetched"
    try:
        records = read_log(body, cap)
    except BadFile as exc:
        return 0, [], [], str(exc)
    found, gaps = candidates(enumerate(records), rules, source)
    return len(records), found, gaps, None


def process_records(session: Session, found: Iterable[tuple[int, dict]], rules: list[Rule], windows: Windows,
                    source: str = "", now: Optional[dt.datetime] = None) -> tuple[int, int, list[Gap]]:
    """Match prefiltered records (index, record) against the event rules, store each match (redacted,
    with its hash), fire alerts. A record of the wrong shape is a gap. -> (matches, fired, gaps)"""
    event_rules = [r for r in rules if r.kind == "events"]
    latest = (now or dt.datetime.now(dt.timezone.utc)) + FUTURE_SLACK
    matches = fired = 0
    stored: set = set()
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
            if (rule.name, ident) in stored or session.scalar(select(CloudTrailMatch.id).where(
                    CloudTrailMatch.rule == rule.name, CloudTrailMatch.event_id == ident)):
                continue  # the same record delivered twice: counted once
            labels = _labels(rule, event)
            key = dedup_key(rule.name, labels)
            stored.add((rule.name, ident))
            session.add(CloudTrailMatch(rule=rule.name, labels_key=key, at=at, event_id=ident, record=kept,
                                        record_sha256=sha))
            matches += 1
            if rule.passes(windows.add(rule, key, at.timestamp())):
                alert = fire(session, rule=rule.name, labels=labels, severity=rule.severity,
                             soc2_control=rule.soc2_control, summary=rule.summary, at=at, evidence=[ident])
                fired += alert.count == 1
    return matches, fired, log.gaps()


def list_log_keys(s3, bucket: str, prefix: str = "") -> list[tuple[str, str, int]]:
    """(key, etag, size) of every CloudTrail log file in the bucket, in key (time) order. A key with
    control or format characters is not one CloudTrail wrote (it would reach a terminal as is)."""
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if LOG_KEY.search(obj["Key"]) and obj["Key"].isprintable():
                out.append((obj["Key"], obj.get("ETag", "").strip('"'), obj.get("Size", 0)))
    return sorted(out)


def fetch(s3, bucket: str, key: str, size: int, cap: int) -> tuple[Optional[bytes], Optional[str]]:
    """(the object's bytes, None) or (None, why it cannot be read): more than the cap compressed
    is refused unread; a denied or failed GetObject (e.g. a KMS key this reader may not use) is a gap."""
    from botocore.exceptions import BotoCoreError, ClientError
    if size > cap:
        return None, f"{size:,} bytes compressed, more than the {cap:,}-byte cap ({MAX_ENV})"
    try:
        stream = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            body = stream.read(cap + 1)
        finally:
            stream.close()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return None, one_line(f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}")[:300]
    except BotoCoreError as exc:
        return None, one_line(f"{type(exc).__name__}: {exc}")[:300]
    if len(body) > cap:
        return None, f"more than the {cap:,}-byte cap compressed ({MAX_ENV})"
    return body, None


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


def ingest_bucket(engine, s3, bucket: str, rules: list[Rule], prefix: str = "", windows: Optional[Windows] = None,
                  pool=None, rules_path: Optional[str] = None, cap: Optional[int] = None,
                  window: int = 8) -> IngestResult:
    """Read the bucket's new log files in key (time) order. With `pool` (a process pool), files are
    decompressed, parsed and prefiltered in the pool while this process fetches and commits, at most
    `window` files ahead of the one being committed. A file that cannot be read is a gap (not marked
    read: reported again next cycle); a file that can is marked read with the gaps of its bad records."""
    t0 = time.perf_counter()
    cap = cap or max_inflated()
    result = IngestResult()
    windows = windows or load_windows(engine, rules)
    with Session(engine) as session:
        done = {k for (k,) in session.execute(select(CloudTrailObject.key).where(CloudTrailObject.bucket == bucket))}
    todo = [item for item in list_log_keys(s3, bucket, prefix) if item[0] not in done]
    keys = [key for key, _etag, _size in todo]
    result.skipped = len(done)
    unfetched: dict = {}

    def bodies():
        for key, _etag, size in todo:
            body, why = fetch(s3, bucket, key, size, cap)
            if why:
                unfetched[key] = why
            yield body
    if pool is not None:
        scanned = _windowed(pool, scan_file, ((body, rules_path, cap, key) for body, key in zip(bodies(), keys)),
                            max(2, window))
    else:
        scanned = (scan_file_local(body, rules, cap, key) for body, key in zip(bodies(), keys))
    for (key, etag, size), (n, found, gaps, error) in zip(todo, scanned):
        error = unfetched.get(key) or error
        if error:
            result.gaps.append(Gap(key, None, error))
            continue
        with Session(engine) as session, session.begin():
            m, f, bad = process_records(session, found, rules, windows, key)
            gaps = sorted(gaps + bad, key=lambda g: (g.index is None, g.index or 0))
            session.add(CloudTrailObject(bucket=bucket, key=key, etag=etag, size=size, records=n,
                                         read_at=dt.datetime.now(dt.timezone.utc),
                                         gaps=[{"index": g.index, "reason": g.reason} for g in gaps] or None))
        result.files += 1
        result.records += n
        result.matches += m
        result.fired += f
        result.gaps += gaps
    result.seconds = time.perf_counter() - t0
    return result


def resolve_quiet(engine, rules: list[Rule], now: dt.datetime) -> int:
    """Event alerts resolve once somebody has acknowledged them and no matching record has arrived
    for the rule's window. An unacknowledged one stays firing: a root sign-in must be looked at, not
    timed out."""
    resolved = 0
    with Session(engine) as session, session.begin():
        for rule in rules:
            if rule.kind != "events":
                continue
            done = session.execute(sa_update(Alert).where(
                Alert.rule == rule.name, Alert.state == "acknowledged",
                Alert.last_seen < now - dt.timedelta(seconds=rule.window))
                .values(state="resolved", resolved_at=now, version=Alert.version + 1))
            resolved += done.rowcount
    return resolved


def evidence_records(engine, alert: dict, limit: int = 50) -> list[dict]:
    """The CloudTrail records behind an event alert."""
    ids = alert.get("evidence") or []
    if not ids:
        return []
    with Session(engine) as session:
        rows = session.scalars(select(CloudTrailMatch.record).where(CloudTrailMatch.rule == alert["rule"],
                                                                    CloudTrailMatch.labels_key == alert["dedup_key"])
                               .order_by(CloudTrailMatch.at).limit(limit)).all()
        return list(rows)


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


def ingest_lookup(engine, client, rules: list[Rule], windows: Optional[Windows] = None,
                  now: Optional[dt.datetime] = None, first_lookback: dt.timedelta = dt.timedelta(hours=1)) -> IngestResult:
    """CloudTrail's LookupEvents (management events of the last 90 days, one account and region),
    for endpoints that have it: from the saved checkpoint to now, each page committed with the
    checkpoint, records counted once (by eventID) even where pages overlap. An endpoint without the
    API gets an evidence gap, never a silent nothing; so does a record of the wrong shape (its index
    counts the events read in this call)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from auditbook.store.models import Setting
    t0 = time.perf_counter()
    result = IngestResult()
    windows = windows or load_windows(engine, rules)
    now = now or dt.datetime.now(dt.timezone.utc)
    key, source = f"lookup:{client.meta.region_name}", f"lookup_events {client.meta.region_name}"
    with Session(engine) as session:
        row = session.get(Setting, key)
        since = parse_time(row.value["until"]) if row else now - first_lookback
    try:
        for page in client.get_paginator("lookup_events").paginate(StartTime=since, EndTime=now):
            events, log = page.get("Events", []), GapLog(source)
            found, bad = candidates(_parse_events(events, result.records, log), rules, source)
            with Session(engine) as session, session.begin():
                m, f, more = process_records(session, found, rules, windows, source, now)
                if session.get(Setting, key) is None:
                    session.add(Setting(key=key, value={"until": since.isoformat()}))
            result.records += len(events)
            result.matches += m
            result.fired += f
            result.gaps += sorted(log.gaps() + bad + more, key=lambda g: (g.index is None, g.index or 0))
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        result.gaps.append(Gap(source, None, one_line(f"{code}: {exc}")[:300]))
        result.seconds = time.perf_counter() - t0
        return result
    with Session(engine) as session, session.begin():
        setting = session.get(Setting, key)
        if setting is None:
            session.add(Setting(key=key, value={"until": now.isoformat()}))
        else:
            setting.value = {"until": now.isoformat()}
    result.seconds = time.perf_counter() - t0
    return result
