"""Notifications: Slack incoming webhooks, PagerDuty Events API v2 (trigger / acknowledge / resolve
with a dedup key) and Jira REST (an issue per incident), configured in `notify.yml` by URL plus
secrets read from the environment. Each delivery is retried with exponential backoff and recorded
(`notifications`: sent or failed, attempts, last error); a failure never stops the engine. A
delivery that succeeded is never repeated."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Literal, Optional

import requests
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook.errors import UserError, first_error
from auditbook.store.models import Notification

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,60}$")
    kind: Literal["slack", "pagerduty", "jira"]
    url: Optional[str] = None
    url_env: Optional[str] = None           # the URL itself is a secret for Slack webhooks
    routing_key_env: Optional[str] = None   # PagerDuty
    project: Optional[str] = None           # Jira project key
    user_env: Optional[str] = None          # Jira user (e-mail)
    token_env: Optional[str] = None         # Jira API token
    min_severity: Literal["low", "medium", "high", "critical"] = "low"
    _secrets: dict = {}  # from notify.yml's secrets_file: consulted when the environment lacks a name

    def _lookup(self, name: Optional[str]) -> Optional[str]:
        if not name:
            return None
        return os.environ.get(name) or (str(self._secrets[name]) if name in self._secrets else None)

    def endpoint(self) -> str:
        url = self.url or self._lookup(self.url_env)
        if not url:
            raise UserError(f"notify: channel {self.name}: url: set url, or the variable {self.url_env or 'url_env'}")
        return url

    def secret(self, field: str) -> str:
        name = getattr(self, field)
        value = self._lookup(name)
        if not value:
            raise UserError(f"notify: channel {self.name}: {field}: the variable {name or '(unset)'} is empty")
        return value


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secrets_file: Optional[str] = None  # a YAML mapping of secret names to values (mode 0600), beside the env
    channels: list[Channel] = Field(default_factory=list)


def load_channels(path: Path) -> list[Channel]:
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        parsed = _File.model_validate(raw)
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}")
    except yaml.YAMLError:
        raise UserError(f"{path}: not YAML")
    except ValidationError as exc:
        loc, message = first_error(exc)
        raise UserError(f"{path}: {'.'.join(str(x) for x in loc)}: {message}")
    secrets: dict = {}
    if parsed.secrets_file:
        target = (Path(path).parent / parsed.secrets_file) if not Path(parsed.secrets_file).is_absolute() else Path(parsed.secrets_file)
        try:
            secrets = yaml.safe_load(target.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"{path}: secrets_file: {target}: cannot read: {getattr(exc, 'strerror', None) or 'not YAML'}")
        if not isinstance(secrets, dict):
            raise UserError(f"{path}: secrets_file: {target}: not a mapping of names to values")
    for ch in parsed.channels:
        ch._secrets = secrets
        if ch.kind == "pagerduty" and not ch.routing_key_env:
            raise UserError(f"{path}: channel {ch.name}: routing_key_env: required for PagerDuty")
        if ch.kind == "jira" and not (ch.project and ch.user_env and ch.token_env):
            raise UserError(f"{path}: channel {ch.name}: project, user_env and token_env: required for Jira")
    return parsed.channels


def _post(url: str, body: dict, *, auth=None, attempts: int = 4, backoff: float = 0.5, timeout: float = 10) -> tuple[int, str, int]:
    """(HTTP status, response text, attempts). Retries connection errors, 429 and 5xx with backoff."""
    last = None
    for attempt in range(1, attempts + 1):
        try:
            resp = requests.post(url, json=body, auth=auth, timeout=timeout)
            if resp.status_code < 500 and resp.status_code != 429:
                return resp.status_code, resp.text[:2000], attempt
            last = f"HTTP {resp.status_code}: {resp.text[:200]}"
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}: {exc}"
        if attempt < attempts:
            time.sleep(backoff * 2 ** (attempt - 1))
    raise _Failed(last or "failed", attempts)


class _Failed(Exception):
    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


def _already(session: Session, channel: str, object_type: str, object_id, event: str) -> bool:
    return session.scalar(select(Notification.id).where(
        Notification.channel == channel, Notification.object_type == object_type,
        Notification.object_id == str(object_id), Notification.event == event,
        Notification.status == "sent")) is not None


def _record(engine, ch: Channel, event: str, object_type: str, object_id, status: str, attempts: int,
            error: Optional[str] = None, response: Optional[str] = None) -> None:
    with Session(engine) as session, session.begin():
        session.add(Notification(channel=ch.name, kind=ch.kind, event=event, object_type=object_type,
                                 object_id=str(object_id), status=status, attempts=attempts, last_error=error,
                                 response=response, at=dt.datetime.now(dt.timezone.utc)))


def _deliver(engine, ch: Channel, event: str, object_type: str, object_id, url: str, body: dict, auth=None,
             backoff: float = 0.5) -> str:
    try:
        status, text, attempts = _post(url, body, auth=auth, backoff=backoff)
    except _Failed as exc:
        _record(engine, ch, event, object_type, object_id, "failed", exc.attempts, str(exc))
        return "failed"
    if status >= 400:
        _record(engine, ch, event, object_type, object_id, "failed", attempts, f"HTTP {status}: {text[:200]}")
        return "failed"
    _record(engine, ch, event, object_type, object_id, "sent", attempts, response=text)
    return "sent"


def dedup(alert: dict) -> str:
    return "auditbook-" + hashlib.sha256(alert["dedup_key"].encode()).hexdigest()[:32]


def notify_alert(engine, ch: Channel, alert: dict, backoff: float = 0.5) -> Optional[str]:
    """Slack: one message when an alert starts firing. PagerDuty: trigger, then acknowledge and
    resolve as the alert moves (the same dedup key)."""
    if SEVERITY_RANK.get(alert["severity"], 0) < SEVERITY_RANK[ch.min_severity]:
        return None
    event = {"firing": "trigger", "acknowledged": "acknowledge", "resolved": "resolve"}[alert["state"]]
    if ch.kind == "slack" and event != "trigger":
        return None
    if ch.kind == "jira":
        return None  # Jira gets incidents, not alerts
    with Session(engine) as session:
        if _already(session, ch.name, "alert", alert["id"], event):
            return None
    labels = ", ".join(f"{k}={v}" for k, v in alert["labels"].items())
    if ch.kind == "slack":
        body = {"text": f"[{alert['severity'].upper()}] {alert['rule']}: {alert['summary']} ({labels}) — SOC 2 "
                        f"{alert['soc2_control']}"}
        return _deliver(engine, ch, event, "alert", alert["id"], ch.endpoint(), body, backoff=backoff)
    body = {"routing_key": ch.secret("routing_key_env"), "event_action": event, "dedup_key": dedup(alert)}
    if event == "trigger":
        body["payload"] = {"summary": f"{alert['rule']}: {alert['summary']} ({labels})"[:1024],
                           "source": alert["labels"].get("account") or "auditbook",
                           "severity": PD_SEVERITY.get(alert["severity"], "warning"),
                           "component": alert["labels"].get("resource") or alert["labels"].get("principal") or "",
                           "custom_details": {"labels": alert["labels"], "soc2_control": alert["soc2_control"],
                                              "first_seen": alert["first_seen"].isoformat(), "count": alert["count"]}}
    return _deliver(engine, ch, event, "alert", alert["id"], ch.endpoint(), body, backoff=backoff)


def notify_incident(engine, ch: Channel, incident: dict, backoff: float = 0.5) -> Optional[str]:
    """Jira: one issue per incident."""
    if ch.kind != "jira" or SEVERITY_RANK[incident["severity"]] < SEVERITY_RANK[ch.min_severity]:
        return None
    with Session(engine) as session:
        if _already(session, ch.name, "incident", incident["id"], "create"):
            return None
    body = {"fields": {"project": {"key": ch.project}, "issuetype": {"name": "Task"},
                       "summary": f"[auditbook #{incident['id']}] {incident['title']}"[:250],
                       "description": f"{incident['description']}\n\nSeverity: {incident['severity']}. "
                                      f"Links: {json.dumps(incident['links'])}",
                       "labels": ["auditbook", f"severity-{incident['severity']}"]}}
    url = ch.endpoint().rstrip("/") + "/rest/api/2/issue"
    return _deliver(engine, ch, "create", "incident", incident["id"], url, body,
                    auth=(ch.secret("user_env"), ch.secret("token_env")), backoff=backoff)


def dispatch(engine, channels: list[Channel], backoff: float = 0.5) -> dict:
    """Deliver what is due: every alert's current state to Slack/PagerDuty, every incident to Jira."""
    from auditbook import alerts, incidents
    out = {"sent": 0, "failed": 0}
    for alert in alerts.list_alerts(engine):
        for ch in channels:
            try:
                result = notify_alert(engine, ch, alert, backoff)
            except UserError as exc:  # a missing secret: recorded, the engine goes on
                _record(engine, ch, "trigger", "alert", alert["id"], "failed", 0, str(exc))
                result = "failed"
            if result:
                out[result] += 1
    for incident in incidents.list_incidents(engine):
        for ch in channels:
            try:
                result = notify_incident(engine, ch, incident, backoff)
            except UserError as exc:
                _record(engine, ch, "create", "incident", incident["id"], "failed", 0, str(exc))
                result = "failed"
            if result:
                out[result] += 1
    return out
