"""Settings kept in the store (incident SLA targets and alert triage targets per severity, the wall
screen's staleness threshold): changed by admins only, every change in the audit trail."""
from __future__ import annotations

from auditbook.auth import Actor, authorize
from auditbook.errors import UserError
from auditbook.history.deviation_kinds import DEFAULT_TRIAGE
from auditbook.history.signoffs import ASSERTION_KEY, DEFAULT_ASSERTION, valid_assertion
from auditbook.history.sla import DEFAULT_SLA, targets_in_force, valid_targets
from auditbook.store import settings as stored
from auditbook.store.audit_log import record
from auditbook.store.session import reading, writing

# minutes from an alert's first sighting to its triage decision, per alert severity
DEFAULTS = {"sla": DEFAULT_SLA, "wall": {"stale_after_hours": 26, "refresh_seconds": 30}, "triage": DEFAULT_TRIAGE}
DEFAULTS[ASSERTION_KEY] = DEFAULT_ASSERTION  # the management assertion's text template (docs/signoff.md)
MAX_TRIAGE_MINUTES = 60 * 24 * 90


def _merged(key: str, value) -> dict:
    return targets_in_force(value) if key == "sla" else {**DEFAULTS[key], **(value or {})}


def _valid_triage(value: dict) -> dict:
    """Triage targets for every alert severity (a missing one: its default), each a whole number of
    minutes from 1 to 90 days; a UserError naming the first that is not."""
    if not isinstance(value, dict):
        raise UserError(f"triage: {type(value).__name__} is not a mapping of severities to minutes")
    unknown = sorted(set(value) - set(DEFAULT_TRIAGE), key=str)
    if unknown:
        raise UserError(f"triage.{unknown[0]}: not a severity (one of {', '.join(DEFAULT_TRIAGE)})")
    out = {}
    for severity, default in DEFAULT_TRIAGE.items():
        minutes = value.get(severity, default)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_TRIAGE_MINUTES:
            raise UserError(f"triage.{severity}: {minutes!r} is not a whole number of minutes from 1 to "
                            f"{MAX_TRIAGE_MINUTES}")
        out[severity] = minutes
    return out


def get(engine, key: str) -> dict:
    with reading(engine) as session:
        return _merged(key, stored.read(session, key))


def _validate(key: str, value: dict) -> dict:
    if key == "sla":
        try:
            return valid_targets(value)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if key == "wall":
        hours, refresh = value.get("stale_after_hours"), value.get("refresh_seconds")
        if not isinstance(hours, (int, float)) or hours <= 0:
            raise UserError(f"wall.stale_after_hours: {hours!r} is not a positive number")
        if not isinstance(refresh, int) or not 5 <= refresh <= 3600:
            raise UserError(f"wall.refresh_seconds: {refresh!r} is not between 5 and 3600")
        return {"stale_after_hours": hours, "refresh_seconds": refresh}
    if key == "triage":
        return _valid_triage(value)
    if key == ASSERTION_KEY:
        return valid_assertion(value)
    raise UserError(f"setting: {key!r} is not a setting")


def put(engine, actor: Actor, key: str, value: dict) -> dict:
    authorize(actor, "manage_settings")
    clean = _validate(key, value)
    with writing(engine) as session:
        before = _merged(key, stored.read(session, key))
        stored.write(session, key, clean)
        record(session, actor, "update", "setting", key, before=before, after=clean)
    return clean
