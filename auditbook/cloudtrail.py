"""CloudTrail log files → alerts. Reads the files CloudTrail writes to its bucket
(`AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`, gzipped `{"Records": [...]}`),
incrementally: each file is read once, and its matches, the alerts they raise and the note that the
file was read commit in one transaction — a crash mid-file leaves nothing, and the next cycle reads
the file again from the start, so nothing is counted twice. Event rules count matching records per
label set in a sliding window (auditbook.rules)."""
from __future__ import annotations

import bisect
import datetime as dt
import gzip
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Optional

import orjson
from sqlalchemy import select
from sqlalchemy import update as sa_update
from sqlalchemy.orm import Session

from auditbook.alerts import dedup_key, fire
from auditbook.rules import Rule
from auditbook.store.db import utc
from auditbook.store.models import Alert, CloudTrailMatch, CloudTrailObject

LOG_KEY = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/[^/]+\.json\.gz$")
WORLD = ("0.0.0.0/0", "::/0")
OPENING = {"AuthorizeSecurityGroupIngress", "ModifySecurityGroupRules"}


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _world_open(value) -> bool:
    if isinstance(value, dict):
        return any(_world_open(v) for v in value.values())
    if isinstance(value, list):
        return any(_world_open(v) for v in value)
    return value in WORLD


def normalise(record: dict) -> dict:
    """The fields rules match on (rules.EVENT_FIELDS), from one CloudTrail record."""
    who = record.get("userIdentity") or {}
    extra = record.get("additionalEventData") or {}
    response = record.get("responseElements") or {}
    name = record.get("eventName") or ""
    return {
        "eventName": name, "eventSource": record.get("eventSource") or "", "errorCode": record.get("errorCode") or "",
        "principal": who.get("arn") or who.get("principalId") or who.get("type") or "",
        "userType": who.get("type") or "", "account": record.get("recipientAccountId") or who.get("accountId") or "",
        "region": record.get("awsRegion") or "", "sourceIP": record.get("sourceIPAddress") or "",
        "mfa": extra.get("MFAUsed") or "" if isinstance(extra, dict) else "",
        "loginResult": response.get("ConsoleLogin") or "" if isinstance(response, dict) else "",
        "worldOpen": "true" if name in OPENING and _world_open(record.get("requestParameters")) else "false",
        "eventType": record.get("eventType") or "", "readOnly": str(record.get("readOnly", "")).lower(),
    }


def read_log(body: bytes) -> list[dict]:
    data = orjson.loads(gzip.decompress(body))
    records = data.get("Records") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise ValueError("not a CloudTrail log file: no Records list")
    return records


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
    bad_files: list = field(default_factory=list)  # (key, reason): evidence gaps, never silently dropped


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


def candidates(records: Iterable[dict], rules: list[Rule]) -> list[dict]:
    """The records some event rule may match, judged on four fields read without normalising (most
    records: none, and nothing more is read from them)."""
    event_rules = [r for r in rules if r.kind == "events"]
    out = []
    for record in records:
        who = record.get("userIdentity")
        cheap = {"eventName": record.get("eventName") or "", "eventSource": record.get("eventSource") or "",
                 "errorCode": record.get("errorCode") or "",
                 "userType": (who.get("type") if isinstance(who, dict) else "") or ""}
        for rule in event_rules:
            if rule.anchor(cheap):
                out.append(record)
                break
    return out


_WORKER_RULES: dict = {}


def scan_file(body: bytes, rules_path: Optional[str]) -> tuple[int, list[dict], Optional[str]]:
    """In a worker process: decompress, parse and prefilter one log file -> (records, candidates, error)."""
    from auditbook.rules import load_rules
    if rules_path not in _WORKER_RULES:
        _WORKER_RULES[rules_path] = load_rules(rules_path)
    try:
        records = read_log(body)
    except (OSError, ValueError, EOFError) as exc:
        return 0, [], f"{type(exc).__name__}: {exc}"
    return len(records), candidates(records, _WORKER_RULES[rules_path]), None


def process_records(session: Session, records: Iterable[dict], rules: list[Rule], windows: Windows,
                    prefiltered: bool = False) -> tuple[int, int, int]:
    """Match records against the event rules, store matches, fire alerts. (records, matches, fired)."""
    event_rules = [r for r in rules if r.kind == "events"]
    records = list(records)
    count = len(records)
    matches = fired = 0
    stored: set = set()
    for record in records if prefiltered else candidates(records, rules):
        event = normalise(record)
        for rule in event_rules:
            if not rule.test(event):
                continue
            event_id = str(record.get("eventID") or "")
            if (rule.name, event_id) in stored:
                continue
            if event_id and session.scalar(select(CloudTrailMatch.id).where(CloudTrailMatch.rule == rule.name,
                                                                           CloudTrailMatch.event_id == event_id)):
                continue  # the same record delivered twice: counted once
            at = parse_time(record["eventTime"])
            labels = _labels(rule, event)
            key = dedup_key(rule.name, labels)
            stored.add((rule.name, event_id))
            session.add(CloudTrailMatch(rule=rule.name, labels_key=key, at=at, event_id=event_id, record=record))
            matches += 1
            n = windows.add(rule, key, at.timestamp())
            if rule.passes(n):
                alert = fire(session, rule=rule.name, labels=labels, severity=rule.severity,
                             soc2_control=rule.soc2_control, summary=rule.summary, at=at, evidence=[event_id])
                fired += alert.count == 1
    return count, matches, fired


