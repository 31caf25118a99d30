"""An incident's post-mortem (CC7.4, CC7.5): category, impact (systems, data, customers affected),
whether customers and regulators had to be told and when they were, root cause, lessons learned —
fields of the incident, changed through monitor.incidents.update (versioned, in the audit trail) and
checked here — and action items (owner, due date, done), each versioned on its own. Closing a high
or critical incident requires its root cause and lessons learned (`closing_refusal`)."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from auditbook.auth import Actor, authorize
from auditbook.errors import UserError, shown
from auditbook.store import incident_actions as stored_actions
from auditbook.store import incidents as stored_incidents
from auditbook.store.audit_log import now, record
from auditbook.store.session import reading, writing

CATEGORIES = ("unauthorised access", "credential compromise", "misconfiguration", "data exposure", "malware",
              "denial of service", "phishing", "insider misuse", "third party", "lost or stolen device", "other")
NEEDS_POSTMORTEM = ("critical", "high")  # closing these requires root cause and lessons learned
REQUIRED_TO_CLOSE = {"root_cause": "root cause", "lessons_learned": "lessons learned"}
TEXT_FIELDS = ("impact_systems", "impact_data", "root_cause", "lessons_learned")
NOTICE_FIELDS = ("customer_notice_required", "regulator_notice_required")
DATE_FIELDS = ("customers_notified_on", "regulator_notified_on")
FIELDS = stored_incidents.POSTMORTEM_FIELDS
LABELS = {"category": "category", "impact_systems": "systems affected", "impact_data": "data affected",
          "customers_affected": "customers affected", "customer_notice_required": "customer notification required",
          "customers_notified_on": "customers notified on", "regulator_notice_required": "regulator notification required",
          "regulator_notified_on": "regulator notified on", "root_cause": "root cause",
          "lessons_learned": "lessons learned"}
MAX_TEXT = 20000
MAX_COUNT = 2**31 - 1  # an Integer column everywhere


class ActionConflict(Exception):
    """Somebody else changed the action item first; `current` is its state now."""

    def __init__(self, current: dict):
        super().__init__(f"action item {current['id']} was changed by someone else (now version {current['version']}); "
                         "nothing was saved — review its current state and try again")
        self.current = current


def _text(value, field: str, limit: int = MAX_TEXT) -> Optional[str]:
    if value is not None and not isinstance(value, str):
        raise UserError(f"{field}: {value!r} is not text")
    text = (value or "").strip()
    if len(text) > limit:
        raise UserError(f"{field}: {len(text)} characters, more than the {limit} allowed")
    return text or None


def _category(value) -> Optional[str]:
    text = _text(value, "category", stored_incidents.CATEGORY_LENGTH)
    if text is None:
        return None
    found = next((c for c in CATEGORIES if c == text.lower()), None)
    if found is None:
        raise UserError(f"category: {shown(text)} is not one of {', '.join(CATEGORIES)}")
    return found


def _count(value) -> Optional[int]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not (text.isascii() and text.isdecimal()) or int(text) > MAX_COUNT:  # not '²'
        raise UserError(f"customers_affected: {shown(text)} is not a count (0 to {MAX_COUNT}, or empty: not assessed)")
    return int(text)


def _notice(value, field: str) -> Optional[bool]:
    if value is None or isinstance(value, bool):
        return value
    raise UserError(f"{field}: {value!r} is not yes, no or undecided")


def parse_day(value, field: str, today: Optional[dt.date] = None) -> Optional[dt.date]:
    """A date (or YYYY-MM-DD text, or empty: none) that is not in the future."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime) or not isinstance(value, (dt.date, str)):
        raise UserError(f"{field}: {value!r} is not a date (YYYY-MM-DD)")
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise UserError(f"{field}: {shown(value)} is not a date (YYYY-MM-DD)") from None
    if value > (today or now().date()):
        raise UserError(f"{field}: {value} is in the future")
    return value


def postmortem_values(current: dict, changes: dict) -> dict:
    """The post-mortem columns `changes` really change, each checked (a UserError naming the field)."""
    cleaned: dict = {}
    for name, value in changes.items():
        if name == "category":
            cleaned[name] = _category(value)
        elif name in TEXT_FIELDS:
            cleaned[name] = _text(value, name)
        elif name == "customers_affected":
            cleaned[name] = _count(value)
        elif name in NOTICE_FIELDS:
            cleaned[name] = _notice(value, name)
        elif name in DATE_FIELDS:
            cleaned[name] = parse_day(value, name)
    return {k: v for k, v in cleaned.items() if v != current[k]}


def missing_to_close(incident: dict) -> list[str]:
    """What a high or critical incident still lacks before it may be closed (empty: nothing)."""
    return [label for name, label in REQUIRED_TO_CLOSE.items() if not incident.get(name)]


