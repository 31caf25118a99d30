"""Settings kept in the store (SLA targets per severity, the wall screen's staleness threshold):
changed by admins only, every change in the audit trail."""
from __future__ import annotations

from sqlalchemy.orm import Session

from auditbook.store.audit_log import record
from auditbook.auth import Actor, authorize
from auditbook.errors import UserError
from auditbook.monitor.incidents import DEFAULT_SLA, SEVERITIES
from auditbook.store.models import Setting

DEFAULTS = {"sla": DEFAULT_SLA, "wall": {"stale_after_hours": 26, "refresh_seconds": 30}}


def get(engine, key: str) -> dict:
    with Session(engine) as session:
        row = session.get(Setting, key)
        return {**DEFAULTS[key], **(row.value if row else {})}


def _validate(key: str, value: dict) -> dict:
    if key == "sla":
        out = {}
        for severity in SEVERITIES:
            target = value.get(severity, DEFAULT_SLA[severity])
            for kind in ("acknowledge", "resolve"):
                minutes = target.get(kind)
                if not isinstance(minutes, int) or minutes < 1:
                    raise UserError(f"sla.{severity}.{kind}: {minutes!r} is not a whole number of minutes ≥ 1")
            if target["resolve"] < target["acknowledge"]:
                raise UserError(f"sla.{severity}.resolve: shorter than the time to acknowledge")
            out[severity] = {"acknowledge": target["acknowledge"], "resolve": target["resolve"]}
        return out
    if key == "wall":
        hours, refresh = value.get("stale_after_hours"), value.get("refresh_seconds")
        if not isinstance(hours, (int, float)) or hours <= 0:
            raise UserError(f"wall.stale_after_hours: {hours!r} is not a positive number")
        if not isinstance(refresh, int) or not 5 <= refresh <= 3600:
            raise UserError(f"wall.refresh_seconds: {refresh!r} is not between 5 and 3600")
        return {"stale_after_hours": hours, "refresh_seconds": refresh}
    raise UserError(f"setting: {key!r} is not a setting")


def put(engine, actor: Actor, key: str, value: dict) -> dict:
    authorize(actor, "manage_settings")
    clean = _validate(key, value)
    before = get(engine, key)
    with Session(engine) as session, session.begin():
        row = session.get(Setting, key)
        if row is None:
            session.add(Setting(key=key, value=clean))
        else:
            row.value = clean
        record(session, actor, "update", "setting", key, before=before, after=clean)
    return clean
