"""Resources as the store keeps them (intervals of unchanged records): what a run observed, each
resource's evidence at a run, and the evidence explorer's search."""
from __future__ import annotations

import json
import zlib
from typing import Optional

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from auditbook.store.models import RecordBlob, ResourceState

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
    shas = sorted({r.record_sha256 for r in rows})
    bodies = {}
    for i in range(0, len(shas), BATCH):
        for sha, body in session.execute(select(RecordBlob.sha256, RecordBlob.body)
                                         .where(RecordBlob.sha256.in_(shas[i:i + BATCH]))):
            bodies[sha] = json.loads(zlib.decompress(body))
    return [{"account": r.account, "region": r.region, "resource_id": r.resource_id, "arn": r.arn,
             "data": bodies.get(r.record_sha256, {})} for r in rows]


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
