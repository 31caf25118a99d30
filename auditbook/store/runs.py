"""Runs: writing one (evidence, records and findings as changes of state, in one transaction) and
reading them back as plain RunRecord values."""
from __future__ import annotations

import datetime as dt
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from auditbook.collect.evidence import canonical, digest
from auditbook.collect.records import Collection
from auditbook.evaluate.evaluator import ACCOUNT_SCOPE, SCOPE_WIDE, Finding
from auditbook.store.db import utc
from auditbook.store.evidence_objects import EvidenceBucket
from auditbook.store.models import (
    Evidence,
    FindingState,
    GapRow,
    RecordBlob,
    ResourceState,
    Run,
    RunScope,
)
from auditbook.store.posture import add_counts

CHUNK = 500


@dataclass(frozen=True)
class RunRecord:
    """A stored run (timestamps aware, in UTC)."""
    id: int
    started_at: dt.datetime
    finished_at: dt.datetime
    tool_version: str
    catalog_sha256: str
    parameters: dict
    identities: list
    api_calls: int
    counts: dict

    @property
    def simulated(self) -> bool:
        return bool(self.parameters.get("simulated"))


def _record(run: Run) -> RunRecord:
    return RunRecord(run.id, utc(run.started_at), utc(run.finished_at), run.tool_version, run.catalog_sha256,
                     dict(run.parameters or {}), list(run.identities or []), run.api_calls, dict(run.counts or {}))


def latest(session: Session) -> Optional[RunRecord]:
    run = session.scalars(select(Run).order_by(Run.id.desc()).limit(1)).first()
    return None if run is None else _record(run)


def get(session: Session, run_id: int) -> Optional[RunRecord]:
    run = session.get(Run, run_id)
    return None if run is None else _record(run)


def all_runs(session: Session, ids: Optional[list[int]] = None) -> list[RunRecord]:
    """Every run (or the runs `ids`), oldest first."""
    if ids is not None and not ids:
        return []
    q = select(Run).order_by(Run.id)
    if ids is not None:
        q = q.where(Run.id.in_(ids))
    return [_record(r) for r in session.scalars(q)]


def scope_values(session: Session, run_id: int) -> list[tuple[str, str, str]]:
    """(account, region, resource type) of every scope the run attempted."""
    return [tuple(r) for r in session.execute(select(RunScope.account, RunScope.region, RunScope.resource_type)
                                              .where(RunScope.run_id == run_id))]


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _insert(session: Session, model, rows: Iterable[dict]) -> None:
    """INSERT rows a chunk at a time, so a large run never holds every row's parameters at once."""
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            session.execute(insert(model), batch)
            batch = []
    if batch:
        session.execute(insert(model), batch)


def _new_hashes(session: Session, model, hashes: list[str]) -> set[str]:
    existing: set[str] = set()
    for part in _chunks(sorted(hashes)):
        existing.update(session.scalars(select(model.sha256).where(model.sha256.in_(part))))
    return set(hashes) - existing


def _close_and_extend(session: Session, model, run_id: int, open_rows: dict, seen: set, covered: set,
                      scope_of) -> None:
    """Rows seen unchanged get last_run = run; rows not seen in a scope read in full are closed."""
    extend, close = [], []
    for key, (row_id, _sig) in open_rows.items():
        if key in seen:
            extend.append(row_id)
        elif scope_of(key) in covered:
            close.append(row_id)
    for part in _chunks(extend):
        session.execute(update(model).where(model.id.in_(part)).values(last_run=run_id))
    for part in _chunks(close):
        session.execute(update(model).where(model.id.in_(part)).values(closed_run=run_id))


def save_run(session: Session, *, catalog_sha256: str, tool_version: str, parameters: dict,
             identities: list, collection: Collection, findings: list[Finding],
             started_at: dt.datetime, finished_at: dt.datetime, summary: Optional[list[dict]] = None,
             evidence_bucket: Optional[EvidenceBucket] = None) -> int:
    """Store one run in the caller's unit of work (`writing`: nothing is written unless everything
    is); returns its id. `summary`: the run's posture per criterion (evaluate.summarise), kept for the
    control room's trend. `evidence_bucket`: new evidence is uploaded there (before the caller
    commits; a failure is an EvidenceObjectError and nothing is written) and the store keeps only
    where each object is."""
    run = Run(started_at=started_at, finished_at=finished_at, tool_version=tool_version,
              catalog_sha256=catalog_sha256, parameters=parameters, identities=identities,
              api_calls=collection.calls, counts=dict(Counter(f.status for f in findings)))
    session.add(run)
    session.flush()
    rid = run.id
    _insert(session, RunScope, (
        {"run_id": rid, "account": s.account, "region": s.region, "resource_type": s.resource_type,
         "ok": s.gap is None} for s in collection.scopes))
    _insert(session, GapRow, (
        {"run_id": rid, "account": g.account, "region": g.region, "resource_type": g.resource_type,
         "resource": g.resource, "call": g.call, "error": g.error, "message": g.message}
        for g in collection.gaps))
    _save_evidence(session, rid, collection.evidence, evidence_bucket)

    attempted = {(s.account, s.region, s.resource_type) for s in collection.scopes}
    covered = {(s.account, s.region, s.resource_type) for s in collection.scopes if s.gap is None}
    accounts_types = {(s.account, s.resource_type) for s in collection.scopes}
    _save_resources(session, rid, collection, attempted, covered)
    _save_findings(session, rid, findings, attempted, covered, accounts_types)
    add_counts(session, rid, summary or [])
    return rid