def list_log_keys(s3, bucket: str, prefix: str = "") -> list[tuple[str, str, int]]:
    """(key, etag, size) of every CloudTrail log file in the bucket, in key (time) order."""
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if LOG_KEY.search(obj["Key"]):
                out.append((obj["Key"], obj.get("ETag", "").strip('"'), obj.get("Size", 0)))
    return sorted(out)


def ingest_bucket(engine, s3, bucket: str, rules: list[Rule], prefix: str = "",
                  windows: Optional[Windows] = None, pool=None, rules_path: Optional[str] = None) -> IngestResult:
    """Read the bucket's new log files in key (time) order. With `pool` (a process pool), files are
    decompressed, parsed and prefiltered in the pool while this process fetches and commits."""
    t0 = time.perf_counter()
    result = IngestResult()
    windows = windows or load_windows(engine, rules)
    with Session(engine) as session:
        done = {k for (k,) in session.execute(select(CloudTrailObject.key).where(CloudTrailObject.bucket == bucket))}
    todo = [item for item in list_log_keys(s3, bucket, prefix) if item[0] not in done]
    result.skipped = len(done)

    def bodies():
        for key, _etag, _size in todo:
            yield s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if pool is not None:
        scanned = pool.map(scan_file, bodies(), [rules_path] * len(todo), chunksize=1)
    else:
        scanned = (scan_file_local(body, rules) for body in bodies())
    for (key, etag, size), (n, found, error) in zip(todo, scanned):
        if error:
            result.bad_files.append((key, error))
            continue
        with Session(engine) as session, session.begin():
            _, m, f = process_records(session, found, rules, windows, prefiltered=True)
            session.add(CloudTrailObject(bucket=bucket, key=key, etag=etag, size=size, records=n,
                                         read_at=dt.datetime.now(dt.timezone.utc)))
        result.files += 1
        result.records += n
        result.matches += m
        result.fired += f
    result.seconds = time.perf_counter() - t0
    return result


def scan_file_local(body: bytes, rules: list[Rule]) -> tuple[int, list[dict], Optional[str]]:
    try:
        records = read_log(body)
    except (OSError, ValueError, EOFError) as exc:
        return 0, [], f"{type(exc).__name__}: {exc}"
    return len(records), candidates(records, rules), None


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


def ingest_lookup(engine, client, rules: list[Rule], windows: Optional[Windows] = None,
                  now: Optional[dt.datetime] = None, first_lookback: dt.timedelta = dt.timedelta(hours=1)) -> IngestResult:
    """CloudTrail's LookupEvents (management events of the last 90 days, one account and region),
    for endpoints that have it: from the saved checkpoint to now, each page committed with the
    checkpoint, records counted once (by eventID) even where pages overlap. An endpoint without the
    API gets an evidence gap, never a silent nothing."""
    from botocore.exceptions import BotoCoreError, ClientError

    from auditbook.store.models import Setting
    t0 = time.perf_counter()
    result = IngestResult()
    windows = windows or load_windows(engine, rules)
    now = now or dt.datetime.now(dt.timezone.utc)
    key = f"lookup:{client.meta.region_name}"
    with Session(engine) as session:
        row = session.get(Setting, key)
        since = parse_time(row.value["until"]) if row else now - first_lookback
    try:
        pages = client.get_paginator("lookup_events").paginate(StartTime=since, EndTime=now)
        for page in pages:
            records = []
            for event in page.get("Events", []):
                try:
                    records.append(orjson.loads(event["CloudTrailEvent"]))
                except (KeyError, ValueError) as exc:
                    result.bad_files.append((f"lookup_events {event.get('EventId', '?')}", f"{type(exc).__name__}: {exc}"))
            with Session(engine) as session, session.begin():
                n, m, f = process_records(session, records, rules, windows)
                setting = session.get(Setting, key)
                if setting is None:
                    session.add(Setting(key=key, value={"until": since.isoformat()}))
            result.records += n
            result.matches += m
            result.fired += f
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        result.bad_files.append(("lookup_events", f"{code}: {exc}"))
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
