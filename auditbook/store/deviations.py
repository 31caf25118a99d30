"""Management responses to deviations in the store (auditbook.history.deviations decides what a
deviation is and checks every field): read them by deviation id, add the first one, replace it only
if the caller saw the current version."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Optional

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from auditbook.store.db import utc
from auditbook.store.models_deviations import DeviationResponse

FIELDS = ("existed_at_start", "existed_reason", "root_cause", "ticket", "compensating", "remediation",
          "remediated_on", "response")


def _plain(row: DeviationResponse) -> dict:
    return {"deviation_id": row.deviation_id, "kind": row.kind, "subject": row.subject,
            **{f: getattr(row, f) for f in FIELDS}, "responded_by": row.responded_by,
            "responded_role": row.responded_role, "responded_at": utc(row.responded_at), "version": row.version}


def responses(session, deviation_ids: Iterable[str]) -> dict[str, dict]:
    """{deviation id: its response} for those of `deviation_ids` that have one."""
    ids = sorted(set(deviation_ids))
    out: dict[str, dict] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(select(DeviationResponse)
                               .where(DeviationResponse.deviation_id.in_(ids[start:start + 500]))).scalars()
        out.update((r.deviation_id, _plain(r)) for r in rows)
    return out


def response(session, deviation_id: str) -> Optional[dict]:
    return responses(session, [deviation_id]).get(deviation_id)


def add(session, deviation_id: str, kind: str, subject: dict, fields: dict, by: str, role: str,
        at: dt.datetime) -> bool:
    """The first response to a deviation (version 1): False when one was there already (someone
    else's first response came first; nothing written)."""
    try:
        with session.begin_nested():  # a concurrent first response fails on the key, not the transaction
            session.execute(insert(DeviationResponse).values(
                deviation_id=deviation_id, kind=kind, subject=subject, **fields, responded_by=by,
                responded_role=role, responded_at=at, version=1))
    except IntegrityError:
        return False
    return True


def replace_if_version(session, deviation_id: str, version: int, fields: dict, by: str, role: str,
                       at: dt.datetime) -> bool:
    """UPDATE … WHERE version = the version the responder saw, moving it on by one: False when
    someone else changed it first (nothing written)."""
    done = session.execute(update(DeviationResponse)
                           .where(DeviationResponse.deviation_id == deviation_id,
                                  DeviationResponse.version == version)
                           .values(**fields, responded_by=by, responded_role=role, responded_at=at,
                                   version=version + 1)
                           .execution_options(synchronize_session=False))
    return done.rowcount == 1
