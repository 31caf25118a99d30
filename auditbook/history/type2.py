"""Type II evidence over a period, read from the change-based store: which runs happened, how each
check fared day by day, every failure with first seen / fixed / time to remediate, monitoring gaps,
the population tested, exceptions in force, manual evidence and evidence gaps.

A day's state of a check is taken from that day's last run that attempted the check's resource type;
a day with no such run is a monitoring gap for the check (never counted as passing)."""
from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook.catalog.model import Catalog, Check
from auditbook.evaluate.evaluator import criterion_status
from auditbook.evaluate.manual_evidence import evidence_status
from auditbook.history.period import Period
from auditbook.store.db import utc as _utc
from auditbook.store.models import FindingState, GapRow, ManualEvidence, ResourceState, Run, RunScope

STATUS_ORDER = ("FAIL", "ERROR", "EXCEPTED", "PASS")


@dataclass(frozen=True)
class RunInfo:
    id: int
    at: dt.datetime
    types: frozenset
    simulated: bool

    @property
    def day(self) -> dt.date:
        return self.at.date()


@dataclass
class PeriodRuns:
    period: Period
    runs: list[RunInfo]
    times: dict[int, dt.datetime] = field(default_factory=dict)  # every run id the period's rows refer to

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.runs]

    def last_for_type(self, rtype: str) -> dict[dt.date, RunInfo]:
        """Each day's last run that attempted `rtype`."""
        out: dict[dt.date, RunInfo] = {}
        for run in self.runs:  # ordered by time
            if rtype in run.types:
                out[run.day] = run
        return out

    def observed_days(self) -> set[dt.date]:
        return {r.day for r in self.runs}

    def horizon(self, today: Optional[dt.date] = None) -> list[dt.date]:
        """The period's days that have happened (a period still running has no gaps in the future)."""
        today = today or dt.datetime.now(dt.timezone.utc).date()
        return [d for d in self.period.days() if d <= today]

    def in_period(self, first_run: int, last_run: int) -> bool:
        """Whether an interval first_run..last_run contains a run of the period."""
        ids = self.ids
        i = bisect.bisect_left(ids, first_run)
        return i < len(ids) and ids[i] <= last_run


def period_runs(engine, period: Period) -> PeriodRuns:
    lo = dt.datetime.combine(period.start, dt.time(), dt.timezone.utc)
    hi = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    with Session(engine) as session:
        rows = session.execute(select(Run.id, Run.started_at, Run.parameters)
                               .where(Run.started_at >= lo, Run.started_at < hi)).all()
        ids = [r.id for r in rows]
        types = defaultdict(set)
        for part in range(0, len(ids), 500):
            for run_id, rtype in session.execute(select(RunScope.run_id, RunScope.resource_type).distinct()
                                                 .where(RunScope.run_id.in_(ids[part:part + 500]))):
                types[run_id].add(rtype)
    # run ids follow time (runs are stored as they finish), so intervals of run ids are intervals of time
    runs = sorted((RunInfo(r.id, _utc(r.started_at), frozenset(types[r.id]),
                           bool((r.parameters or {}).get("simulated"))) for r in rows), key=lambda r: r.id)
    return PeriodRuns(period, runs, {r.id: r.at for r in runs})


def _run_times(engine, ids: Iterable[int], known: dict) -> dict[int, dt.datetime]:
    missing = sorted(set(ids) - set(known))
    out = dict(known)
    with Session(engine) as session:
        for part in range(0, len(missing), 500):
            for rid, at in session.execute(select(Run.id, Run.started_at).where(Run.id.in_(missing[part:part + 500]))):
                out[rid] = _utc(at)
    return out


