"""Reading CloudTrail input that may be hostile: a log file is inflated as a stream under a cap (a
gzip bomb stops there) and parsed; each record's fields are type-checked before a rule reads them.
A file that cannot be read is a BadFile, a record of the wrong shape a BadRecord: both become
evidence gaps (Gap: file, index, reason) in auditbook.monitor.cloudtrail, which reads everything else."""
from __future__ import annotations

import datetime as dt
import os
import re
import zlib
from dataclasses import dataclass, field
from typing import Any, Optional

import orjson

from auditbook.collect.clients import aws_error
from auditbook.collect.evidence import canonical, digest, redact_cloudtrail
from auditbook.errors import UserError, one_line, shown

WORLD = ("0.0.0.0/0", "::/0")
OPENING = {"AuthorizeSecurityGroupIngress", "ModifySecurityGroupRules"}
MAX_ENV = "AUDITBOOK_CLOUDTRAIL_MAX_MB"  # the cap on a log file's inflated size, in MiB
DEFAULT_MAX_INFLATED = 256 * 2**20  # the largest real CloudTrail files inflate to ~50 MB
PARSE_FACTOR = 4  # the objects a parsed file makes may take at most this many times the cap in memory
WORST_AMPLIFICATION = 48  # bytes of Python objects per byte of JSON at worst (measured: 47 for [[[[]]]])
MAX_DEPTH = 64  # nesting a stored record may have (real records: under 15)
MAX_TEXT = 2048  # characters of a field rules match on (an IAM user's ARN: at most ~600)
MAX_EVENT_ID = 100  # the eventID column (real ids are 36-character UUIDs)
MAX_GAPS_PER_FILE = 100  # gaps listed one by one for a file; the rest are counted
MAX_MEMBERS = 16  # gzip members in one log file (CloudTrail writes one)
INFLATE_STEP = 2**20  # compressed bytes handed to zlib at a time (what it copies at a member's end)
EARLIEST = dt.datetime(2013, 11, 1, tzinfo=dt.timezone.utc)  # CloudTrail's first day
# an eventTime later than the log file's delivery time (its key says it, to the minute), or than now,
# by more than this is not believed: CloudTrail delivers a file after the records in it. The slack
# covers the minute the name leaves out, clocks apart, and writers that stamp a file with the start
# of the five minutes it holds (auditbook.demo.trail does)
FUTURE_SLACK = dt.timedelta(minutes=10)
LOG_KEY = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/[^/]+\.json\.gz$")
DELIVERED = re.compile(r"_(\d{8}T\d{4}Z)_[^/]*$")  # …_CloudTrail_<region>_YYYYMMDDTHHMMZ_<unique>.json.gz


class BadFile(ValueError):
    """A log file that cannot be read at all: an evidence gap for the whole file."""


class BadRecord(ValueError):
    """One record of the wrong shape: an evidence gap for that record; the rest of the file is read."""


@dataclass(frozen=True)
class Gap:
    """An evidence gap: a file (or `lookup_events <region>`), the record's index in it (None: the
    whole file), and why it was not read."""
    source: str
    index: Optional[int]
    reason: str

    @property
    def where(self) -> str:
        return self.source if self.index is None else f"{self.source} record {self.index}"


@dataclass
class GapLog:
    """The gaps of one file: the first MAX_GAPS_PER_FILE listed, the rest counted in one more."""
    source: str
    listed: list = field(default_factory=list)
    more: int = 0

    def add(self, index: Optional[int], reason: str) -> None:
        if len(self.listed) < MAX_GAPS_PER_FILE:
            self.listed.append(Gap(self.source, index, reason))
        else:
            self.more += 1

    def gaps(self) -> list[Gap]:
        if not self.more:
            return self.listed
        return self.listed + [Gap(self.source, None, f"{self.more} more records not read "
                                                     f"(the first {MAX_GAPS_PER_FILE} are listed)")]


def merged_gaps(*groups: list[Gap]) -> list[Gap]:
    """The gaps of one source, in record order, each record named once (with its first reason)."""
    seen, out = set(), []
    for gap in (g for group in groups for g in group):
        if gap.index is None or gap.index not in seen:
            seen.add(gap.index)
            out.append(gap)
    return sorted(out, key=lambda g: (g.index is None, g.index or 0))


def max_inflated() -> int:
    """The cap on a log file's inflated size in bytes: AUDITBOOK_CLOUDTRAIL_MAX_MB (MiB), or 256 MiB."""
    text = os.environ.get(MAX_ENV)
    if text is None or text == "":
        return DEFAULT_MAX_INFLATED
    if not re.fullmatch(r"[0-9]{1,5}", text.strip()) or not 1 <= int(text) <= 16384:
        raise UserError(f"{MAX_ENV}: {shown(text)} is not a whole number of MiB from 1 to 16384")
    return int(text) * 2**20


