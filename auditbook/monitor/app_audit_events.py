"""One application audit event, read from a CloudWatch Logs event that may be hostile: its message is
bounded in size before it is parsed, must be a JSON object nested at most MAX_DEPTH levels, and each
field the store and the rules read (app-audit.yml `fields`) must be text, bounded and printable (a
user agent, the caller's own text, is kept with control characters made spaces). An event that cannot
be read is a BadRecord: an evidence gap (its id, its CloudWatch time and why), never a silent nothing.
Secrets never reach the store: the message is redacted like a CloudTrail record (secret-named fields
at any depth, auditbook.collect.evidence.redact_cloudtrail) and every text in it, and every column,
has bearer tokens, AWS access key ids, JWTs and `password=…`-style values replaced."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Optional

import orjson

from auditbook.collect.evidence import REDACTED, canonical, digest, redact_cloudtrail
from auditbook.errors import one_line, shown
from auditbook.monitor.app_audit_config import AppAuditConfig
from auditbook.monitor.cloudtrail_records import MAX_DEPTH, BadRecord, too_deep
from auditbook.store import app_audit as cols

EARLIEST = dt.datetime(2010, 1, 1, tzinfo=dt.timezone.utc)
FUTURE_SLACK = dt.timedelta(minutes=10)  # an event dated after its arrival by more is not believed
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# secrets written inline in text (a header or a URL logged as is)
SECRET_TEXT = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"), REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b((?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|session|signature|"
                r"authorization|client[_-]?secret)[\"']?\s*[=:]\s*[\"']?)[^&\s;,\"']+"), r"\1" + REDACTED),
)
# the columns a read event fills: (config field, column, its size)
TEXT_FIELDS = (("user", "user", cols.MAX_USER), ("source_ip", "source_ip", cols.MAX_SOURCE_IP),
               ("action", "action", cols.MAX_ACTION), ("outcome", "outcome", cols.MAX_OUTCOME),
               ("resource", "resource", cols.MAX_RESOURCE))


def scrubbed(text: str) -> str:
    """The text with inline secrets (SECRET_TEXT) replaced."""
    for pattern, replacement in SECRET_TEXT:
        if pattern.search(text):
            text = pattern.sub(replacement, text)
    return text


def _scrub_all(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _scrub_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_all(v) for v in value]
    return scrubbed(value) if isinstance(value, str) else value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def at_path(record: dict, path: str) -> Any:
    """The value at a dotted path (None when a step is missing or not an object)."""
    value: Any = record
    for step in path.split("."):
        if value.__class__ is not dict:
            return None
        value = value.get(step)
    return value


def _text(value: Any, name: str, limit: int, required: bool = False) -> str:
    """A field stored in a column: text (missing or null: empty), at most `limit` characters, printable."""
    if value is None or value == "":
        if required:
            raise BadRecord(f"{name}: missing or empty")
        return ""
    if value.__class__ is not str:
        raise BadRecord(f"{name}: {_kind(value)}, not text")
    if len(value) > limit:
        raise BadRecord(f"{name}: {len(value):,} characters, more than {limit}")
    if not value.isprintable():
        raise BadRecord(f"{name}: {shown(value)} holds control or format characters")
    return value


def _caller_text(value: Any, limit: int) -> str:
    """Text the caller chose (a user agent): control characters made spaces, cut with a note."""
    if value is None or value.__class__ is not str:
        return "" if value is None else f"({_kind(value)}, not text)"
    text = value if value.isprintable() else one_line(value)
    return text if len(text) <= limit else text[:limit - 30] + f"… ({len(text):,} characters)"


def event_time(value: Any, name: str, latest: dt.datetime, earliest: dt.datetime = EARLIEST) -> dt.datetime:
    """The event's own time: ISO 8601 text with a time zone, from `earliest` (its arrival in CloudWatch
    Logs less the reader's lag: an event dated long before it was written would land in a closed
    period and outside every alert window) to `latest`, and never before 2010."""
    if value.__class__ is not str:
        raise BadRecord(f"{name}: " + ("missing or null" if value is None else f"{_kind(value)}, not ISO 8601 text"))
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if len(value) <= 40 else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise BadRecord(f"{name}: {shown(value)} is not an ISO 8601 time with a time zone")
    try:
        at = at.astimezone(dt.timezone.utc)
    except OverflowError:
        raise BadRecord(f"{name}: {shown(value)} is out of range") from None
    if at < EARLIEST or at > latest:
        raise BadRecord(f"{name}: {shown(value)} is before 2010 or after {latest:%Y-%m-%dT%H:%M}Z (its arrival "
                        f"in CloudWatch Logs, or now, plus {FUTURE_SLACK.seconds // 60} minutes)")
    if at < earliest:
        raise BadRecord(f"{name}: {shown(value)} is before {earliest:%Y-%m-%dT%H:%M}Z: dated earlier than its "
                        "arrival in CloudWatch Logs less the reader's lag")
    return at


def cloudwatch_time(millis: Any) -> Optional[dt.datetime]:
    """A CloudWatch Logs timestamp (milliseconds since the epoch), or None when it is not one."""
    if millis.__class__ is not int or not 0 <= millis < 2**53:
        return None
    try:
        return dt.datetime.fromtimestamp(millis / 1000, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def parse_message(message: Any, config: AppAuditConfig, latest: dt.datetime,
                  earliest: dt.datetime = EARLIEST) -> dict:
    """The columns of one read event (AppAuditEvent's, less where it came from) from its message, or
    BadRecord naming the field and the value."""
    if message.__class__ is not str:
        raise BadRecord(f"message: {_kind(message)}, not text")
    cap = config.max_message_kb * 1024
    size = len(message.encode("utf-8", "surrogatepass"))
    if size > cap:
        raise BadRecord(f"message: {size:,} bytes, more than the {cap:,}-byte cap (max_message_kb)")
    try:
        record = orjson.loads(message)
    except orjson.JSONDecodeError as exc:
        raise BadRecord(f"message: not JSON: {one_line(exc)[:200]}")
    if record.__class__ is not dict:
        raise BadRecord(f"message: {_kind(record)}, not a JSON object")
    if too_deep(record):
        raise BadRecord(f"message: nested more than {MAX_DEPTH} levels deep")
    names = config.fields
    event_type = _text(at_path(record, names.event), names.event, cols.MAX_EVENT_TYPE, required=True)
    row = {"event_type": event_type, "kind": config.kind_of(event_type),
           "at": event_time(at_path(record, names.time), names.time, latest, earliest),
           "user_agent": scrubbed(_caller_text(at_path(record, names.user_agent), cols.MAX_USER_AGENT))}
    for field, column, limit in TEXT_FIELDS:
        path = getattr(names, field)
        row[column] = scrubbed(_text(at_path(record, path), path, limit))
    kept = _scrub_all(redact_cloudtrail(record))
    try:
        row["record"], row["record_sha256"] = kept, digest(canonical(kept))
    except ValueError as exc:  # a lone surrogate, a number JSON cannot hold
        raise BadRecord(f"message: cannot be stored as JSON: {type(exc).__name__}")
    return row


def rule_fields(row: dict) -> dict:
    """The fields alert rules match on (rules.APP_EVENT_FIELDS) of a stored event row."""
    at = row["at"]
    return {"event": row["event_type"], "kind": row["kind"], "user": row["user"], "sourceIP": row["source_ip"],
            "userAgent": row["user_agent"], "action": row["action"], "outcome": row["outcome"],
            "resource": row["resource"], "account": row["account"], "region": row["region"],
            "logGroup": row["log_group"], "hour": f"{at.hour:02d}", "weekday": WEEKDAYS[at.weekday()]}

