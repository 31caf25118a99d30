"""What the control room reads: the latest posture per category and criterion, its trend over runs
(from the per-run criterion counts, 61 rows a run, never from the findings), failing resources of a
criterion, and the evidence explorer's searches. Each read is one unit of work. A criterion's status
in a run is history.status's (the packet's too): the run's counts and the manual evidence on its day."""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Optional

from auditbook.catalog.model import Catalog
from auditbook.evaluate.evaluator import summarise_stored
from auditbook.history.status import (
    needing_evidence_at_run,
    statuses_at_run,
    statuses_over_runs,
)
from auditbook.store import findings, posture, runs
from auditbook.store import resources as stored_resources
from auditbook.store.session import reading, writing

STATUSES = ("PASS", "FAIL", "ERROR", "EXCEPTED", "NEEDS_EVIDENCE")


def latest_run(engine, catalog: Optional[Catalog] = None) -> Optional[dict]:
    """The latest run; `needs_evidence`: the criteria whose required manual evidence is not current on
    its day (history.status, as its posture shows them; without a catalog, as the run recorded them)."""
    with reading(engine) as session:
        run = runs.latest(session)
        needs = None if run is None or catalog is None else needing_evidence_at_run(session, catalog, run.id)
    if run is None:
        return None
    return {"id": run.id, "started_at": run.started_at, "finished_at": run.finished_at, "counts": run.counts,
            "api_calls": run.api_calls, "simulated": run.simulated,
            "simulated_label": str(run.parameters.get("simulated") or "") or None,
            "needs_evidence": sorted(run.parameters.get("needs_evidence") or []) if needs is None else needs,
            # what the scope in force left out of the run (collect.plan.left_out): "N resources out of
            # scope by <entry>, excluded from every count"
            "out_of_scope": [e for e in run.parameters.get("out_of_scope") or [] if isinstance(e, dict)]}


def backfill_counts(engine, catalog: Catalog) -> int:
    """Criterion counts for runs stored before they were kept (older stores): computed once."""
    with reading(engine) as session:
        missing = posture.runs_without_counts(session)
    for run_id, params in missing:
        with writing(engine) as session:  # one run at a time: an interrupted back-fill resumes where it stopped
            summary = summarise_stored(catalog, findings.at_run(session, run_id),
                                       set(params.get("needs_evidence") or []))
            posture.add_counts(session, run_id, summary)
    return len(missing)


def criteria(engine, catalog: Catalog, run_id: int) -> list[dict]:
    """Every criterion of the catalog with its counts and status in the run (history.status: the
    counts the run stored and the manual evidence on the run's day)."""
    with reading(engine) as session:
        statuses = statuses_at_run(session, catalog, run_id)
    none = {"pass": 0, "fail": 0, "error": 0, "excepted": 0, "status": "NO_DATA"}
    return [{"criterion": control.id, "category": control.category, "group": control.group, "title": control.title,
             "checks": len(catalog.checks_for(control.id)), **statuses.get(control.id, none)}
            for control in catalog.controls]


def tiles(rows: list[dict], filtered: bool = False) -> list[dict]:
    """Per category: criteria by status and a colour (red: a failure; amber: an error or evidence
    needed, or no data; green: nothing outstanding). `filtered`: the rows count only the findings that
    match filters, so NO_DATA means "nothing matches" — not counted, and grey when nothing in the
    category matches."""
    by = defaultdict(Counter)
    for r in rows:
        by[r["category"]][r["status"]] += 1
    out = []
    for category, counts in by.items():
        gap = counts["ERROR"] or counts["NEEDS_EVIDENCE"] or (counts["NO_DATA"] and not filtered)
        criteria_ = sum(counts.values()) - (counts["NO_DATA"] if filtered else 0)
        colour = "red" if counts["FAIL"] else "amber" if gap else "grey" if not criteria_ else "green"
        out.append({"category": category, "criteria": criteria_, "colour": colour,
                    **{s: counts[s] for s in STATUSES}})
    order = {"security": 0, "availability": 1, "confidentiality": 2, "processing-integrity": 3, "privacy": 4}
    return sorted(out, key=lambda t: (order.get(t["category"], 9), t["category"]))