def inflate(body: bytes, cap: int) -> bytes:
    """Gzip (at most MAX_MEMBERS members) inflated as a stream; more than `cap` bytes is refused as
    soon as it is reached, so a bomb costs at most `cap` bytes of memory. zlib is handed at most
    INFLATE_STEP bytes at a time, so the rest of the body is never copied (many members cost linear time)."""
    view, parts, pos = memoryview(body), [], 0
    for _member in range(MAX_MEMBERS):
        pos = _inflate_member(view, pos, cap, parts)
        if pos == len(view):
            return parts[0] if len(parts) == 1 else b"".join(parts)
    raise BadFile(f"more than {MAX_MEMBERS} gzip members (CloudTrail writes one)")


def _inflate_member(view: memoryview, pos: int, cap: int, parts: list) -> int:
    """Inflate the gzip member starting at `pos` into `parts`; -> where the next member starts."""
    stream, size = zlib.decompressobj(16 + zlib.MAX_WBITS), sum(map(len, parts))
    while not stream.eof:
        if pos >= len(view):
            raise BadFile("not gzip: the stream is truncated")
        piece = view[pos:pos + INFLATE_STEP]
        try:
            chunk = stream.decompress(piece, cap - size + 1)
        except zlib.error as exc:
            raise BadFile(f"not gzip: {exc}")
        size += len(chunk)
        if size > cap:
            raise BadFile(f"inflates to more than {cap:,} bytes, the cap ({MAX_ENV})")
        if chunk:
            parts.append(chunk)
        pos += len(piece) - len(stream.unconsumed_tail) - len(stream.unused_data)
    return pos


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
    except (ClientError, BotoCoreError) as exc:
        return None, aws_error(exc)
    if len(body) > cap:
        return None, f"more than the {cap:,}-byte cap compressed ({MAX_ENV})"
    return body, None


def parsed_size(raw: bytes) -> int:
    """An upper bound on the memory the parsed JSON takes as Python objects (checked against the
    densest shapes: `[{},{},…]` takes 29 times its size, `[[[[]]]]` 47 times; a CloudTrail file ~3)."""
    return 2 * len(raw) + 240 * raw.count(b"{") + 96 * raw.count(b"[") + 96 * raw.count(b",")


def read_log(body: bytes, cap: int = DEFAULT_MAX_INFLATED) -> list:
    """The Records of one log file (each still to be checked), or BadFile. Memory stays under the cap
    for the inflated bytes plus PARSE_FACTOR times the cap for the objects they parse into: valid
    JSON can be a bomb too (a few MB of `{},` make GBs of dicts)."""
    raw = inflate(body, cap)
    budget = PARSE_FACTOR * cap
    if len(raw) * WORST_AMPLIFICATION > budget and parsed_size(raw) > budget:  # small files cannot exceed it
        raise BadFile(f"too dense to be CloudTrail: parsing would take more than {budget:,} bytes of memory "
                      f"({PARSE_FACTOR} times the cap, {MAX_ENV})")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadFile(f"not JSON: {one_line(exc)[:200]}")
    except MemoryError:
        raise BadFile("not enough memory to parse it")
    if not isinstance(data, dict):
        raise BadFile(f"not a CloudTrail log file: the top level is {_kind(data)}, not an object with Records")
    records = data.get("Records")
    if not isinstance(records, list):
        got = "missing or null" if records is None else _kind(records)
        raise BadFile(f"not a CloudTrail log file: Records is {got}, not a list")
    return records


_KINDS = {dict: "an object", list: "a list", str: "text", bool: "true/false", int: "a number", float: "a number",
          type(None): "null"}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _text(value: Any, name: str) -> str:
    """A field rules match on: text (missing or null: empty), bounded, printable."""
    if value is None:
        return ""
    if value.__class__ is not str:
        raise BadRecord(f"{name}: {_kind(value)}, not text")
    if len(value) > MAX_TEXT:
        raise BadRecord(f"{name}: {len(value):,} characters, more than {MAX_TEXT}")
    if not value.isprintable():
        raise BadRecord(f"{name}: {shown(value)} holds control or format characters")
    return value


def cheap_fields(record: Any) -> dict:
    """The four fields the prefilter judges every record on (rules.CHEAP_FIELDS), type-checked."""
    if record.__class__ is not dict:
        raise BadRecord(f"{_kind(record)}, not an object")
    name, source, error = record.get("eventName"), record.get("eventSource"), record.get("errorCode")
    if name.__class__ is not str:
        raise BadRecord("eventName: " + ("missing or null" if name is None else f"{_kind(name)}, not text"))
    if source.__class__ is not str:
        raise BadRecord("eventSource: " + ("missing or null" if source is None else f"{_kind(source)}, not text"))
    if error is None:
        error = ""
    elif error.__class__ is not str:
        raise BadRecord(f"errorCode: {_kind(error)}, not text")
    who = record.get("userIdentity")
    if who.__class__ is dict:
        kind = who.get("type")
        if kind is None:
            kind = ""
        elif kind.__class__ is not str:
            raise BadRecord(f"userIdentity.type: {_kind(kind)}, not text")
    elif who is None:
        kind = ""
    else:
        raise BadRecord(f"userIdentity: {_kind(who)}, not an object")
    return {"eventName": name, "eventSource": source, "errorCode": error, "userType": kind}


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """More than `limit` levels of objects and lists (the record itself is level 1)?"""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if item.__class__ is dict else item if item.__class__ is list else ()
        stack.extend((v, depth + 1) for v in children if v.__class__ is dict or v.__class__ is list)
    return False


