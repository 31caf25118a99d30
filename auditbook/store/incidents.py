"""Incidents in the store (`incidents`): reads and writes, each a plain dict. Statuses, transitions,
SLAs and who may change what are auditbook.monitor.incidents' business."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import insert, select, update

from auditbook.store.db import utc
from auditbook.store.models import Incident

TITLE_LENGTH = Incident.__table__.c.title.type.length
ASSIGNEE_LENGTH = Incident.__table__.c.assignee.type.length
CATEGORY_LENGTH = Incident.__table__.c.category.type.length
# the post-mortem's columns, as stored (None: not filled in yet)
POSTMORTEM_FIELDS = ("category", "impact_systems", "impact_data", "customers_affected", "customer_notice_required",
                     "customers_notified_on", "regulator_notice_required", "regulator_notified_on", "root_cause",
                     "lessons_learned")


def _as_dict(row) -> dict:
    return {"id": row.id, "title": row.title, "description": row.description, "severity": row.severity,
            "status": row.status, "assignee": row.assignee, "created_by": row.created_by,
            "created_at": utc(row.created_at), "updated_at": utc(row.updated_at),
            "acknowledged_at": utc(row.acknowledged_at), "resolved_at": utc(row.resolved_at),
            "closed_at": utc(row.closed_at), "links": list(row.links or []), "version": row.version,
            **{name: getattr(row, name) for name in POSTMORTEM_FIELDS}}


def get(session, incident_id: int) -> Optional[dict]:
    row = session.get(Incident, incident_id, populate_existing=True)
    return None if row is None else _as_dict(row)


def exists(session, incident_id: int) -> bool:
    return session.scalar(select(Incident.id).where(Incident.id == incident_id)) is not None


def listing(session, statuses: Optional[Iterable[str]] = None) -> list[dict]:
    """Incidents, newest first; only those in `statuses`, when given."""
    q = select(Incident).execution_options(populate_existing=True).order_by(Incident.id.desc())
    if statuses:
        q = q.where(Incident.status.in_(tuple(statuses)))
    return [_as_dict(r) for r in session.scalars(q)]


def insert_incident(session, *, title: str, description: str, severity: str, status: str,
                    assignee: Optional[str], created_by: str, at: dt.datetime, links: list) -> dict:
    """A new incident (version 1), created and updated at `at`; as stored."""
    done = session.execute(insert(Incident).values(
        title=title, description=description, severity=severity, status=status, assignee=assignee,
        created_by=created_by, created_at=at, updated_at=at, links=links, version=1))
    return get(session, done.inserted_primary_key[0])


def change_if_version(session, incident_id: int, version: int, values: dict) -> bool:
    """UPDATE … WHERE version = the version the caller saw, moving it on by one: atomic in every
    database, so of two concurrent writers exactly one wins. True if it changed."""
    done = session.execute(update(Incident).where(Incident.id == incident_id, Incident.version == version)
                           .values(**values, version=version + 1)
                           .execution_options(synchronize_session=False))
    return done.rowcount == 1
