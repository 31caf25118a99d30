"""Resources as the store keeps them (intervals of unchanged records): what a run observed, each
resource's evidence at a run, and the evidence explorer's search."""
from __future__ import annotations

import json
import zlib
from typing import Optional

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from auditbook.store.models import RecordBlob, ResourceState, RunScope

BATCH = 500


def _observed_at(run_id: int):
    return (ResourceState.first_run <= run_id, ResourceState.last_run >= run_id)


def evidence_at(session: Session, run_id: int, types: Optional[set] = None) -> dict:
    """Each resource's evidence at the run, by (type, account, scope region, resource id) (only
    resources of `types`, if given)."""
    q = select(ResourceState.resource_type, ResourceState.account, ResourceState.scope_region,
               ResourceState.resource_id, ResourceState.evidence).where(
        *_observed_at(run_id), or_(ResourceState.closed_run.is_(None), ResourceState.closed_run > run_id))
    if types is not None:
        if not types:
            return {}
        q = q.where(ResourceState.resource_type.in_(sorted(types)))
    return {(r.resource_type, r.account, r.scope_region, r.resource_id): r.evidence for r in session.execute(q)}


def records_at(session: Session, run_id: int, resource_type: str) -> list[dict]:
    """The resources of a type observed in a run, each with its normalised record (the record blobs
    are read 500 at a time, not one query per resource)."""
    rows = session.execute(select(ResourceState.account, ResourceState.region, ResourceState.resource_id,
                                  ResourceState.arn, ResourceState.record_sha256)
                           .where(ResourceState.resource_type == resource_type, *_observed_at(run_id))).all()
    bodies = record_bodies(session, {r.record_sha256 for r in rows})
    return [{"account": r.account, "region": r.region, "resource_id": r.resource_id, "arn": r.arn,
             "data": bodies.get(r.record_sha256, {})} for r in rows]


def record_bodies(session: Session, shas) -> dict:
    """sha256 -> the normalised record (read 500 at a time)."""
    shas, bodies = sorted(set(shas)), {}
    for i in range(0, len(shas), BATCH):
        for sha, body in session.execute(select(RecordBlob.sha256, RecordBlob.body)
                                         .where(RecordBlob.sha256.in_(shas[i:i + BATCH]))):
            bodies[sha] = json.loads(zlib.decompress(body))
    return bodies


def types_of(session: Session, arn: str) -> list[str]:
    """The resource types stored under an ARN (several for an account's singletons, "<account>/<region>")."""
    return list(session.scalars(select(ResourceState.resource_type).where(ResourceState.arn == arn)
                                .distinct().order_by(ResourceState.resource_type)))


def states_of(session: Session, arn: str, resource_type: str, limit: int = 1000) -> tuple[list[dict], int]:
    """The stored states of one resource (intervals of an unchanged record), oldest first: (the newest
    `limit`, how many there are)."""
    where = (ResourceState.arn == arn, ResourceState.resource_type == resource_type)
    total = session.scalar(select(func.count()).select_from(ResourceState).where(*where))
    rows = session.execute(select(ResourceState.resource_type, ResourceState.account, ResourceState.region,
                                  ResourceState.scope_region, ResourceState.resource_id, ResourceState.name,
                                  ResourceState.record_sha256, ResourceState.evidence, ResourceState.first_run,
                                  ResourceState.last_run, ResourceState.closed_run)
                           .where(*where).order_by(ResourceState.first_run.desc(), ResourceState.id.desc())
                           .limit(limit)).all()
    return [dict(r._mapping, evidence=list(r.evidence or [])) for r in reversed(rows)], total


def scope_read_before(session: Session, account: str, scope_region: str, resource_type: str,
                      run_id: int) -> Optional[int]:
    """The last run before `run_id` that read the scope (account, region, type) in full, or None."""
    return session.scalar(select(RunScope.run_id).where(
        RunScope.account == account, RunScope.region == scope_region, RunScope.resource_type == resource_type,
        RunScope.ok.is_(True), RunScope.run_id < run_id).order_by(RunScope.run_id.desc()).limit(1))


def search(session: Session, run_id: int, *, account: Optional[str] = None, region: Optional[str] = None,
           resource_type: Optional[str] = None, text: Optional[str] = None,
           limit: int = 500) -> tuple[list[dict], int]:
    """Resources observed in the run, filtered (text: in the name, ARN or id); (first `limit` rows,
    total matching)."""
    q = select(ResourceState).where(*_observed_at(run_id))
    if account:
        q = q.where(ResourceState.account == account)
    if region:
        q = q.where(ResourceState.region == region)
    if resource_type:
        q = q.where(ResourceState.resource_type == resource_type)
    if text:
        like = f"%{text.strip()}%"
        q = q.where(or_(ResourceState.name.ilike(like), ResourceState.arn.ilike(like),
                        ResourceState.resource_id.ilike(like)))
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    rows = session.scalars(q.order_by(ResourceState.resource_type, ResourceState.account,
                                      ResourceState.region, ResourceState.name).limit(limit)).all()
    return ([{"resource_type": r.resource_type, "account": r.account, "region": r.region, "name": r.name,
              "resource": r.arn or r.resource_id, "record_sha256": r.record_sha256,
              "evidence": list(r.evidence or [])} for r in rows], total)
