"""Reading the store: runs, findings of a run, evidence. Every front end reads through here."""
from __future__ import annotations

import json
import re
import zlib
from typing import Iterable, Optional

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditbook.errors import UserError, shown
from auditbook.evaluate.evaluator import ACCOUNT_SCOPE, SCOPE_WIDE
from auditbook.store.models import Evidence, FindingState, GapRow, RecordBlob, ResourceState, Run, RunScope

MAX_ID = 2**63 - 1  # ids are 64-bit signed integers in every store


def resolve_run(engine: Engine, run: str = "latest") -> Run:
    with Session(engine) as session:
        if run in (None, "", "latest"):
            found = session.scalars(select(Run).order_by(Run.id.desc()).limit(1)).first()
            if found is None:
                raise UserError("no runs in the store yet: run `auditbook scan` first")
            return found
        if not re.fullmatch(r"[0-9]{1,19}", str(run)) or int(run) > MAX_ID:
            raise UserError(f"--run: {shown(run)} is not a run id (a number up to {MAX_ID}) or 'latest'")
        found = session.get(Run, int(run))
        if found is None:
            raise UserError(f"--run: no run {run} in the store")
        return found


def findings_for_run(engine: Engine, run_id: int, checks: Optional[Iterable[str]] = None) -> list[dict]:
    """The findings observed in one run, rebuilt from the state intervals (only `checks`, if given)."""
    with Session(engine) as session:
        scopes = session.execute(select(RunScope.account, RunScope.region, RunScope.resource_type, RunScope.ok)
                                 .where(RunScope.run_id == run_id)).all()
        ok = {(s.account, s.region, s.resource_type) for s in scopes if s.ok}
        gap = {(s.account, s.region, s.resource_type) for s in scopes if not s.ok}
        account_types = {(s.account, s.resource_type) for s in scopes}
        q = select(FindingState).where(
            FindingState.first_run <= run_id, FindingState.last_run >= run_id,
            or_(FindingState.closed_run.is_(None), FindingState.closed_run > run_id))
        if checks is not None:
            q = q.where(FindingState.check_id.in_(sorted(set(checks))))
        rows = session.scalars(q).all()
        evidence_at = _resource_evidence_at(session, run_id, {r.resource_type for r in rows} if checks is not None else None)
        out = []
        for r in rows:
            scope = (r.account, r.scope_region, r.resource_type)
            if r.scope_region == ACCOUNT_SCOPE:
                observed = (r.account, r.resource_type) in account_types
            elif r.resource_id == SCOPE_WIDE:
                observed = scope in gap
            else:
                observed = scope in ok
            if observed:
                out.append({"check": r.check_id, "controls": r.controls, "status": r.status,
                            "severity": r.severity, "account": r.account, "region": r.region,
                            "resource_type": r.resource_type, "resource": r.resource,
                            "resource_name": r.resource_name, "message": r.message,
                            "evidence": evidence_at.get((r.resource_type, r.account, r.scope_region,
                                                         r.resource_id), r.evidence),
                            "first_seen_run": r.first_run})
        out.sort(key=lambda f: (f["check"], f["account"], f["region"], f["resource"]))
        return out


def _resource_evidence_at(session: Session, run_id: int, types: Optional[set] = None) -> dict:
    """Each resource's evidence at the run (only resources of `types`, if given)."""
    q = select(ResourceState.resource_type, ResourceState.account, ResourceState.scope_region,
               ResourceState.resource_id, ResourceState.evidence).where(
        ResourceState.first_run <= run_id, ResourceState.last_run >= run_id,
        or_(ResourceState.closed_run.is_(None), ResourceState.closed_run > run_id))
    if types is not None:
        if not types:
            return {}
        q = q.where(ResourceState.resource_type.in_(sorted(types)))
    rows = session.execute(q)
    return {(r.resource_type, r.account, r.scope_region, r.resource_id): r.evidence for r in rows}


def records_at(session: Session, run_id: int, resource_type: str) -> list[dict]:
    """The resources of a type observed in a run, each with its normalised record (the record blobs
    are read 500 at a time, not one query per resource)."""
    rows = session.execute(select(ResourceState.account, ResourceState.region, ResourceState.resource_id,
                                  ResourceState.arn, ResourceState.record_sha256)
                           .where(ResourceState.resource_type == resource_type,
                                  ResourceState.first_run <= run_id, ResourceState.last_run >= run_id)).all()
    shas = sorted({r.record_sha256 for r in rows})
    bodies = {}
    for i in range(0, len(shas), 500):
        for sha, body in session.execute(select(RecordBlob.sha256, RecordBlob.body)
                                         .where(RecordBlob.sha256.in_(shas[i:i + 500]))):
            bodies[sha] = json.loads(zlib.decompress(body))
    return [{"account": r.account, "region": r.region, "resource_id": r.resource_id, "arn": r.arn,
             "data": bodies.get(r.record_sha256, {})} for r in rows]


def gaps_for_run(engine: Engine, run_id: int) -> list[dict]:
    with Session(engine) as session:
        rows = session.scalars(select(GapRow).where(GapRow.run_id == run_id).order_by(GapRow.id)).all()
        return [{"account": g.account, "region": g.region, "resource_type": g.resource_type,
                 "resource": g.resource, "call": g.call, "error": g.error, "message": g.message} for g in rows]


def evidence_body(engine: Engine, sha256: str) -> Optional[dict]:
    with Session(engine) as session:
        row = session.get(Evidence, sha256)
        return None if row is None else json.loads(zlib.decompress(row.body))


def table_counts(engine: Engine) -> dict[str, int]:
    from auditbook.store.models import Base
    with Session(engine) as session:
        return {name: session.scalar(select(func.count()).select_from(table))
                for name, table in Base.metadata.tables.items()}
