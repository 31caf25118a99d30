"""Notifications to the channels configured in `notify.yml` by URL plus secrets read from the
environment. What a kind of channel sends is its ChannelKind's (the registry of auditbook.monitor.channels:
Slack incoming webhooks, PagerDuty Events API v2 with trigger / acknowledge / resolve under a dedup
key, Jira REST with an issue per incident, and any a plugin adds); this module does the rest for
every kind alike. Each delivery is retried with exponential backoff and recorded
(`notifications`: sent or failed, attempts, last error); a failure never stops the engine. A
delivery that succeeded is never repeated.

A channel's URL, routing key, user and token are secrets: they are sent to the channel and nowhere
else. A failure is stored as its class alone (`ConnectionError`, `HTTP 500`): never the exception's
text (requests names the URL in it), never what the server answered (it may echo the URL in any
escaping). A success keeps the server's answer with its escapes undone and every form of those
secrets cut out."""
from __future__ import annotations

import base64
import datetime as dt
import html
import os
import re
import time
from pathlib import Path
from typing import Annotated, Literal, Optional
from urllib.parse import quote, unquote, urlsplit

import requests
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from auditbook.errors import (
    UserError,
    field_path,
    first_duplicate,
    first_error,
    name_of,
)
from auditbook.monitor.alerts import list_alerts
from auditbook.monitor.incidents import list_incidents
from auditbook.plugins import channel_kinds
from auditbook.store import notifications as stored
from auditbook.store.session import reading, writing
from auditbook.yamlfile import load_yaml

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
ALERT_EVENTS = {"firing": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}  # pending: none


MailAddress = Annotated[str, StringConstraints(pattern=r"^[^\s@<>,;:\"()\\]{1,64}@[A-Za-z0-9.-]{1,253}$")]
OwnerName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$")]


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$")
    kind: str  # a registered ChannelKind (plugins.channel_kinds(): slack, pagerduty, jira, and plugins')
    url: Optional[str] = None
    url_env: Optional[str] = None           # the URL itself is a secret for Slack webhooks
    routing_key_env: Optional[str] = None   # PagerDuty
    project: Optional[str] = None           # Jira project key
    user_env: Optional[str] = None          # Jira user (e-mail)
    token_env: Optional[str] = None         # Jira API token
    min_severity: Literal["low", "medium", "high", "critical"] = "low"
    # e-mail (manual-evidence reminders): the SMTP server, STARTTLS, sender and recipients; AUTH with user_env/token_env
    smtp_host: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_starttls: bool = False
    mail_from: Optional[MailAddress] = None
    mail_to: list[MailAddress] = Field(default_factory=list, max_length=50)
    # the owners of manual evidence whose reminders this channel takes ("*": every owner no channel names)
    owners: list[OwnerName] = Field(default_factory=list, max_length=500)
    _secrets: dict = {}  # from notify.yml's secrets_file: consulted when the environment lacks a name

    def _lookup(self, name: Optional[str]) -> Optional[str]:
        if not name:
            return None
        return os.environ.get(name) or (str(self._secrets[name]) if name in self._secrets else None)

    @field_validator("kind")
    @classmethod
    def _registered_kind(cls, value: str) -> str:
        kinds = channel_kinds()
        if value not in kinds:
            raise ValueError(f"not a channel kind: one of {', '.join(sorted(kinds))}")
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not is_http_url(value):
            raise ValueError("not an http(s) URL")
        return value

    def endpoint(self) -> str:
        url = self.url or self._lookup(self.url_env)
        if not url:
            raise UserError(f"notify: channel {self.name}: url: set url, or the variable {self.url_env or 'url_env'}")
        if not is_http_url(url):  # the value is a secret: the message names the variable only
            raise UserError(f"notify: channel {self.name}: url_env: the variable {self.url_env} does not hold "
                            "an http(s) URL")
        return url

    def secret(self, field: str) -> str:
        name = getattr(self, field)
        value = self._lookup(name)
        if not value:
            raise UserError(f"notify: channel {self.name}: {field}: the variable {name or '(unset)'} is empty")
        if not value.isprintable():
            raise UserError(f"notify: channel {self.name}: {field}: the variable {name} holds control characters")
        return value