def closing_refusal(current: dict, values: dict) -> Optional[str]:
    """Why the change `values` may not be saved, or None: a high or critical incident (before or after
    the change) is closed only with its root cause and lessons learned — neither closed without
    them, nor left closed once they are emptied."""
    after = {**current, **values}
    touched = [name for name in ("status", "severity", *REQUIRED_TO_CLOSE) if name in values]
    if after["status"] != "closed" or not touched:
        return None
    severity = next((s for s in (current["severity"], after["severity"]) if s in NEEDS_POSTMORTEM), None)
    missing = missing_to_close(after)
    if severity is None or not missing:
        return None
    return (f"{touched[0]}: a {severity} incident is closed only with its root cause and lessons learned; "
            f"missing: {' and '.join(missing)} (fill in the post-mortem first)")


def notices_outstanding(incident: dict) -> list[str]:
    """Notifications marked required and not recorded as done."""
    out = []
    if incident.get("customer_notice_required") and not incident.get("customers_notified_on"):
        out.append("customers")
    if incident.get("regulator_notice_required") and not incident.get("regulator_notified_on"):
        out.append("regulator")
    return out


# -- action items ------------------------------------------------------------------------------------

def _action_json(action: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in action.items()}


def parse_action(spec: str, option: str = "--action") -> tuple[str, str, str]:
    """`owner|due|text` (the command line's form) as (owner, due, text)."""
    parts = spec.split("|", 2)
    if len(parts) != 3:
        raise UserError(f"{option}: {shown(spec)} is not OWNER|YYYY-MM-DD|what to do")
    return parts[0], parts[1], parts[2]


def checked_action(owner: str, due, text: str) -> dict:
    """A new action item's owner, due date and text, checked (nothing is written here)."""
    text = _text(text, "action", stored_actions.TEXT_LENGTH)
    owner = _text(owner, "action owner", stored_actions.OWNER_LENGTH)
    if not text or not owner:
        raise UserError("action: give its owner, due date and what is to be done")
    return {"owner": owner, "due_on": _due(due), "text": text}


def _due(value) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return dt.date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise UserError(f"action due date: {shown(str(value))} is not a date (YYYY-MM-DD)") from None


def insert_action(session, actor: Actor, incident_id: int, checked: dict, stamp: dt.datetime) -> dict:
    """A checked action item stored on the incident and its timeline, in the caller's unit of work."""
    made = stored_actions.insert_action(session, incident_id=incident_id, created_by=actor.name, at=stamp, **checked)
    record(session, actor, "add action", "incident", incident_id, after=_action_json(made), at=stamp)
    return made


def add_action(engine, actor: Actor, incident_id: int, *, owner: str, due, text: str) -> dict:
    """A new action item on the incident's post-mortem, recorded on its timeline."""
    authorize(actor, "update_incident")
    checked = checked_action(owner, due, text)
    with writing(engine) as session:
        if not stored_incidents.exists(session, incident_id):
            raise UserError(f"incident: no incident {incident_id}")
        return insert_action(session, actor, incident_id, checked, now())


def change_done(session, actor: Actor, current: dict, version: int, done: bool, stamp: dt.datetime) -> bool:
    """Mark the action item `current` done (or not done) if it is still at `version`, on the
    incident's timeline, in the caller's unit of work. False: someone changed it first."""
    if current["version"] != version:
        return False
    if (current["done_at"] is not None) == done:
        return True
    values = {"done_by": actor.name, "done_at": stamp} if done else {"done_by": None, "done_at": None}
    if not stored_actions.change_if_version(session, current["id"], version, values):
        return False
    record(session, actor, "action done" if done else "action reopened", "incident", current["incident_id"],
           before=_action_json({"action": current["id"], "done_at": current["done_at"]}),
           after=_action_json({"action": current["id"], "done_at": values["done_at"]}), at=stamp)
    return True


def action_of(session, incident_id: int, action_id: int) -> dict:
    found = stored_actions.get(session, action_id)
    if found is None or found["incident_id"] != incident_id:
        raise UserError(f"action: incident {incident_id} has no action item {action_id}")
    return found


def set_action_done(engine, actor: Actor, action_id: int, version: int, done: bool = True) -> dict:
    """Mark an action item done (or not done again). `version` is the version the caller saw: if it
    changed since, nothing is saved and ActionConflict carries its current state."""
    authorize(actor, "update_incident")
    with writing(engine) as session:
        current = stored_actions.get(session, action_id)
        if current is None:
            raise UserError(f"action: no action item {action_id}")
        saved = change_done(session, actor, current, version, done, now())
    with reading(engine) as session:
        after = stored_actions.get(session, action_id)
    if not saved:
        raise ActionConflict(after)
    return after


def actions(engine, incident_id: int) -> list[dict]:
    with reading(engine) as session:
        return stored_actions.of_incident(session, incident_id)


def overdue(items: list[dict], today: Optional[dt.date] = None) -> list[dict]:
    today = today or now().date()
    return [a for a in items if a["done_at"] is None and a["due_on"] < today]

