"""Type II evidence over a period, read from the change-based store: how each check of a criterion
fared day by day, every failure with first seen / fixed / time to remediate, monitoring gaps, the
latest results, and the overview of every criterion (the packet index's table).

A day's state of a check is taken from that day's last run that attempted the check's resource type;
a day with no such run is a monitoring gap for the check (never counted as passing). Each service
reads what it needs in one unit of work (store.history, store.findings, store.manual_evidence) and
computes the rest here and in history.per_check."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

from auditbook.catalog.model import Catalog, Check
from auditbook.history import shared_reads
from auditbook.history.per_check import (
    STATUS_ORDER,
    check_daily,
    check_summary,
    failure_episodes,
)
from auditbook.history.period import PeriodRuns, day_ranges
from auditbook.history.status import (
    counts_of,
    coverage_of,
    judged_on,
    manual_item_states,
    period_intervals,
    run_coverage,
    run_statuses,
    states_by_criterion,
    status_of,
)
from auditbook.store import findings
from auditbook.store import history as stored
from auditbook.store.history import FindingInterval
from auditbook.store.session import reading


@dataclass
class CriterionHistory:
    criterion: str
    checks: list[Check]
    daily: list[dict]
    summaries: list[dict]
    failures: list[dict]
    gap_days: list[tuple[dt.date, dt.date]]  # days of the period with no run at all
    latest_run: Optional[int]
    latest: list[dict]
    manual_states: list[str]  # its required manual items' states at the period's end (or today)
    coverage: Optional[str] = None  # whether its latest run read its checks' types (history.status.coverage_of)

    @property
    def status(self) -> str:
        """The one status (history.status): the latest run's findings and the manual evidence."""
        return status_of(counts_of(self.latest), self.manual_states, self.coverage)

    def share_all_passing(self, horizon: list[dt.date]) -> Optional[float]:
        """Share of the period's days on which every check was observed and passing."""
        if not horizon or not self.checks:
            return None
        by_day = defaultdict(list)
        for d in self.daily:
            by_day[d["day"]].append(d["status"])
        good = sum(1 for day in horizon
                   if len(by_day.get(day, [])) == len(self.checks) and all(s in ("PASS", "NONE") for s in by_day[day]))
        return round(good / len(horizon), 4)


def latest_run_for(checks: list[Check], pruns: PeriodRuns) -> Optional[int]:
    """The period's last run that attempted every resource type of these checks (else its last run)."""
    types = {c.resource for c in checks}
    return next((r.id for r in reversed(pruns.runs) if types <= r.types), pruns.ids[-1] if pruns.runs else None)


def _intervals_and_times(session, check_ids: list[str], pruns: PeriodRuns,
                         every_check: Optional[list[str]] = None) -> tuple[list[FindingInterval], dict]:
    """The checks' finding intervals that touch the period's runs (in the order stored), and when every
    run they name started. `every_check` (where reads are shared: a packet build, see _latest_findings):
    the intervals of all these checks are read once and each criterion takes its checks'."""
    if not pruns.runs or not check_ids:
        return [], dict(pruns.times)
    read = every_check if every_check is not None and shared_reads.active() else check_ids
    wanted = set(check_ids)
    # the order a check's intervals are read in decides ties: the order stored (a copy: the read may be shared)
    rows = sorted((r for r in period_intervals(session, read, pruns.ids[0], pruns.ids[-1]) if r.check_id in wanted),
                  key=lambda r: r.id)
    referenced = {x for r in rows for x in (r.first_run, r.closed_run) if x is not None}
    return rows, {**stored.start_times(session, referenced - set(pruns.times)), **pruns.times}


def _history(criterion: str, checks: list[Check], rows: list[FindingInterval], pruns: PeriodRuns, times: dict,
             latest: list[dict], manual_states: list[str], today: Optional[dt.date],
             attempted: Optional[dict] = None) -> CriterionHistory:
    per_check = defaultdict(list)
    for r in rows:
        per_check[r.check_id].append(r)
    horizon = pruns.horizon(today)
    daily, summaries, failures = [], [], []
    for check in checks:
        mine = per_check.get(check.id, [])
        days = check_daily(check, mine, pruns)
        episodes = failure_episodes(check, mine, pruns, times) if pruns.runs else []
        daily += days
        failures += episodes
        summaries.append(check_summary(check, days, episodes, horizon))
    failures.sort(key=lambda e: (e["first_seen"], e["check"], e["account"], e["resource"]))
    return CriterionHistory(criterion, checks, daily, summaries, failures, day_ranges(pruns.gap_days(today)),
                            latest_run_for(checks, pruns), latest, manual_states,
                            coverage_of({c.resource for c in checks}, attempted or {}))


def _latest_findings(session, run_id: int, ids: list[str], shared: bool) -> list[dict]:
    """The findings of checks `ids` in the run. `shared` (a packet build: its kernel runs every
    criterion over the same runs, history.shared_reads): the run's findings are read once and each
    criterion takes its checks' (the same rows in the same order as reading them alone)."""
    if not (shared and shared_reads.active()):
        return findings.at_run(session, run_id, ids)
    wanted = set(ids)
    every = shared_reads.once(_findings_key(shared_reads.store_key(session), run_id),
                              lambda: findings.at_run(session, run_id))
    return [f for f in every if f["check"] in wanted]


