"""Each run's posture per criterion (criterion_counts: 61 rows a run), what the control room's tiles
and trend read instead of the findings."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from auditbook.store.db import utc
from auditbook.store.models import CriterionCount, Run


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


def trend_rows(session: Session, since: Optional[dt.datetime] = None) -> list[tuple[int, dt.datetime, str, str, int]]:
    """(run id, run start, criterion, status, failed findings) of every run (started since `since`),
    read as plain tuples: a year of daily runs is 22,000 rows."""
    q = select(Run.id, Run.started_at)
    if since is not None:
        q = q.where(Run.started_at >= since)
    times = {rid: utc(at) for rid, at in session.execute(q)}
    out = []
    for run_id, criterion, status, failed in session.execute(
            select(CriterionCount.run_id, CriterionCount.criterion, CriterionCount.status, CriterionCount.failed)):
        if run_id in times:
            out.append((run_id, times[run_id], criterion, status, failed))
    return out