def is_http_url(url: str) -> bool:
    """An http(s) URL with a host, printable, without spaces (what requests can send without raising)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and url.isprintable() and " " not in url


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secrets_file: Optional[str] = None  # a YAML mapping of secret names to values (mode 0600), beside the env
    channels: list[Channel] = Field(default_factory=list)

    @field_validator("secrets_file")
    @classmethod
    def _plain_path(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not (value.strip() and value.isprintable()):
            raise ValueError("not a file name (empty, or holds control or format characters)")
        return value


def load_channels(path: Path) -> list[Channel]:
    """notify.yml (auditbook.yamlfile: a regular file, bounded, dates kept as text, no aliases) and
    its secrets file; any problem is one line naming the file and the field."""
    raw = load_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: the top level must be a mapping (secrets_file, channels), not a {type(raw).__name__}")
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        loc, message = first_error(exc)
        raise UserError(f"{path}: {field_path(loc) or 'top level'}: {message}")
    names = [ch.name for ch in parsed.channels]
    twice = first_duplicate(names)
    if twice is not None:
        second = [i for i, name in enumerate(names) if name == twice][1]
        raise UserError(f"{path}: channels.{second}.name: {twice!r} is used twice (names must be unique)")
    secrets = _load_secrets(Path(path), parsed.secrets_file) if parsed.secrets_file else {}
    for ch in parsed.channels:
        ch._secrets = secrets
        kind = channel_kinds()[ch.kind]
        missing = [name for name in kind.requires if not getattr(ch, name, None)]
        if missing:
            raise UserError(f"{path}: channel {ch.name}: {_listed(missing)}: required for {kind.label}")
    return parsed.channels


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _load_secrets(path: Path, name: str) -> dict:
    """The secrets file: a mapping of names to text. Its messages name keys and lines, never a value."""
    target = Path(name) if Path(name).is_absolute() else path.parent / name
    try:
        raw = load_yaml(target)
    except UserError as exc:  # keep the file and line; drop the parser's detail, which may quote a value
        raise UserError(f"{path}: secrets_file: " + re.sub(r"(not valid YAML(?: at line \d+)?): .*$", r"\1", str(exc)))
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{path}: secrets_file: {target}: not a mapping of names to values")
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise UserError(f"{path}: secrets_file: {target}: {name_of(key)}: the value must be text "
                            "(quote it: YAML reads 0123 as a number)")
    return raw


def secret_forms(values) -> list[str]:
    """Every form in which a secret may come back in a server's answer: as is, URL-quoted, and, for a
    URL, its path (a Slack webhook's secret part); for a (user, token) pair, its Basic credentials."""
    forms: set[str] = set()
    for value in values:
        if isinstance(value, tuple):
            forms.add(base64.b64encode(":".join(value).encode("latin-1", "replace")).decode())  # as requests sends it
            forms.update(value)
            continue
        forms.update({value, quote(value, safe=""), quote(value)})
        if is_http_url(value) and len(urlsplit(value).path) > 1:
            forms.add(urlsplit(value).path)
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


ANSWER_READ = 65536  # characters of a server's answer looked at (undoing escapes shrinks text at most 6 times)
ESCAPE_ROUNDS = 8
ASCII_ESCAPE = re.compile(r"\\u00([0-7][0-9a-fA-F])")


def plain_text(text: str) -> Optional[str]:
    """Text with the escapes a secret may come back in undone, until none is left: JSON's `\\/` and
    `\\u002f`, percent-escapes in either case, HTML entities; None if some are still left after
    ESCAPE_ROUNDS rounds."""
    for _round in range(ESCAPE_ROUNDS):
        undone = html.unescape(unquote(ASCII_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text.replace("\\/", "/"))))
        if undone == text:
            return text
        text = undone
    return None


def scrub(text: str, forms, limit: int) -> str:
    """The first `limit` characters of text, escapes undone (plain_text), with every form of a secret
    cut out whatever its case (one cut at the limit leaves no half of a secret); NUL, which
    PostgreSQL's text refuses, shown as \\0."""
    text = plain_text(text[:ANSWER_READ])
    if text is None:
        return "(not kept: escapes within escapes)"
    for form in forms:
        text = re.sub(re.escape(form), "***", text, flags=re.IGNORECASE)
    return text[:limit].replace("\0", "\\0")


def _post(url: str, body: dict, *, auth=None, attempts: int = 4, backoff: float = 0.5, timeout: float = 10,
          hidden: tuple = ()) -> tuple[int, str, int]:
    """(HTTP status, response text with `hidden` cut out, attempts). Retries connection errors, 429 and
    5xx with backoff. A failure is recorded by its class alone: requests' messages name the URL, and a
    server's error may echo it."""
    last = None
    for attempt in range(1, attempts + 1):
        try:
            resp = requests.post(url, json=body, auth=auth, timeout=timeout)
            if resp.status_code < 500 and resp.status_code != 429:
                return resp.status_code, scrub(resp.text, hidden, 2000), attempt
            last = f"HTTP {resp.status_code}"
        except (requests.RequestException, ValueError) as exc:  # ValueError: a header or URL requests refuses
            last = type(exc).__name__
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise _Failed(last or "failed", attempts)


