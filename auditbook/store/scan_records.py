"""What a scan run stored, read back for monitoring: the resource records and scopes of a run as a
collect.runner Collection, gaps included (so the one evaluator can apply posture rules to them), and
the findings a run opened and closed (what CheckRegressed compares)."""
from __future__ import annotations

import zlib
from typing import Iterable

import jmespath
from sqlalchemy import select

from auditbook.collect.records import Collection, Gap, Record, Scope, tag_dict
from auditbook.plugins import resource_types
from auditbook.store.db import json_loads
from auditbook.store.models import (
    FindingState,
    GapRow,
    RecordBlob,
    ResourceState,
    RunScope,
)

BATCH = 500  # ids per IN (…): record blobs are read this many at a time


def _bodies(session, shas: Iterable[str]) -> dict[str, dict]:
    """sha256 -> the parsed record blob, BATCH at a time."""
    shas = sorted(set(shas))
    out = {}
    for i in range(0, len(shas), BATCH):
        for sha, body in session.execute(select(RecordBlob.sha256, RecordBlob.body)
                                         .where(RecordBlob.sha256.in_(shas[i:i + BATCH]))):
            out[sha] = json_loads(zlib.decompress(body))
    return out


def _observed(run_id: int):
    return (ResourceState.first_run <= run_id) & (ResourceState.last_run >= run_id)


def _gap(row) -> Gap:
    return Gap(row.account, row.region, row.resource_type, row.call, row.error, row.message, row.resource)


def _scopes(session, run_id: int, types: list[str]) -> tuple[list[Scope], dict]:
    """The run's scopes of `types` (a failed one with its gap) and the record-level gaps by
    (type, account, scope region, resource id)."""
    gaps = session.execute(select(GapRow).where(GapRow.run_id == run_id, GapRow.resource_type.in_(types))
                           .order_by(GapRow.id)).scalars().all()
    scope_gaps = {(g.account, g.region, g.resource_type): _gap(g) for g in reversed(gaps) if g.resource is None}
    record_gaps: dict[tuple, dict] = {}
    for g in gaps:
        if g.resource is not None:
            record_gaps.setdefault((g.resource_type, g.account, g.region, g.resource), {})[f"{g.call} {g.id}"] = _gap(g)
    scopes = []
    for s in session.execute(select(RunScope).where(RunScope.run_id == run_id, RunScope.resource_type.in_(types))
                             .order_by(RunScope.id)).scalars():
        where = (s.account, s.region, s.resource_type)
        gap = None if s.ok else scope_gaps.get(where) or Gap(*where, "list", "Unknown", "the list call failed")
        scopes.append(Scope(s.account, s.region, s.resource_type, gap))
    return scopes, record_gaps


def collection_at(session, run_id: int, types: Iterable[str]) -> Collection:
    """The records and scopes of `types` as run `run_id` observed them, with the run's evidence gaps:
    a failed scope carries its gap, a record its detail gaps. Tags are rebuilt from each type's
    declaration (plugins.resource_types); evidence is the record's hashes (auditbook.store.evidence
    reads the bodies)."""
    types = sorted(set(types))
    if not types:
        return Collection()
    scopes, record_gaps = _scopes(session, run_id, types)
    rows = session.execute(select(ResourceState).where(ResourceState.resource_type.in_(types), _observed(run_id))
                           .order_by(ResourceState.id)).scalars().all()
    bodies = _bodies(session, (r.record_sha256 for r in rows))
    declared = resource_types()
    records = []
    for r in rows:
        data = bodies.get(r.record_sha256, {})
        spec = declared.get(r.resource_type)
        tags = tag_dict(jmespath.search(spec.tags, data)) if spec is not None and spec.tags else {}
        gaps = record_gaps.get((r.resource_type, r.account, r.scope_region, r.resource_id), {})
        records.append(Record(r.resource_type, r.account, r.region, r.resource_id, r.arn, data, list(r.evidence or []),
                              gaps, r.scope_region, r.name, tags))
    gaps = [s.gap for s in scopes if s.gap] + [g for rec in records for g in rec.gaps.values()]
    return Collection(records=records, scopes=scopes, gaps=gaps)


def tagged_at(session, run_id: int, types: Iterable[str]) -> list[tuple]:
    """(type, account, region, arn, name, tags) of each record of `types` run `run_id` observed, in the
    order collection_at gives them, tags rebuilt as it does — and nothing else (no scope, gap, data or
    evidence): what declared controls need, at a fraction of the reading."""
    types = sorted(set(types))
    rows = session.execute(select(ResourceState.resource_type, ResourceState.account, ResourceState.region,
                                  ResourceState.arn, ResourceState.name, ResourceState.record_sha256)
                           .where(ResourceState.resource_type.in_(types), _observed(run_id))
                           .order_by(ResourceState.id)).all() if types else []
    bodies = _bodies(session, (r.record_sha256 for r in rows))
    specs = resource_types()
    out = []
    for r in rows:
        spec = specs.get(r.resource_type)
        tags = (tag_dict(jmespath.search(spec.tags, bodies.get(r.record_sha256, {})))
                if spec is not None and spec.tags else {})
        out.append((r.resource_type, r.account, r.region, r.arn, r.name, tags))
    return out


_CHANGE_COLUMNS = (FindingState.check_id, FindingState.account, FindingState.region, FindingState.scope_region,
                   FindingState.resource_type, FindingState.resource_id, FindingState.resource,
                   FindingState.resource_name, FindingState.status, FindingState.severity, FindingState.controls,
                   FindingState.evidence)


def finding_changes(session, run_id: int, opened_status: str) -> tuple[list[dict], list[dict]]:
    """(the finding states of `opened_status` that run `run_id` opened, every state it closed), each a
    dict of the finding. A first run opens every finding: only those of one status are read."""
    def rows(*where):
        return [dict(r._mapping) for r in session.execute(select(*_CHANGE_COLUMNS).where(*where))]
    return (rows(FindingState.first_run == run_id, FindingState.status == opened_status),
            rows(FindingState.closed_run == run_id))
