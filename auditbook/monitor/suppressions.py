"""Alert suppressions: a rule silenced for a label set until a time, with a reason (analyst or
admin). While one is in force, the alerts it covers — those open when it is made and those raised
after — are kept and shown as suppressed, never notified and never escalated; nothing is deleted.
It lapses at its time (at most MAX_DAYS ahead: a longer silence is a change to alerts.yml, which is
reviewed) or when lifted early. Making and lifting one are in the audit trail, on the suppression
and on each alert it covers."""
from __future__ import annotations

import datetime as dt
import re
from typing import Optional

from auditbook.auth import Actor, authorize
from auditbook.errors import UserError, shown
from auditbook.monitor.alerts import ACTIVE_STATES, MAX_KEY
from auditbook.monitor.triage import text
from auditbook.store import suppressions as stored
from auditbook.store.audit_log import now, record
from auditbook.store.session import reading, writing

MAX_DAYS = 90
MAX_LABELS = 20
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")
RULE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,99}")


def parse_label(pair: str) -> tuple[str, str]:
    """`name=value` (the CLI's --label) as (name, value); a UserError naming it otherwise."""
    name, sep, value = str(pair).partition("=")
    if not sep:
        raise UserError(f"--label: {shown(pair)} is not name=value")
    return name.strip(), value


