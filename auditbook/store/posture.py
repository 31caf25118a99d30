"""Each run's posture per criterion (criterion_counts: 61 rows a run), what the control room's tiles
and trend read instead of the findings; and the posture filters' counts, by the database, over the
findings of one run (account, region, severity, check, and a resource tag from record_tags)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.orm import Session

from auditbook.store.db import utc
from auditbook.store.models import CriterionCount, FindingState, ResourceState, Run
from auditbook.store.models_workflow import RecordTag
from auditbook.store.resources import evidence_at


def add_counts(session: Session, run_id: int, summary: list[dict]) -> None:
    """Store a run's summary (evaluate.summarise: one row per criterion)."""
    rows = [{"run_id": run_id, "criterion": s["control"], "passed": s["PASS"], "failed": s["FAIL"],
             "errors": s["ERROR"], "excepted": s.get("EXCEPTED", 0), "status": s["status"]} for s in summary]
    if rows:
        session.execute(insert(CriterionCount), rows)


def counts_for_run(session: Session, run_id: int) -> dict[str, dict]:
    """{criterion: {pass, fail, error, excepted, status}} of one run."""
    return {c.criterion: {"pass": c.passed, "fail": c.failed, "error": c.errors, "excepted": c.excepted,
                          "status": c.status}
            for c in session.scalars(select(CriterionCount).where(CriterionCount.run_id == run_id))}


def runs_without_counts(session: Session) -> list[tuple[int, dict]]:
    """(id, parameters) of the runs stored before criterion counts were kept."""
    have = set(session.scalars(select(CriterionCount.run_id).distinct()))
    return [(r.id, dict(r.parameters or {})) for r in session.execute(select(Run.id, Run.parameters))
            if r.id not in have]


def trend_rows(session: Session, since: Optional[dt.datetime] = None
               ) -> list[tuple[int, dt.datetime, str, int, int, int, int]]:
    """(run id, run start, criterion, passed, failed, errors, excepted) of every run (started since
    `since`), read as plain tuples: a year of daily runs is 22,000 rows. The status is not read: the
    one status rule (history.status) judges each run's counts."""
    q = select(Run.id, Run.started_at)
    if since is not None:
        q = q.where(Run.started_at >= since)
    times = {rid: utc(at) for rid, at in session.execute(q)}
    counts = select(CriterionCount.run_id, CriterionCount.criterion, CriterionCount.passed, CriterionCount.failed,
                    CriterionCount.errors, CriterionCount.excepted)
    if times:
        counts = counts.where(CriterionCount.run_id >= min(times))
    return [(run_id, times[run_id], criterion, passed, failed, errors, excepted)
            for run_id, criterion, passed, failed, errors, excepted in session.execute(counts) if run_id in times]


# -- the posture filters: findings of a run by account, region, severity, check and tag -------------

@dataclass(frozen=True)
class Filters:
    """What the posture page narrows a run's findings to (None / empty: everything)."""
    account: Optional[str] = None
    region: Optional[str] = None
    severities: tuple[str, ...] = ()
    check: Optional[str] = None
    tag: Optional[tuple[str, str]] = None  # (key, value); keys are kept in lower case

    def any(self) -> bool:
        return bool(self.account or self.region or self.severities or self.check or self.tag)


def at_run(model, run_id: int) -> tuple:
    """The rows of an interval table (finding_states, resource_states) that hold at the run."""
    return (model.first_run <= run_id, model.last_run >= run_id,
            or_(model.closed_run.is_(None), model.closed_run > run_id))


def _tagged(run_id: int, tag: tuple[str, str]):
    """The resources observed in the run carrying the tag (as a subquery of their keys)."""
    return (select(ResourceState.resource_type, ResourceState.account, ResourceState.scope_region,
                   ResourceState.resource_id)
            .join(RecordTag, RecordTag.record_sha256 == ResourceState.record_sha256)
            .where(*at_run(ResourceState, run_id), RecordTag.key == tag[0], RecordTag.value == tag[1])
            .distinct().subquery())


def filtered(q, finding, run_id: int, flt: Filters):
    """The query `q` over `finding` (FindingState or an alias) narrowed by the filters; the tag is
    the resource's at `run_id`."""
    if flt.account:
        q = q.where(finding.account == flt.account)
    if flt.region:
        q = q.where(finding.region == flt.region)
    if flt.severities:
        q = q.where(finding.severity.in_(flt.severities))
    if flt.check:
        q = q.where(finding.check_id == flt.check)
    if flt.tag:
        t = _tagged(run_id, flt.tag)
        q = q.join(t, and_(t.c.resource_type == finding.resource_type, t.c.account == finding.account,
                           t.c.scope_region == finding.scope_region, t.c.resource_id == finding.resource_id))
    return q


def check_counts(session: Session, run_id: int, flt: Filters) -> list[tuple[str, str, int]]:
    """(check, status, findings) of the run's findings that pass the filters, counted by the database."""
    q = select(FindingState.check_id, FindingState.status, func.count()).where(*at_run(FindingState, run_id))
    q = filtered(q, FindingState, run_id, flt).group_by(FindingState.check_id, FindingState.status)
    return [tuple(r) for r in session.execute(q)]


def failures(session: Session, run_id: int) -> list[tuple[str, str, int]]:
    """(check, severity, failing findings) of the run."""
    q = (select(FindingState.check_id, FindingState.severity, func.count())
         .where(*at_run(FindingState, run_id), FindingState.status == "FAIL")
         .group_by(FindingState.check_id, FindingState.severity))
    return [tuple(r) for r in session.execute(q)]


def failing_findings(session: Session, run_id: int, checks: list[str], flt: Filters,
                     limit: int = 5000) -> list[dict]:
    """The run's findings of `checks` that are not passing and pass the filters (at most `limit`), each
    with its resource's evidence at the run (as findings.at_run gives them)."""
    q = select(FindingState).where(*at_run(FindingState, run_id), FindingState.check_id.in_(sorted(set(checks))),
                                   FindingState.status != "PASS")
    rows = session.scalars(filtered(q, FindingState, run_id, flt).limit(limit)).all()
    evidence = evidence_at(session, run_id, {r.resource_type for r in rows})
    return [{"check": r.check_id, "controls": r.controls, "status": r.status, "severity": r.severity,
             "account": r.account, "region": r.region, "resource_type": r.resource_type, "resource": r.resource,
             "resource_name": r.resource_name, "message": r.message,
             "evidence": evidence.get((r.resource_type, r.account, r.scope_region, r.resource_id), r.evidence),
             "first_seen_run": r.first_run} for r in rows]


def filter_values(session: Session, run_id: int) -> dict[str, list[str]]:
    """The accounts, regions, severities and checks of the run's findings (the filters' choices)."""
    out = {}
    for name, column in (("account", FindingState.account), ("region", FindingState.region),
                         ("severity", FindingState.severity), ("check", FindingState.check_id)):
        out[name] = sorted(v for (v,) in session.execute(
            select(column).where(*at_run(FindingState, run_id)).distinct()))
    return out


def run_before(session: Session, at: dt.datetime) -> Optional[int]:
    """The id of the last run that started before `at`."""
    return session.scalar(select(Run.id).where(Run.started_at < at).order_by(Run.started_at.desc(), Run.id.desc())
                          .limit(1))


def previous_run(session: Session, run_id: int) -> Optional[int]:
    return session.scalar(select(func.max(Run.id)).where(Run.id < run_id))
