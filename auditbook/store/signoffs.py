"""Sign-offs (auditbook.history.signoffs): each preparation and review of a criterion, the packet or
the management assertion for a period is an append-only audit-trail entry (object type `signoff`,
object id `START..END:SUBJECT`, action `prepare` or `review`), written in the caller's unit of work;
nothing is updated or deleted. No table of their own: the trail is the record (docs/signoff.md)."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import select

from auditbook.auth import Actor
from auditbook.store import audit_log
from auditbook.store.models import AuditEntry
from auditbook.store.samples import period_key

OBJECT_TYPE = "signoff"
STAGES = ("prepare", "review")


def object_key(start: dt.date, end: dt.date, subject: str) -> str:
    """The trail's object id of one subject's sign-offs for a period: `2026-07-01..2026-09-30:CC7.3`."""
    return f"{period_key(start, end)}:{subject}"


def record_signoff(session, actor: Actor, start: dt.date, end: dt.date, subject: str, stage: str, entry: dict,
                   at: Optional[dt.datetime] = None) -> None:
    """Append one sign-off (a JSON-able dict: decision, comment, …) to the trail."""
    if stage not in STAGES:
        raise ValueError(f"unknown sign-off stage {stage!r}")
    audit_log.record(session, actor, stage, OBJECT_TYPE, object_key(start, end, subject), after=entry, at=at)


def _signoff(entry: dict) -> Optional[dict]:
    if entry["action"] not in STAGES or not isinstance(entry["after"], dict):
        return None
    return {**entry["after"], "stage": entry["action"], "by": entry["actor"], "role": entry["role"],
            "at": entry["at"]}


def signoffs(session, start: dt.date, end: dt.date, subjects: Iterable[str]) -> dict[str, list[dict]]:
    """Every sign-off of each subject for the period, oldest first: {subject: [{stage, by, role, at,
    decision, comment, …}]} (a subject never signed: [])."""
    subjects = list(subjects)
    keys = {object_key(start, end, s): s for s in subjects}
    found = audit_log.trails(session, OBJECT_TYPE, keys)
    out: dict[str, list[dict]] = {s: [] for s in subjects}
    for key, entries in found.items():
        out[keys[key]] = [s for s in map(_signoff, entries) if s is not None]
    return out


def latest(session, start: dt.date, end: dt.date, subject: str) -> dict[str, Optional[dict]]:
    """The latest sign-off of each stage of one subject for the period: {"prepare": …, "review": …}."""
    out: dict[str, Optional[dict]] = {stage: None for stage in STAGES}
    for signoff in signoffs(session, start, end, [subject])[subject]:
        out[signoff["stage"]] = signoff
    return out


def subjects_signed(session, start: dt.date, end: dt.date) -> list[str]:
    """The subjects with at least one sign-off for the period (object ids under its key)."""
    prefix = period_key(start, end) + ":"
    keys = session.scalars(select(AuditEntry.object_id).distinct()
                           .where(AuditEntry.object_type == OBJECT_TYPE,
                                  AuditEntry.object_id.startswith(prefix, autoescape=True)))
    return sorted(key[len(prefix):] for key in keys)
