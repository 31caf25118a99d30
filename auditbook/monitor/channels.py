"""Notification channel kinds, a registry (the `notification_channels` seam of auditbook.hookspecs):
each kind says which fields of a notify.yml channel it requires and how an alert event, an
incident or an owner's manual-evidence reminder becomes one HTTP POST (a Delivery) — or, for a kind
with its own `send` (e-mail: SMTP), how it leaves. auditbook.monitor.notify does the rest for every
kind alike — which deliveries are due, retries, keeping secrets out of what is stored;
auditbook.monitor.reminders does it for reminders.

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
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Callable, Optional

from auditbook.errors import UserError
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
    new incident; `reminder(channel, owner, items)`: the Delivery telling an owner which manual
    evidence is due (items: dicts of criterion, item, cadence, state, due_on). A kind without
    `alert` gets no alerts, one without `incident` no incidents, one without `reminder` no
    reminders. `send(channel, delivery, timeout)`: how the kind's deliveries leave when not by an
    HTTP POST (raises OSError or smtplib.SMTPException on failure)."""
    kind: str
    label: str
    requires: tuple[str, ...] = ()
    alert_events: tuple[str, ...] = ()
    alert: Optional[Callable[[Any, dict, str], Delivery]] = None
    incident: Optional[Callable[[Any, dict], Delivery]] = None
    reminder: Optional[Callable[[Any, str, list], Delivery]] = None
    send: Optional[Callable[[Any, Delivery, float], None]] = None


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


def _printable(text: str) -> str:
    """Text fit for one line of a message or a mail header (control characters made spaces)."""
    return "".join(c if c.isprintable() else " " for c in str(text))


def reminder_lines(items: list) -> list[str]:
    """One line per due item: what, and since or until when."""
    said = {"missing": lambda i: "missing: none on file",
            "expired": lambda i: f"expired on {i['due_on']}" if i.get("due_on") else "expired",
            "due": lambda i: f"lapses on {i['due_on']}"}
    return [f"{_printable(i['criterion'])} {_printable(i['item'])} ({i['cadence']}): {said[i['state']](i)}"
            for i in items]


def reminder_subject(owner: str, items: list) -> str:
    return f"auditbook: {len(items)} manual evidence item(s) due for {_printable(owner)}"[:200]


UPLOAD_HINT = "Upload with: auditbook evidence add CRITERION FILE --item ITEM --effective-date YYYY-MM-DD --owner NAME"


def _slack_escaped(text: str) -> str:
    """Slack's control characters as entities: no <!channel> or link can be smuggled in a name."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_reminder(ch, owner: str, items: list) -> Delivery:
    text = "\n".join([reminder_subject(owner, items), *(f"• {line}" for line in reminder_lines(items)), UPLOAD_HINT])
    return Delivery(ch.endpoint(), {"text": _slack_escaped(text)})


def email_reminder(ch, owner: str, items: list) -> Delivery:
    """A plain-text mail to the channel's mail_to, from mail_from, through smtp_host:smtp_port."""
    text = "\n".join([f"Manual evidence owned by {_printable(owner)} is due:", "",
                      *(f"- {line}" for line in reminder_lines(items)), "", UPLOAD_HINT, ""])
    auth = (ch.secret("user_env"), ch.secret("token_env")) if ch.user_env else None
    if auth and not ch.smtp_starttls and ch.smtp_host not in LOOPBACK:
        raise UserError(f"notify: channel {ch.name}: smtp_starttls: AUTH to {ch.smtp_host} needs STARTTLS "
                        "(the password would cross the network in clear)")
    return Delivery(f"smtp://{ch.smtp_host}:{ch.smtp_port}",
                    {"from": ch.mail_from, "to": list(ch.mail_to), "subject": reminder_subject(owner, items),
                     "text": text}, auth=auth)


LOOPBACK = ("127.0.0.1", "localhost", "::1")  # the only SMTP servers that may take a password without STARTTLS


def send_mail(ch, delivery: Delivery, timeout: float = 10.0) -> None:
    """SMTP to the channel's server: STARTTLS first when smtp_starttls (certificate checked), then
    AUTH with user_env/token_env when set. Raises OSError or smtplib.SMTPException."""
    message = EmailMessage()
    message["From"], message["To"] = delivery.body["from"], ", ".join(delivery.body["to"])
    message["Subject"] = delivery.body["subject"]
    message.set_content(delivery.body["text"])
    with smtplib.SMTP(ch.smtp_host, ch.smtp_port, timeout=timeout) as smtp:
        if ch.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if delivery.auth:
            smtp.login(*delivery.auth)
        smtp.send_message(message)


SLACK = ChannelKind("slack", "Slack", alert_events=("trigger",), alert=slack_alert, reminder=slack_reminder)
PAGERDUTY = ChannelKind("pagerduty", "PagerDuty", requires=("routing_key_env",),
                        alert_events=("trigger", "acknowledge", "resolve"), alert=pagerduty_alert)
JIRA = ChannelKind("jira", "Jira", requires=("project", "user_env", "token_env"), incident=jira_incident)
EMAIL = ChannelKind("email", "E-mail (SMTP)", requires=("smtp_host", "mail_from", "mail_to"), reminder=email_reminder,
                    send=send_mail)


@hookimpl
def notification_channels() -> list[ChannelKind]:
    return [SLACK, PAGERDUTY, JIRA, EMAIL]