def _findings_key(store: str, run_id: int) -> tuple:
    return ("findings_at_run", store, run_id)


def handed_latest_findings(kernel_engine, catalog: Catalog, pruns: PeriodRuns) -> dict:
    """What a packet build hands its kernels (history.handed_reads): the findings of every run that is
    some criterion's latest, read once, under the key a kernel's _latest_findings asks for them by.
    `kernel_engine`: opened from the kernels' own store URL (the key names the store as they name it)."""
    runs = {latest_run_for(checks, pruns) for checks in (catalog.checks_for(c.id) for c in catalog.controls)
            if checks} - {None}
    with reading(kernel_engine) as session:
        store = shared_reads.store_key(session)
        return {_findings_key(store, run): findings.at_run(session, run) for run in sorted(runs)}


def criterion_history(engine, catalog: Catalog, criterion: str, pruns: PeriodRuns,
                      today: Optional[dt.date] = None, shared: bool = False) -> CriterionHistory:
    """One criterion's checks over the period, their findings in its latest run, and the states of its
    required manual items at the period's end (or today, while it runs). `shared`: for a packet build,
    whose kernel runs every criterion over the same runs (see _latest_findings)."""
    checks = catalog.checks_for(criterion)
    ids = [c.id for c in checks]
    latest_run = latest_run_for(checks, pruns)
    with reading(engine) as session:
        rows, times = _intervals_and_times(session, ids, pruns, [c.id for c in catalog.checks] if shared else None)
        latest = _latest_findings(session, latest_run, ids, shared) if latest_run is not None and ids else []
        states = manual_item_states(session, catalog, judged_on(pruns.period.end, today), pruns.period.start)
        attempted = run_coverage(session, latest_run)
    manual = states_by_criterion(states).get(criterion, [])
    return _history(criterion, checks, rows, pruns, times, latest, manual, today, attempted)


def overview(engine, catalog: Catalog, pruns: PeriodRuns, today: Optional[dt.date] = None) -> list[dict]:
    """Every criterion in one pass (the packet index's table): its status at its latest run, the share
    of days with every check observed and passing, failures, and manual evidence outstanding."""
    latest_runs = {c.id: latest_run_for(catalog.checks_for(c.id), pruns) for c in catalog.controls}
    with reading(engine) as session:
        every = [c.id for c in catalog.checks]
        rows, times = _intervals_and_times(session, every, pruns, every)
        # the rows count the findings by status: only their check and status are read
        at_run = {run: _by_check(run_statuses(session, run)) for run in set(latest_runs.values()) if run is not None}
        manual = manual_item_states(session, catalog, judged_on(pruns.period.end, today), pruns.period.start)
        read = {run: run_coverage(session, run) for run in set(latest_runs.values())}
    states = states_by_criterion(manual)
    items = defaultdict(dict)
    for s in manual:
        items[s.criterion][s.item] = s.state
    by_check = defaultdict(list)
    for r in rows:
        by_check[r.check_id].append(r)
    horizon = pruns.horizon(today)
    return [{**_overview_row(control, catalog.checks_for(control.id), by_check, pruns, times, at_run,
                             latest_runs[control.id], states.get(control.id, []), horizon, today,
                             read[latest_runs[control.id]]),
             "manual_item_states": items.get(control.id, {})}
            for control in catalog.controls]


def _by_check(findings: list[dict]) -> dict[str, list[dict]]:
    """A run's findings by check, each check's in the run's order (one pass, not one per criterion)."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for f in findings:
        grouped[f["check"]].append(f)
    return grouped


def _overview_row(control, checks: list[Check], by_check: dict, pruns: PeriodRuns, times: dict, at_run: dict,
                  latest_run: Optional[int], states: list[str], horizon: list[dt.date],
                  today: Optional[dt.date], attempted: dict) -> dict:
    of_run = at_run.get(latest_run, {})
    latest = [f for c in checks for f in of_run.get(c.id, ())]
    h = _history(control.id, checks, [r for c in checks for r in by_check.get(c.id, [])], pruns, times, latest,
                 states, today, attempted)
    counts = counts_of(h.latest)
    return {"criterion": control.id, "category": control.category, "group": control.group, "title": control.title,
            "checks": len(checks), "status": h.status,
            "share_days_all_passing": h.share_all_passing(horizon), "failures": len(h.failures),
            "open_failures": sum(1 for e in h.failures if e["state"] == "open"), "manual_items": len(states),
            "manual_missing_or_expired": sum(1 for s in states if s != "current"),
            # per check (a company control counts only its own checks' stretches, each once)
            "failures_by_check": {s["check"]: [s["failures"], s["open_failures"]] for s in h.summaries},
            **{s.lower(): counts[s] for s in STATUS_ORDER}}