class _Failed(Exception):
    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


def _record(engine, ch: Channel, event: str, object_type: str, object_id, status: str, attempts: int,
            error: Optional[str] = None, response: Optional[str] = None) -> None:
    with writing(engine) as session:
        stored.insert_delivery(session, channel=ch.name, kind=ch.kind, event=event, object_type=object_type,
                               object_id=object_id, status=status, attempts=attempts, error=error, response=response)


def _already(engine, ch: Channel, object_type: str, object_id, event: str, since=None) -> bool:
    with reading(engine) as session:
        return stored.already_sent(session, ch.name, object_type, object_id, event, since)


def _deliver(engine, ch: Channel, event: str, object_type: str, object_id, delivery, backoff: float = 0.5) -> str:
    """POST a channel kind's Delivery and record how it went (never a secret: see the module's doc)."""
    hidden = tuple(secret_forms([delivery.url, *delivery.secrets] + ([delivery.auth] if delivery.auth else [])))
    try:
        status, text, attempts = _post(delivery.url, delivery.body, auth=delivery.auth, backoff=backoff, hidden=hidden)
    except _Failed as exc:
        _record(engine, ch, event, object_type, object_id, "failed", exc.attempts, str(exc))
        return "failed"
    if status >= 400:  # the answer is not kept: an error page may echo the URL in any escaping
        _record(engine, ch, event, object_type, object_id, "failed", attempts, f"HTTP {status}")
        return "failed"
    _record(engine, ch, event, object_type, object_id, "sent", attempts, response=text)
    return "sent"


def _kind(ch: Channel):
    return channel_kinds()[ch.kind]


def notify_alert(engine, ch: Channel, alert: dict, backoff: float = 0.5) -> Optional[str]:
    """An alert's current state to one channel, if its kind takes that event (Slack: trigger;
    PagerDuty: trigger, acknowledge, resolve) and it was not delivered before. A pending alert
    (a posture rule's `for` not yet over) is not notified, nor is a suppressed one — except to
    follow up a trigger the channel had before the suppression (so PagerDuty can still resolve)."""
    if SEVERITY_RANK.get(alert["severity"], 0) < SEVERITY_RANK[ch.min_severity]:
        return None
    event, kind = ALERT_EVENTS.get(alert["state"]), _kind(ch)
    # a trigger counts from the alert's triage clock: an alert reopened by a new occurrence after its
    # decision (monitor/alerts.py) is announced again
    since = alert.get("fired_at") if event == "trigger" else None
    if since is not None and since > dt.datetime.now(dt.timezone.utc):
        since = None  # a clock in the future (a record's bad time): never a trigger sent on every cycle
    if kind.alert is None or event not in kind.alert_events or _already(engine, ch, "alert", alert["id"], event, since):
        return None
    if alert.get("suppressed_until") and (event == "trigger" or not _already(engine, ch, "alert", alert["id"], "trigger")):
        return None
    return _deliver(engine, ch, event, "alert", alert["id"], kind.alert(ch, alert, event), backoff)


def notify_incident(engine, ch: Channel, incident: dict, backoff: float = 0.5) -> Optional[str]:
    """A new incident to one channel, if its kind takes incidents (Jira: one issue per incident)."""
    kind = _kind(ch)
    if kind.incident is None or SEVERITY_RANK[incident["severity"]] < SEVERITY_RANK[ch.min_severity]:
        return None
    if _already(engine, ch, "incident", incident["id"], "create"):
        return None
    return _deliver(engine, ch, "create", "incident", incident["id"], kind.incident(ch, incident), backoff)


def dispatch(engine, channels: list[Channel], backoff: float = 0.5) -> dict:
    """Deliver what is due: every alert's current state and every incident, to each channel whose
    kind takes it. A channel that cannot be used (a missing secret) is a failure recorded; the
    engine goes on."""
    out = {"sent": 0, "failed": 0}
    for alert in list_alerts(engine):
        for ch in channels:
            try:
                result = notify_alert(engine, ch, alert, backoff)
            except UserError as exc:
                _record(engine, ch, ALERT_EVENTS.get(alert["state"], "trigger"), "alert", alert["id"], "failed", 0,
                        str(exc))
                result = "failed"
            if result:
                out[result] += 1
    for incident in list_incidents(engine):
        for ch in channels:
            try:
                result = notify_incident(engine, ch, incident, backoff)
            except UserError as exc:
                _record(engine, ch, "create", "incident", incident["id"], "failed", 0, str(exc))
                result = "failed"
            if result:
                out[result] += 1
    return out