def wall_tiles(engine, catalog: Catalog, run_id: int) -> list[dict]:
    """tiles() of the run, each with its failing findings (counted once per category), how many of
    them are critical and high, and the change since yesterday: against the last run started before
    the run's day (UTC) began (`delta` None: no such run)."""
    with reading(engine) as session:
        run = runs.get(session, run_id)
        day = dt.datetime.combine(run.started_at.date(), dt.time(), tzinfo=dt.timezone.utc)
        before = posture.run_before(session, day)
        now = posture.failures(session, run_id)
        then = posture.failures(session, before) if before is not None else None
    out = tiles(criteria(engine, catalog, run_id))
    now_counts, then_counts = _failing_by_category(catalog, now), _failing_by_category(catalog, then or [])
    for tile in out:
        here = now_counts.get(tile["category"], Counter())
        tile.update(failing=sum(here.values()), critical=here["critical"], high=here["high"], since_run=before,
                    delta=None if then is None else
                    sum(here.values()) - sum(then_counts.get(tile["category"], Counter()).values()))
    return out


def _failing_by_category(catalog: Catalog, rows: list[tuple[str, str, int]]) -> dict[str, Counter]:
    """{category: Counter(severity: failing findings)}: a finding counts once in each category its
    check's criteria fall in."""
    category = {c.id: c.category for c in catalog.controls}
    categories = {c.id: {category[k] for k in c.controls if k in category} for c in catalog.checks}
    out: dict[str, Counter] = defaultdict(Counter)
    for check, severity, n in rows:
        for cat in categories.get(check, ()):
            out[cat][severity] += n
    return out


def trend(engine, catalog: Catalog, since: Optional[dt.datetime] = None) -> list[dict]:
    """Per run: criteria per category and status, and failing findings. Each run's criterion status is
    history.status's (the run's counts, the manual evidence on the run's day, the types it read) — not
    the status saved at scan time. Reads the per-run counts as plain tuples (a year of daily runs is
    22,000 rows)."""
    category = {c.id: c.category for c in catalog.controls}
    with reading(engine) as session:
        rows = [r for r in posture.trend_rows(session, since) if r[2] in category]
        statuses = statuses_over_runs(session, catalog, rows)
    out: dict[tuple, dict] = {}
    for run_id, at, criterion, _passed, failed, _errors, _excepted in rows:
        cat, status = category[criterion], statuses[(run_id, criterion)]
        row = out.get((run_id, cat))
        if row is None:
            row = out[(run_id, cat)] = {"run": run_id, "at": at, "category": cat, "failing_findings": 0,
                                        **{s: 0 for s in STATUSES}}
        row[status] = row.get(status, 0) + 1
        row["failing_findings"] += failed
    return sorted(out.values(), key=lambda r: (r["run"], r["category"]))


def failing(engine, catalog: Catalog, run_id: int, criterion: str) -> list[dict]:
    """The criterion's findings in the run that are not passing, worst first (all of them)."""
    rows, _total = failing_page(engine, catalog, run_id, criterion, limit=None)
    return rows


FAILING_SHOWN = 500  # the posture page's drill-down: the first 500, worst first; all: `auditbook findings`


def failing_page(engine, catalog: Catalog, run_id: int, criterion: str,
                 limit: Optional[int] = FAILING_SHOWN) -> tuple[list[dict], int]:
    """The criterion's findings in the run that are not passing, worst first (fail, error, excepted):
    the first `limit` (None: all) and how many there are. Passing findings are left out by the
    database; only the rows returned are read in full."""
    checks = [c.id for c in catalog.checks_for(criterion)]
    if not checks:
        return [], 0
    with reading(engine) as session:
        return findings.worst_at_run(session, run_id, checks, limit)


def scope_values(engine, run_id: int) -> dict[str, list[str]]:
    """Accounts, regions and resource types a run attempted (the explorer's filters)."""
    with reading(engine) as session:
        scopes = runs.scope_values(session, run_id)
    return {"account": sorted({a for a, _, _ in scopes}), "region": sorted({r for _, r, _ in scopes}),
            "resource_type": sorted({t for _, _, t in scopes})}


def resources(engine, run_id: int, *, account: Optional[str] = None, region: Optional[str] = None,
              resource_type: Optional[str] = None, text: Optional[str] = None, limit: int = 500) -> tuple[list[dict], int]:
    """Resources observed in the run, filtered; (rows, total matching)."""
    with reading(engine) as session:
        return stored_resources.search(session, run_id, account=account, region=region, resource_type=resource_type,
                                       text=text, limit=limit)