def _world_open(value) -> bool:
    if isinstance(value, dict):
        return any(_world_open(v) for v in value.values())
    if isinstance(value, list):
        return any(_world_open(v) for v in value)
    return value in WORLD


def _read_only(value: Any) -> str:
    if value.__class__ is bool:
        return "true" if value else "false"
    return _text(value, "readOnly").lower()


def normalise(record: dict) -> dict:
    """The fields rules match on (rules.EVENT_FIELDS), from one CloudTrail record; BadRecord when a
    field has the wrong type, is too long or holds control characters."""
    who = record.get("userIdentity")
    if who is None:
        who = {}
    elif who.__class__ is not dict:
        raise BadRecord(f"userIdentity: {_kind(who)}, not an object")
    extra, response = record.get("additionalEventData"), record.get("responseElements")
    name = _text(record.get("eventName"), "eventName")
    arn, user_type = _text(who.get("arn"), "userIdentity.arn"), _text(who.get("type"), "userIdentity.type")
    return {
        "eventName": name, "eventSource": _text(record.get("eventSource"), "eventSource"),
        "errorCode": _text(record.get("errorCode"), "errorCode"),
        "principal": arn or _text(who.get("principalId"), "userIdentity.principalId") or user_type,
        "userType": user_type,
        "account": _text(record.get("recipientAccountId"), "recipientAccountId")
        or _text(who.get("accountId"), "userIdentity.accountId"),
        "region": _text(record.get("awsRegion"), "awsRegion"),
        "sourceIP": _text(record.get("sourceIPAddress"), "sourceIPAddress"),
        "mfa": _text(extra.get("MFAUsed"), "additionalEventData.MFAUsed") if isinstance(extra, dict) else "",
        "loginResult": (_text(response.get("ConsoleLogin"), "responseElements.ConsoleLogin")
                        if isinstance(response, dict) else ""),
        "worldOpen": "true" if name in OPENING and _world_open(record.get("requestParameters")) else "false",
        "eventType": _text(record.get("eventType"), "eventType"), "readOnly": _read_only(record.get("readOnly")),
    }


def delivered_at(key: str) -> Optional[dt.datetime]:
    """When CloudTrail delivered a log file, from its name (to the minute); None when the name has no
    valid time."""
    m = DELIVERED.search(key)
    try:
        return dt.datetime.strptime(m.group(1), "%Y%m%dT%H%MZ").replace(tzinfo=dt.timezone.utc) if m else None
    except ValueError:
        return None


def latest_event_time(now: dt.datetime, delivered: Optional[dt.datetime] = None) -> dt.datetime:
    """The latest eventTime believed in a file delivered at `delivered` (a time in the future is not
    believed either), or in a LookupEvents answer at `now`: FUTURE_SLACK past the earlier of the two."""
    return min(now, delivered or now) + FUTURE_SLACK


def event_time(value: Any, latest: dt.datetime) -> dt.datetime:
    """A record's eventTime, in UTC: ISO 8601 with a time zone, from CloudTrail's start to `latest`
    (latest_event_time): a record dated later could not have been in the file, and would hold the
    windows of the event rules open."""
    if value.__class__ is not str:
        raise BadRecord("eventTime: " + ("missing or null" if value is None else f"{_kind(value)}, not a time"))
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if len(value) <= 40 else None
    except ValueError:
        at = None
    if at is None:
        raise BadRecord(f"eventTime: {shown(value)} is not an ISO 8601 time")
    if at.tzinfo is None:
        raise BadRecord(f"eventTime: {shown(value)} has no time zone")
    try:
        at = at.astimezone(dt.timezone.utc)
    except OverflowError:  # year 1 or 9999 shifted by its offset
        at = None
    if at is None or at < EARLIEST:
        raise BadRecord(f"eventTime: {shown(value)} is before CloudTrail began or out of range")
    if at > latest:
        raise BadRecord(f"eventTime: {shown(value)} is after {latest:%Y-%m-%dT%H:%M}Z, the file's delivery time "
                        f"(or now) plus {FUTURE_SLACK.seconds // 60} minutes")
    return at


def event_id(value: Any) -> str:
    if value is None or value == "":
        raise BadRecord("eventID: missing, null or empty")
    text = _text(value, "eventID")
    if len(text) > MAX_EVENT_ID:
        raise BadRecord(f"eventID: {len(text)} characters, more than {MAX_EVENT_ID}")
    return text


def stored_form(record: dict) -> tuple[dict, str]:
    """(the record as it is stored — redacted —, the SHA-256 of its canonical JSON)."""
    kept = redact_cloudtrail(record)
    try:
        return kept, digest(canonical(kept))
    except ValueError as exc:  # text that is not Unicode (a lone surrogate), a number JSON cannot hold
        raise BadRecord(f"cannot be stored as JSON: {type(exc).__name__}")