def parse_until(value: str, at: Optional[dt.datetime] = None) -> dt.datetime:
    """--until: a date (YYYY-MM-DD: its start, 00:00 UTC) or an ISO 8601 time with a time zone."""
    raw = str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            return dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.timezone.utc)
        parsed = dt.datetime.fromisoformat(raw)
        if parsed.tzinfo is None:
            raise UserError(f"--until: {shown(value)} has no time zone (add Z or +00:00)")
        return parsed.astimezone(dt.timezone.utc)
    except OverflowError:  # a time at the edge of the calendar, past it in UTC
        raise UserError(f"--until: {shown(value)} is out of range (years 1 to 9999 in UTC)") from None
    except ValueError:
        raise UserError(f"--until: {shown(value)} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None


def checked(rule: str, labels: dict, until: dt.datetime, reason: str, at: dt.datetime) -> tuple[str, dict, str]:
    """(rule, labels, reason) cleaned, or a UserError naming the field that is wrong."""
    if not isinstance(rule, str) or not RULE_NAME.fullmatch(rule):
        raise UserError(f"--rule: {shown(rule)} is not a rule name")
    if not labels:
        raise UserError("--label: at least one (name=value): a whole rule is silenced in alerts.yml, not here")
    if len(labels) > MAX_LABELS:
        raise UserError(f"--label: {len(labels)} given; at most {MAX_LABELS}")
    clean = {}
    for name, value in labels.items():
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
            raise UserError(f"--label: {shown(name)} is not a label name (letters, digits, _)")
        value = str(value)
        if not value or len(value) > MAX_KEY or not value.isprintable():
            raise UserError(f"--label: {name}: the value must be 1 to {MAX_KEY} printable characters")
        clean[name] = value
    if until <= at:
        raise UserError(f"--until: {until:%Y-%m-%d %H:%M} UTC is not in the future")
    if until > at + dt.timedelta(days=MAX_DAYS):
        raise UserError(f"--until: {until:%Y-%m-%d} is more than {MAX_DAYS} days ahead (change alerts.yml instead)")
    return rule, clean, text(reason, "reason", stored.REASON_LENGTH, required=True)


def _covered(session, rule: str, labels: dict, until: dt.datetime, at: dt.datetime) -> list[int]:
    """The rule's active alerts the suppression covers that no suppression lasting as long silences."""
    return [a["id"] for a in stored.open_alerts_of_rule(session, rule, ACTIVE_STATES, at)
            if stored.covers(labels, a["labels"]) and (a["suppressed_until"] is None or a["suppressed_until"] < until)]


def _suppress_in(session, actor: Actor, rule: str, labels: dict, until: dt.datetime, reason: str,
                 at: dt.datetime) -> dict:
    made = stored.insert_suppression(session, rule=rule, labels=labels, until=until, reason=reason,
                                     created_by=actor.name, at=at)
    covered = _covered(session, rule, labels, until, at)
    stored.attach(session, covered, made["id"])
    record(session, actor, "suppress", "suppression", made["id"], note=reason, at=at,
           after={"rule": rule, "labels": labels, "until": until.isoformat(), "alerts": covered[:1000]})
    for alert_id in covered:
        record(session, actor, "suppress", "alert", alert_id, note=reason, at=at,
               after={"suppression": made["id"], "until": until.isoformat()})
    return {**made, "alerts": covered}


def suppress(engine, actor: Actor, *, rule: str, labels: dict, until: dt.datetime, reason: str,
             at: Optional[dt.datetime] = None) -> dict:
    """Silence `rule` for alerts carrying every one of `labels` until `until`: the suppression, with
    the ids of the open alerts it now covers ("alerts")."""
    authorize(actor, "suppress_alerts")
    at = at or now()
    rule, labels, reason = checked(rule, labels, until, reason, at)
    with writing(engine) as session:
        return _suppress_in(session, actor, rule, labels, until, reason, at)


def suppress_selection(engine, actor: Actor, alerts: list[dict], until: dt.datetime, reason: str) -> list[dict]:
    """A bulk action: a suppression per distinct rule and label set of the selected alerts (each
    alert's whole label set), all made in one unit of work or none."""
    authorize(actor, "suppress_alerts")
    at = now()
    wanted = {(a["rule"], tuple(sorted(a["labels"].items()))): a for a in alerts}
    planned = [checked(a["rule"], a["labels"], until, reason, at) for a in wanted.values()]
    if not planned:
        raise UserError("alerts: none selected")
    with writing(engine) as session:
        return [_suppress_in(session, actor, rule, labels, until, clean_reason, at)
                for rule, labels, clean_reason in planned]


def lift(engine, actor: Actor, suppression_id: int, version: int, reason: str) -> dict:
    """End a suppression now (its alerts notify and escalate again from the next cycle)."""
    authorize(actor, "suppress_alerts")
    reason = text(reason, "reason", stored.REASON_LENGTH, required=True)
    at = now()
    with writing(engine) as session:
        current = stored.get(session, suppression_id)
        if current is None:
            raise UserError(f"suppression: no suppression {suppression_id}")
        if current["until"] <= at:
            raise UserError(f"suppression {suppression_id}: already lapsed at {current['until']:%Y-%m-%d %H:%M} UTC")
        if current["version"] != version or not stored.lift(session, suppression_id, version, by=actor.name, at=at):
            raise UserError(f"suppression {suppression_id} changed meanwhile; nothing was saved")
        record(session, actor, "lift", "suppression", suppression_id, note=reason, at=at,
               before={"until": current["until"].isoformat()}, after={"until": at.isoformat()})
        _release(session, actor, current, reason, at)
        return stored.get(session, suppression_id)


def _release(session, actor: Actor, lifted: dict, reason: str, at: dt.datetime) -> None:
    """The alerts a lifted suppression silenced: each with a `lift` entry, and silenced again by the
    longest other suppression still in force covering it, if any (else it notifies and escalates)."""
    for alert in stored.attached(session, lifted["id"]):
        other = stored.matching(session, lifted["rule"], alert["labels"], at)
        after = {"suppression": None, "until": None}
        if other is not None:
            stored.attach(session, [alert["id"]], other)
            after = {"suppression": other, "until": stored.get(session, other)["until"].isoformat()}
        record(session, actor, "lift", "alert", alert["id"], note=reason, at=at,
               before={"suppression": lifted["id"], "until": lifted["until"].isoformat()}, after=after)


def get_suppression(engine, suppression_id: int) -> dict:
    with reading(engine) as session:
        found = stored.get(session, suppression_id)
    if found is None:
        raise UserError(f"suppression: no suppression {suppression_id}")
    return found


def list_suppressions(engine, active_only: bool = True, at: Optional[dt.datetime] = None) -> list[dict]:
    """Suppressions (in force at `at`, or every one), each with the ids of the alerts it covers."""
    at = at or now()
    with reading(engine) as session:
        found = stored.listing(session, at, active_only)
        return [{**s, "active": s["until"] > at, "alerts": stored.alerts_of(session, s["id"])} for s in found]