def _save_evidence(session, rid: int, evidence: dict, bucket: Optional[EvidenceBucket]) -> None:
    """The responses not yet in the store: their compressed bodies, or where `bucket` keeps them."""
    fresh = sorted(_new_hashes(session, Evidence, list(evidence)))
    if bucket is None:
        _insert(session, Evidence, ({"sha256": h, "body": evidence[h], "size": len(zlib.decompress(evidence[h])),
                                     "first_run_id": rid} for h in fresh))
        return
    placed = bucket.put_many(fresh, lambda h: zlib.decompress(evidence[h]))
    _insert(session, Evidence, (
        {"sha256": h, "body": b"", "size": placed[h].size, "first_run_id": rid, "object_url": placed[h].url,
         "object_version": placed[h].version, "retain_until": placed[h].retain_until} for h in fresh))


def _save_resources(session, rid, collection, attempted, covered):
    blobs = {}  # sha256 -> compressed canonical record (compressed at once: large runs stay small)
    current = {}
    for rec in collection.records:
        data = canonical(rec.data)
        sha = digest(data)
        if sha not in blobs:
            blobs[sha] = zlib.compress(data, 6)
        current[(rec.type, rec.account, rec.scope_region, rec.id)] = (rec, sha)
        del data
    fresh = _new_hashes(session, RecordBlob, list(blobs))
    _insert(session, RecordBlob, ({"sha256": h, "body": blobs[h]} for h in fresh))
    blobs.clear()
    open_rows = {}
    for row in session.execute(select(ResourceState.id, ResourceState.resource_type, ResourceState.account,
                                      ResourceState.scope_region, ResourceState.resource_id,
                                      ResourceState.record_sha256).where(ResourceState.closed_run.is_(None))):
        if (row.account, row.scope_region, row.resource_type) in attempted:
            open_rows[(row.resource_type, row.account, row.scope_region, row.resource_id)] = (row.id, row.record_sha256)
    seen = {key for key, (rec, sha) in current.items() if (open_rows.get(key) or (None, None))[1] == sha}
    # changed rows are closed like vanished ones: they are in a covered scope and not "seen"
    _close_and_extend(session, ResourceState, rid, open_rows, seen, covered, lambda k: (k[1], k[2], k[0]))
    _insert(session, ResourceState, (
        {"resource_type": rec.type, "account": rec.account, "region": rec.region,
         "scope_region": rec.scope_region, "resource_id": rec.id, "arn": rec.arn, "name": rec.name,
         "record_sha256": sha, "evidence": rec.evidence, "first_run": rid, "last_run": rid}
        for key, (rec, sha) in current.items() if key not in seen))


def _finding_signature(status, severity, message):
    """A finding's state. Its evidence is not part of it: the evidence behind a finding at any run
    is the resource's record interval at that run (resource_states)."""
    return (status, severity, message)


def _save_findings(session, rid, findings, attempted, covered, accounts_types):
    open_rows = {}
    q = select(FindingState.id, FindingState.check_id, FindingState.account, FindingState.scope_region,
               FindingState.resource_type, FindingState.resource_id, FindingState.status,
               FindingState.severity, FindingState.message
               ).where(FindingState.closed_run.is_(None))
    for row in session.execute(q):
        in_run = ((row.account, row.resource_type) in accounts_types if row.scope_region == ACCOUNT_SCOPE
                  else (row.account, row.scope_region, row.resource_type) in attempted)
        if in_run:
            open_rows[(row.check_id, row.account, row.scope_region, row.resource_type, row.resource_id)] = (
                row.id, _finding_signature(row.status, row.severity, row.message))
    seen = {f.key() for f in findings
            if (open_rows.get(f.key()) or (None, None))[1] == _finding_signature(f.status, f.severity, f.message)}

    def scope_of(key):
        check, account, scope_region, rtype, resource_id = key
        if scope_region == ACCOUNT_SCOPE:
            return "always"  # account-wide findings are re-evaluated whenever the account is scanned
        if resource_id == SCOPE_WIDE:
            return "always"  # a scope-wide ERROR ends as soon as the scope is attempted again
        return (account, scope_region, rtype)

    _close_and_extend(session, FindingState, rid, open_rows, seen, covered | {"always"}, scope_of)
    _insert(session, FindingState, (
        {"check_id": f.check, "controls": f.controls, "resource_type": f.resource_type,
         "account": f.account, "region": f.region, "scope_region": f.scope_region,
         "resource_id": f.resource_id, "resource": f.resource, "resource_name": f.resource_name,
         "status": f.status, "severity": f.severity, "message": f.message, "evidence": f.evidence,
         "first_run": rid, "last_run": rid}
        for f in findings if f.key() not in seen))
