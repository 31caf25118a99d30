"""Action items of incidents' post-mortems (`incident_actions`): reads and writes, each a plain dict.
Who may change them and what is valid is auditbook.monitor.postmortem's business."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import insert, select, update

from auditbook.store.db import utc
from auditbook.store.models_workflow import IncidentAction

TEXT_LENGTH = IncidentAction.__table__.c.text.type.length
OWNER_LENGTH = IncidentAction.__table__.c.owner.type.length


def _as_dict(row) -> dict:
    return {"id": row.id, "incident_id": row.incident_id, "text": row.text, "owner": row.owner,
            "due_on": row.due_on, "created_by": row.created_by, "created_at": utc(row.created_at),
            "done_by": row.done_by, "done_at": utc(row.done_at), "version": row.version}


def get(session, action_id: int) -> Optional[dict]:
    row = session.get(IncidentAction, action_id, populate_existing=True)
    return None if row is None else _as_dict(row)


def of_incident(session, incident_id: int) -> list[dict]:
    """An incident's action items, in the order they were added."""
    q = (select(IncidentAction).where(IncidentAction.incident_id == incident_id)
         .execution_options(populate_existing=True).order_by(IncidentAction.id))
    return [_as_dict(r) for r in session.scalars(q)]


def of_incidents(session, incident_ids: Iterable[int]) -> dict[int, list[dict]]:
    """of_incident() of many incidents at once: {incident id: action items}."""
    ids = sorted(set(incident_ids))
    out: dict[int, list[dict]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        q = (select(IncidentAction).where(IncidentAction.incident_id.in_(ids[start:start + 500]))
             .order_by(IncidentAction.id))
        for row in session.scalars(q):
            out[row.incident_id].append(_as_dict(row))
    return out


def insert_action(session, *, incident_id: int, text: str, owner: str, due_on: dt.date, created_by: str,
                  at: dt.datetime) -> dict:
    """A new action item (version 1, not done); as stored."""
    done = session.execute(insert(IncidentAction).values(
        incident_id=incident_id, text=text, owner=owner, due_on=due_on, created_by=created_by, created_at=at,
        done_by=None, done_at=None, version=1))
    return get(session, done.inserted_primary_key[0])


def change_if_version(session, action_id: int, version: int, values: dict) -> bool:
    """UPDATE … WHERE version = the version the caller saw (of two concurrent writers exactly one
    wins). True if it changed."""
    done = session.execute(update(IncidentAction)
                           .where(IncidentAction.id == action_id, IncidentAction.version == version)
                           .values(**values, version=version + 1)
                           .execution_options(synchronize_session=False))
    return done.rowcount == 1
