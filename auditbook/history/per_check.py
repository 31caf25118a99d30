"""One check over a period, from its finding intervals (pure): its state day by day (a day's state is
that day's last run that attempted the check's resource type; a day without one is a monitoring
gap, never a pass), each stretch of failure of a resource with how it ended, and a summary."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

from auditbook.catalog.model import Check
from auditbook.history.period import PeriodRuns
from auditbook.store.history import FindingInterval

STATUS_ORDER = ("FAIL", "ERROR", "EXCEPTED", "PASS")
HOW_IT_ENDED = {"PASS": "fixed", "EXCEPTED": "excepted", "ERROR": "unverified (evidence gap)"}


def check_daily(check: Check, rows: list[FindingInterval], pruns: PeriodRuns) -> list[dict]:
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


def failure_episodes(check: Check, rows: list[FindingInterval], pruns: PeriodRuns, times: dict) -> list[dict]:
    """Each stretch of FAIL for one resource: first seen, when it stopped failing and how."""
    by_key = defaultdict(list)
    for r in rows:
        by_key[(r.account, r.scope_region, r.resource_type, r.resource_id)].append(r)
    out = []
    for seq in by_key.values():
        seq.sort(key=lambda r: r.first_run)
        episode = None
        for r in seq + [None]:
            failing = r is not None and r.status == "FAIL"
            if failing and episode is not None and episode[-1].closed_run == r.first_run:
                episode.append(r)
                continue
            if episode is not None:
                successor = r if (r is not None and r.first_run == episode[-1].closed_run) else None
                out.append(_episode(check, episode, successor, times))
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


def _episode(check: Check, rows: list[FindingInterval], successor, times: dict) -> dict:
    first, last = rows[0], rows[-1]
    seen = times.get(first.first_run)
    end_run = last.closed_run
    if end_run is None:
        state, fixed = "open", None
    else:
        fixed = times.get(end_run)
        state = HOW_IT_ENDED.get(successor.status if successor is not None else "", "resource removed")
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