def load_finding_rows(engine, check_ids: list[str], pruns: PeriodRuns) -> list:
    """Finding-state intervals of these checks that touch the period's runs, plus the intervals that
    follow them (to tell a fix from a vanished resource)."""
    if not pruns.runs or not check_ids:
        return []
    lo, hi = pruns.ids[0], pruns.ids[-1]
    with Session(engine) as session:
        rows = session.execute(select(
            FindingState.id, FindingState.check_id, FindingState.account, FindingState.region,
            FindingState.scope_region, FindingState.resource_type, FindingState.resource_id,
            FindingState.resource, FindingState.resource_name, FindingState.status, FindingState.severity,
            FindingState.message, FindingState.evidence, FindingState.first_run, FindingState.last_run,
            FindingState.closed_run).where(FindingState.check_id.in_(check_ids), FindingState.last_run >= lo,
                                           FindingState.first_run <= hi)).all()
    return rows


def _ranges(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    out: list[list[dt.date]] = []
    for d in sorted(days):
        if out and (d - out[-1][1]).days == 1:
            out[-1][1] = d
        else:
            out.append([d, d])
    return [(a, b) for a, b in out]


def check_daily(check: Check, rows: list, pruns: PeriodRuns) -> list[dict]:
    """One row per day with a run that attempted the check's resource type."""
    out = []
    for day, run in sorted(pruns.last_for_type(check.resource).items()):
        counts = dict.fromkeys(STATUS_ORDER, 0)
        for r in rows:
            if r.first_run <= run.id <= r.last_run:
                counts[r.status] = counts.get(r.status, 0) + 1
        status = next((s for s in STATUS_ORDER if counts[s]), "NONE")  # NONE: nothing in scope that day
        out.append({"day": day, "check": check.id, "run": run.id, "status": status,
                    "failing": counts["FAIL"], "errors": counts["ERROR"], "excepted": counts["EXCEPTED"],
                    "passing": counts["PASS"]})
    return out


def failure_episodes(check: Check, rows: list, pruns: PeriodRuns, times: dict) -> list[dict]:
    """Each stretch of FAIL for one resource: first seen, when it stopped failing and how."""
    by_key = defaultdict(list)
    for r in rows:
        by_key[(r.account, r.scope_region, r.resource_type, r.resource_id)].append(r)
    out = []
    for key, seq in by_key.items():
        seq.sort(key=lambda r: r.first_run)
        episode = None
        for i, r in enumerate(seq + [None]):
            failing = r is not None and r.status == "FAIL"
            if failing and episode is not None and episode[-1].closed_run == r.first_run:
                episode.append(r)
                continue
            if episode is not None:
                out.append(_episode(check, episode, r if (r is not None and r.first_run == episode[-1].closed_run) else None,
                                    times))
                episode = None
            if failing:
                episode = [r]
    lo, hi = pruns.ids[0], pruns.ids[-1]
    out = [e for e in out if e["_first_run"] <= hi and (e["_end_run"] is None or e["_end_run"] > lo)]
    for e in out:
        e.pop("_first_run")
        e.pop("_end_run")
    out.sort(key=lambda e: (e["first_seen"], e["account"], e["resource"]))
    return out


def _episode(check: Check, rows: list, successor, times: dict) -> dict:
    first, last = rows[0], rows[-1]
    seen = times.get(first.first_run)
    end_run = last.closed_run
    if end_run is None:
        state, fixed = "open", None
    else:
        fixed = times.get(end_run)
        state = {"PASS": "fixed", "EXCEPTED": "excepted", "ERROR": "unverified (evidence gap)"}.get(
            successor.status if successor is not None else "", "resource removed")
    ttr = round((fixed - seen).total_seconds() / 86400, 1) if fixed and seen else None
    return {"check": check.id, "severity": last.severity, "account": last.account, "region": last.region,
            "resource": last.resource, "resource_name": last.resource_name, "first_seen": seen,
            "fixed": fixed, "state": state, "days_to_remediate": ttr, "message": last.message,
            "_first_run": first.first_run, "_end_run": end_run}


def check_summary(check: Check, daily: list[dict], episodes: list[dict], horizon: list[dt.date]) -> dict:
    observed = {d["day"] for d in daily}
    passing = [d for d in daily if d["status"] in ("PASS", "NONE")]
    ttrs = [e["days_to_remediate"] for e in episodes if e["state"] == "fixed" and e["days_to_remediate"] is not None]
    missing = [d for d in horizon if d not in observed]
    return {"check": check.id, "title": check.title, "severity": check.severity, "resource_type": check.resource,
            "days_in_period": len(horizon), "days_observed": len(observed), "days_passing": len(passing),
            "share_passing": round(len(passing) / len(horizon), 4) if horizon else None,
            "days_failing": sum(1 for d in daily if d["status"] == "FAIL"),
            "days_error": sum(1 for d in daily if d["status"] == "ERROR"),
            "days_excepted": sum(1 for d in daily if d["status"] == "EXCEPTED"),
            "monitoring_gap_days": len(missing), "failures": len(episodes),
            "open_failures": sum(1 for e in episodes if e["state"] == "open"),
            "mean_days_to_remediate": round(sum(ttrs) / len(ttrs), 1) if ttrs else None}


def population(engine, types: list[str], pruns: PeriodRuns) -> list[dict]:
    """Every resource of these types observed by at least one run of the period."""
    if not pruns.runs or not types:
        return []
    lo, hi = pruns.ids[0], pruns.ids[-1]
    seen: dict[tuple, dict] = {}
    with Session(engine) as session:
        q = select(ResourceState.resource_type, ResourceState.account, ResourceState.region,
                   ResourceState.resource_id, ResourceState.arn, ResourceState.name, ResourceState.first_run,
                   ResourceState.last_run).where(ResourceState.resource_type.in_(types),
                                                 ResourceState.last_run >= lo, ResourceState.first_run <= hi)
        for r in session.execute(q):
            if not pruns.in_period(r.first_run, r.last_run):
                continue
            key = (r.resource_type, r.account, r.region, r.resource_id)
            item = seen.get(key)
            first, last = max(r.first_run, lo), min(r.last_run, hi)
            if item is None:
                seen[key] = {"resource_type": r.resource_type, "account": r.account, "region": r.region,
                             "resource": r.arn or r.resource_id, "name": r.name, "_first": first, "_last": last}
            else:
                item["_first"], item["_last"] = min(item["_first"], first), max(item["_last"], last)
    times = pruns.times
    out = []
    for item in seen.values():
        item["first_seen"] = times.get(item.pop("_first"))
        item["last_seen"] = times.get(item.pop("_last"))
        out.append(item)
    out.sort(key=lambda i: (i["resource_type"], i["account"], i["region"], i["resource"]))
    return out


def evidence_gaps(engine, types: Optional[list[str]], pruns: PeriodRuns) -> list[dict]:
    """Failed reads in the period's runs, grouped: what could not be read, how often, first and last day."""
    if not pruns.runs:
        return []
    grouped: dict[tuple, dict] = {}
    with Session(engine) as session:
        q = select(GapRow).where(GapRow.run_id >= pruns.ids[0], GapRow.run_id <= pruns.ids[-1])
        if types is not None:
            q = q.where(GapRow.resource_type.in_(types))
        for g in session.scalars(q):
            if g.run_id not in pruns.times:
                continue
            key = (g.account, g.region, g.resource_type, g.resource or "", g.call, g.error)
            at = pruns.times[g.run_id]
            item = grouped.setdefault(key, {"account": g.account, "region": g.region,
                                            "resource_type": g.resource_type, "resource": g.resource or "",
                                            "call": g.call, "error": g.error, "message": g.message,
                                            "runs": 0, "first": at, "last": at})
            item["runs"] += 1
            item["first"], item["last"] = min(item["first"], at), max(item["last"], at)
    return sorted(grouped.values(), key=lambda g: (g["first"], g["account"], g["region"], g["resource_type"]))


def exceptions_in_force(engine, pruns: PeriodRuns, check_ids: Optional[set[str]] = None) -> list[dict]:
    """The exceptions each run recorded as in force, with the first and last day they were."""
    if not pruns.runs:
        return []
    out: dict[str, dict] = {}
    with Session(engine) as session:
        for rid, params in session.execute(select(Run.id, Run.parameters).where(Run.id.in_(pruns.ids))):
            for exc in (params or {}).get("exceptions") or []:
                if check_ids is not None and exc.get("check") not in check_ids:
                    continue
                day = pruns.times[rid].date()
                item = out.setdefault(exc["id"], {**exc, "first_in_force": day, "last_in_force": day})
                item["first_in_force"] = min(item["first_in_force"], day)
                item["last_in_force"] = max(item["last_in_force"], day)
    return sorted(out.values(), key=lambda e: e["id"])


def manual_evidence(engine, catalog: Catalog, criterion: str, period: Period) -> dict:
    """Required items and their state at the period's end, and every document effective by then."""
    items = [s for s in evidence_status(engine, catalog, period.end) if s.criterion == criterion]
    with Session(engine) as session:
        docs = session.scalars(select(ManualEvidence).where(ManualEvidence.criterion == criterion,
                                                            ManualEvidence.effective_date <= period.end)
                               .order_by(ManualEvidence.effective_date, ManualEvidence.id)).all()
        documents = [{"item": d.item, "filename": d.filename, "sha256": d.sha256, "owner": d.owner,
                      "uploaded_by": d.uploaded_by, "uploaded_at": _utc(d.uploaded_at),
                      "effective_date": d.effective_date, "expires_on": d.expires_on,
                      "in_period": period.contains(d.effective_date),
                      "covers_period": d.expires_on is None or d.expires_on > period.start}
                     for d in docs]
    return {"items": [{"item": s.item, "cadence": s.cadence, "state_at_period_end": s.state,
                       "due": s.due} for s in items],
            "documents": documents}


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

    @property
    def status(self) -> str:
        return latest_status(self.latest)

    def share_all_passing(self, horizon: list[dt.date]) -> Optional[float]:
        """Share of the period's days on which every check was observed and passing."""
        if not horizon:
            return None
        if not self.checks:
            return None
        by_day = defaultdict(list)
        for d in self.daily:
            by_day[d["day"]].append(d["status"])
        good = sum(1 for day in horizon
                   if len(by_day.get(day, [])) == len(self.checks) and all(s in ("PASS", "NONE") for s in by_day[day]))
        return round(good / len(horizon), 4)


def latest_status(findings: list[dict]) -> str:
    counts = {s: 0 for s in STATUS_ORDER}
    for f in findings:
        counts[f["status"]] = counts.get(f["status"], 0) + 1
    return criterion_status(counts, False)


def criterion_history(engine, catalog: Catalog, criterion: str, pruns: PeriodRuns, rows: Optional[list] = None,
                      today: Optional[dt.date] = None, run_findings: Optional[dict] = None) -> CriterionHistory:
    """`rows`: the checks' finding intervals if already loaded; `run_findings`: a cache of
    findings_for_run by run id, shared across criteria."""
    from auditbook.store.query import findings_for_run
    checks = catalog.checks_for(criterion)
    ids = [c.id for c in checks]
    if rows is None:
        rows = load_finding_rows(engine, ids, pruns)
    per_check = defaultdict(list)
    for r in rows:
        per_check[r.check_id].append(r)
    referenced = {x for r in rows for x in (r.first_run, r.closed_run) if x is not None}
    times = _run_times(engine, referenced, pruns.times)
    horizon = pruns.horizon(today)
    daily, summaries, failures = [], [], []
    for check in checks:
        mine = per_check.get(check.id, [])
        d = check_daily(check, mine, pruns)
        e = failure_episodes(check, mine, pruns, times) if pruns.runs else []
        daily += d
        failures += e
        summaries.append(check_summary(check, d, e, horizon))
    failures.sort(key=lambda e: (e["first_seen"], e["check"], e["account"], e["resource"]))
    gap_days = _ranges([d for d in horizon if d not in pruns.observed_days()])
    types = {c.resource for c in checks}
    latest_run = next((r.id for r in reversed(pruns.runs) if types <= r.types), pruns.ids[-1] if pruns.runs else None)
    latest = []
    if latest_run is not None and ids:
        cache = run_findings if run_findings is not None else {}
        if latest_run not in cache:
            cache[latest_run] = findings_for_run(engine, latest_run)
        wanted = set(ids)
        latest = [f for f in cache[latest_run] if f["check"] in wanted]
    return CriterionHistory(criterion, checks, daily, summaries, failures, gap_days, latest_run, latest)


def overview(engine, catalog: Catalog, pruns: PeriodRuns, today: Optional[dt.date] = None) -> list[dict]:
    """Every criterion in one pass: the packet index's table."""
    rows = load_finding_rows(engine, [c.id for c in catalog.checks], pruns)
    by_check = defaultdict(list)
    for r in rows:
        by_check[r.check_id].append(r)
    horizon = pruns.horizon(today)
    end = min(pruns.period.end, today or dt.datetime.now(dt.timezone.utc).date())
    states = defaultdict(list)
    for s in evidence_status(engine, catalog, end):
        states[s.criterion].append(s.state)
    out, cache = [], {}
    for control in catalog.controls:
        ids = [c.id for c in catalog.checks_for(control.id)]
        mine = [r for i in ids for r in by_check.get(i, [])]
        h = criterion_history(engine, catalog, control.id, pruns, rows=mine, today=today, run_findings=cache)
        needs = any(s != "current" for s in states.get(control.id, []))
        counts = {s: sum(1 for f in h.latest if f["status"] == s) for s in STATUS_ORDER}
        out.append({"criterion": control.id, "category": control.category, "group": control.group,
                    "title": control.title, "checks": len(ids),
                    "status": criterion_status(counts, needs),
                    "share_days_all_passing": h.share_all_passing(horizon),
                    "failures": len(h.failures), "open_failures": sum(1 for e in h.failures if e["state"] == "open"),
                    "manual_items": len(states.get(control.id, [])),
                    "manual_missing_or_expired": sum(1 for s in states.get(control.id, []) if s != "current"),
                    **{s.lower(): counts[s] for s in STATUS_ORDER}})
    return out


INCIDENT_CRITERIA = ("CC7.3", "CC7.4", "CC7.5")  # evaluating, responding to and recovering from incidents


def incidents_in_period(engine, period: Period, criterion: Optional[str] = None) -> list[dict]:
    """Incidents open at any time in the period (created by its end, not closed before its start),
    each with its timeline from the audit trail. With `criterion`: those linked to it, or all of them
    for the incident-response criteria (CC7.3–CC7.5)."""
    from auditbook.store.audit_log import trail
    from auditbook.monitor.incidents import list_incidents, sla_state, sla_targets
    start = dt.datetime.combine(period.start, dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    targets = sla_targets(engine)
    out = []
    for inc in sorted(list_incidents(engine), key=lambda i: i["id"]):
        if inc["created_at"] >= end or (inc["closed_at"] is not None and inc["closed_at"] < start):
            continue
        linked = {l["ref"] for l in inc["links"] if l["kind"] == "criterion"}
        if criterion and criterion not in INCIDENT_CRITERIA and criterion not in linked:
            continue
        state = sla_state(inc, targets, min(end, dt.datetime.now(dt.timezone.utc)))
        out.append({**inc, "acknowledge_breached": state.acknowledge_breached,
                    "resolve_breached": state.resolve_breached,
                    "timeline": trail(engine, "incident", inc["id"])})
    return out
