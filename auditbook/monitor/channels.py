"""Notification channel kinds, a registry (the `notification_channels` seam of auditbook.hookspecs):
each kind says which fields of a notify.yml channel it requires and how an alert event or an
incident becomes one HTTP POST (a Delivery). auditbook.monitor.notify does the rest for every kind
alike — which deliveries are due, retries, keeping secrets out of what is stored.

A third party adds a kind by implementing the same hook in its plugin module:

    from auditbook.hookspecs import hookimpl
    from auditbook.monitor.channels import ChannelKind, Delivery

    @hookimpl
    def notification_channels():
        return [ChannelKind("teams", "Microsoft Teams", alert_events=("trigger",),
                            alert=lambda ch, alert, event: Delivery(ch.endpoint(), {"text": alert["summary"]}))]
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Optional

from auditbook.hookspecs import hookimpl

PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


@dataclass(frozen=True)
class Delivery:
    """One POST: where, the JSON body, HTTP basic credentials, and every secret the request carries
    besides the URL (each is cut out of whatever is stored about it)."""
    url: str
    body: dict
    auth: Optional[tuple[str, str]] = None
    secrets: tuple = ()


@dataclass(frozen=True)
class ChannelKind:
    """A kind of notification channel. `requires`: the channel's fields that must be set in
    notify.yml. `alert(channel, alert, event)`: the Delivery for an alert event (one of
    `alert_events`: trigger, acknowledge, resolve); `incident(channel, incident)`: the Delivery for a
    new incident. A kind without `alert` gets no alerts, one without `incident` no incidents."""
    kind: str
    label: str
    requires: tuple[str, ...] = ()
    alert_events: tuple[str, ...] = ()
    alert: Optional[Callable[[Any, dict, str], Delivery]] = None
    incident: Optional[Callable[[Any, dict], Delivery]] = None


def dedup(alert: dict) -> str:
    """PagerDuty's dedup key of an alert: the same for every event of one alert."""
    return "auditbook-" + hashlib.sha256(alert["dedup_key"].encode()).hexdigest()[:32]


def _labels(alert: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in alert["labels"].items())


def slack_alert(ch, alert: dict, event: str) -> Delivery:
    """Slack incoming webhook: one message when an alert starts firing."""
    text = (f"[{alert['severity'].upper()}] {alert['rule']}: {alert['summary']} ({_labels(alert)}) — SOC 2 "
            f"{alert['soc2_control']}")
    return Delivery(ch.endpoint(), {"text": text})


def pagerduty_alert(ch, alert: dict, event: str) -> Delivery:
    """PagerDuty Events API v2: trigger, then acknowledge and resolve under one dedup key per alert."""
    routing_key = ch.secret("routing_key_env")
    body: dict = {"routing_key": routing_key, "event_action": event, "dedup_key": dedup(alert)}
    if event == "trigger":
        labels = alert["labels"]
        body["payload"] = {"summary": f"{alert['rule']}: {alert['summary']} ({_labels(alert)})"[:1024],
                           "source": labels.get("account") or "auditbook",
                           "severity": PD_SEVERITY.get(alert["severity"], "warning"),
                           "component": labels.get("resource") or labels.get("principal") or "",
                           "custom_details": {"labels": labels, "soc2_control": alert["soc2_control"],
                                              "first_seen": alert["first_seen"].isoformat(), "count": alert["count"]}}
    return Delivery(ch.endpoint(), body, secrets=(routing_key,))


def jira_incident(ch, incident: dict) -> Delivery:
    """Jira REST: one issue per incident."""
    body = {"fields": {"project": {"key": ch.project}, "issuetype": {"name": "Task"},
                       "summary": f"[auditbook #{incident['id']}] {incident['title']}"[:250],
                       "description": f"{incident['description']}\n\nSeverity: {incident['severity']}. "
                                      f"Links: {json.dumps(incident['links'])}",
                       "labels": ["auditbook", f"severity-{incident['severity']}"]}}
    return Delivery(ch.endpoint().rstrip("/") + "/rest/api/2/issue", body,
                    auth=(ch.secret("user_env"), ch.secret("token_env")))


SLACK = ChannelKind("slack", "Slack", alert_events=("trigger",), alert=slack_alert)
PAGERDUTY = ChannelKind("pagerduty", "PagerDuty", requires=("routing_key_env",),
                        alert_events=("trigger", "acknowledge", "resolve"), alert=pagerduty_alert)
JIRA = ChannelKind("jira", "Jira", requires=("project", "user_env", "token_env"), incident=jira_incident)


@hookimpl
def notification_channels() -> list[ChannelKind]:
    return [SLACK, PAGERDUTY, JIRA]
