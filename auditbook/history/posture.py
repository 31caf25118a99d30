"""What the control room reads: the latest posture per category and criterion, its trend over runs
(from the per-run criterion counts, 61 rows a run, never from the findings), failing resources of a
criterion, and the evidence explorer's searches."""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Optional

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from auditbook.catalog.model import Catalog
from auditbook.evaluate.evaluator import summarise_stored
from auditbook.store.db import utc as _utc
from auditbook.store.models import CriterionCount, ResourceState, Run, RunScope
from auditbook.store.query import findings_for_run

STATUSES = ("PASS", "FAIL", "ERROR", "EXCEPTED", "NEEDS_EVIDENCE")


def latest_run(engine) -> Optional[dict]:
    with Session(engine) as session:
        run = session.scalars(select(Run).order_by(Run.id.desc()).limit(1)).first()
        if run is None:
            return None
        return {"id": run.id, "started_at": _utc(run.started_at), "finished_at": _utc(run.finished_at),
                "counts": dict(run.counts or {}), "api_calls": run.api_calls,
                "simulated": bool((run.parameters or {}).get("simulated"))}


def backfill_counts(engine, catalog: Catalog) -> int:
    """Criterion counts for runs stored before they were kept (older stores): computed once."""
    with Session(engine) as session:
        have = set(session.scalars(select(CriterionCount.run_id).distinct()))
        missing = [(r.id, r.parameters) for r in session.execute(select(Run.id, Run.parameters)) if r.id not in have]
    for run_id, params in missing:
        summary = summarise_stored(catalog, findings_for_run(engine, run_id),
                                   set((params or {}).get("needs_evidence") or []))
        with Session(engine) as session, session.begin():
            session.add_all([CriterionCount(run_id=run_id, criterion=s["control"], passed=s["PASS"], failed=s["FAIL"],
                                            errors=s["ERROR"], excepted=s.get("EXCEPTED", 0), status=s["status"])
                             for s in summary])
    return len(missing)


def criteria(engine, catalog: Catalog, run_id: int) -> list[dict]:
    """Every criterion of the catalog with its counts and status in the run."""
    with Session(engine) as session:
        counts = {c.criterion: c for c in session.scalars(select(CriterionCount).where(CriterionCount.run_id == run_id))}
    out = []
    for control in catalog.controls:
        c = counts.get(control.id)
        out.append({"criterion": control.id, "category": control.category, "group": control.group,
                    "title": control.title, "checks": len(catalog.checks_for(control.id)),
                    "pass": c.passed if c else 0, "fail": c.failed if c else 0, "error": c.errors if c else 0,
                    "excepted": c.excepted if c else 0, "status": c.status if c else "NO_DATA"})
    return out


def tiles(rows: list[dict]) -> list[dict]:
    """Per category: criteria by status and a colour (red: a failure; amber: an error or evidence
    needed; green: nothing outstanding)."""
    by = defaultdict(Counter)
    for r in rows:
        by[r["category"]][r["status"]] += 1
    out = []
    for category, counts in by.items():
        colour = "red" if counts["FAIL"] else "amber" if (counts["ERROR"] or counts["NEEDS_EVIDENCE"] or counts["NO_DATA"]) else "green"
        out.append({"category": category, "criteria": sum(counts.values()), "colour": colour,
                    **{s: counts[s] for s in STATUSES}})
    order = {"security": 0, "availability": 1, "confidentiality": 2, "processing-integrity": 3, "privacy": 4}
    return sorted(out, key=lambda t: (order.get(t["category"], 9), t["category"]))


def trend(engine, catalog: Catalog, since: Optional[dt.datetime] = None) -> list[dict]:
    """Per run: criteria per category and status, and failing findings (reads the per-run counts as
    plain tuples: a year of daily runs is 22,000 rows)."""
    category = {c.id: c.category for c in catalog.controls}
    with Session(engine) as session:
        q = select(Run.id, Run.started_at)
        if since is not None:
            q = q.where(Run.started_at >= since)
        times = {rid: _utc(at) for rid, at in session.execute(q)}
        out: dict[tuple, dict] = {}
        rows = session.execute(select(CriterionCount.run_id, CriterionCount.criterion, CriterionCount.status,
                                      CriterionCount.failed))
        for run_id, criterion, status, failed in rows:
            at, cat = times.get(run_id), category.get(criterion)
            if at is None or cat is None:
                continue
            row = out.get((run_id, cat))
            if row is None:
                row = out[(run_id, cat)] = {"run": run_id, "at": at, "category": cat, "failing_findings": 0,
                                            **{s: 0 for s in STATUSES}}
            row[status] = row.get(status, 0) + 1
            row["failing_findings"] += failed
    return sorted(out.values(), key=lambda r: (r["run"], r["category"]))


def failing(engine, catalog: Catalog, run_id: int, criterion: str) -> list[dict]:
    """The criterion's findings in the run that are not passing, worst first."""
    checks = [c.id for c in catalog.checks_for(criterion)]
    if not checks:
        return []
    order = {"FAIL": 0, "ERROR": 1, "EXCEPTED": 2}
    rows = [f for f in findings_for_run(engine, run_id, checks) if f["status"] != "PASS"]
    return sorted(rows, key=lambda f: (order.get(f["status"], 3), f["check"], f["account"], f["resource"]))


def scope_values(engine, run_id: int) -> dict[str, list[str]]:
    """Accounts, regions and resource types a run attempted (the explorer's filters)."""
    with Session(engine) as session:
        rows = session.execute(select(RunScope.account, RunScope.region, RunScope.resource_type)
                               .where(RunScope.run_id == run_id)).all()
    return {"account": sorted({r.account for r in rows}), "region": sorted({r.region for r in rows}),
            "resource_type": sorted({r.resource_type for r in rows})}


def resources(engine, run_id: int, *, account: Optional[str] = None, region: Optional[str] = None,
              resource_type: Optional[str] = None, text: Optional[str] = None, limit: int = 500) -> tuple[list[dict], int]:
    """Resources observed in the run, filtered; (rows, total matching)."""
    with Session(engine) as session:
        q = select(ResourceState).where(ResourceState.first_run <= run_id, ResourceState.last_run >= run_id)
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
