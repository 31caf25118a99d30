"""Reads for Type II history over a period (auditbook.history): the runs of a time window with the
resource types each attempted, the finding and resource intervals that touch a range of runs, the
evidence gaps and run parameters of those runs. Intervals come back as plain named tuples, read in
batches of ids (never a query per run or per resource)."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Iterable, NamedTuple, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook.store.db import utc
from auditbook.store.models import FindingState, GapRow, ResourceState, Run, RunScope

BATCH = 500


class WindowRun(NamedTuple):
    id: int
    started_at: dt.datetime  # aware, UTC
    simulated: bool
    types: frozenset  # resource types the run attempted


class FindingInterval(NamedTuple):
    """A finding's unchanged state from first_run to last_run (closed_run: the run that ended it)."""
    id: int
    check_id: str
    account: str
    region: str
    scope_region: str
    resource_type: str
    resource_id: str
    resource: str
    resource_name: str
    status: str
    severity: str
    message: str
    first_run: int
    last_run: int
    closed_run: Optional[int]


class ResourceInterval(NamedTuple):
    resource_type: str
    account: str
    region: str
    resource_id: str
    arn: str
    name: str
    first_run: int
    last_run: int


def _batches(ids: list) -> Iterable[list]:
    for i in range(0, len(ids), BATCH):
        yield ids[i:i + BATCH]


def runs_between(session: Session, lo: dt.datetime, hi: dt.datetime) -> list[WindowRun]:
    """The runs started in [lo, hi), by id (runs are stored as they finish: ids follow time)."""
    rows = session.execute(select(Run.id, Run.started_at, Run.parameters)
                           .where(Run.started_at >= lo, Run.started_at < hi)).all()
    types = defaultdict(set)
    for part in _batches([r.id for r in rows]):
        for run_id, rtype in session.execute(select(RunScope.run_id, RunScope.resource_type).distinct()
                                             .where(RunScope.run_id.in_(part))):
            types[run_id].add(rtype)
    return sorted((WindowRun(r.id, utc(r.started_at), bool((r.parameters or {}).get("simulated")),
                             frozenset(types[r.id])) for r in rows), key=lambda r: r.id)


def start_times(session: Session, ids: Iterable[int]) -> dict[int, dt.datetime]:
    """When each of the runs `ids` started (aware, UTC)."""
    out = {}
    for part in _batches(sorted(set(ids))):
        for rid, at in session.execute(select(Run.id, Run.started_at).where(Run.id.in_(part))):
            out[rid] = utc(at)
    return out


def finding_intervals(session: Session, check_ids: list[str], lo: int, hi: int) -> list[FindingInterval]:
    """Finding-state intervals of these checks that overlap the runs lo..hi (without their evidence:
    history reads it by interval, store.evidence.interval_evidence; decoding it here cost a packet
    build of a 1,000-account quarter ~1 s per read)."""
    if not check_ids:
        return []
    q = select(FindingState.id, FindingState.check_id, FindingState.account, FindingState.region,
               FindingState.scope_region, FindingState.resource_type, FindingState.resource_id,
               FindingState.resource, FindingState.resource_name, FindingState.status, FindingState.severity,
               FindingState.message, FindingState.first_run, FindingState.last_run,
               FindingState.closed_run).where(FindingState.check_id.in_(check_ids), FindingState.last_run >= lo,
                                              FindingState.first_run <= hi)
    return [FindingInterval(*row) for row in session.execute(q)]


def resource_intervals(session: Session, types: list[str], lo: int, hi: int) -> list[ResourceInterval]:
    """Resource-state intervals of these resource types that overlap the runs lo..hi."""
    if not types:
        return []
    q = select(ResourceState.resource_type, ResourceState.account, ResourceState.region,
               ResourceState.resource_id, ResourceState.arn, ResourceState.name, ResourceState.first_run,
               ResourceState.last_run).where(ResourceState.resource_type.in_(types),
                                             ResourceState.last_run >= lo, ResourceState.first_run <= hi)
    return [ResourceInterval(*row) for row in session.execute(q)]


def gaps_between(session: Session, lo: int, hi: int, types: Optional[list[str]] = None) -> list[dict]:
    """The evidence gaps recorded by the runs lo..hi (only of `types`, if given), with their run id."""
    q = select(GapRow).where(GapRow.run_id >= lo, GapRow.run_id <= hi)
    if types is not None:
        q = q.where(GapRow.resource_type.in_(types))
    return [{"run_id": g.run_id, "account": g.account, "region": g.region, "resource_type": g.resource_type,
             "resource": g.resource or "", "call": g.call, "error": g.error, "message": g.message}
            for g in session.scalars(q)]


def parameters(session: Session, ids: list[int]) -> dict[int, dict]:
    """Each run's parameters (what it was asked to do, and the exceptions in force that day)."""
    out = {}
    for part in _batches(sorted(set(ids))):
        for rid, params in session.execute(select(Run.id, Run.parameters).where(Run.id.in_(part))):
            out[rid] = dict(params or {})
    return out

