"""What else a period's evidence holds, beside the checks' history: the population tested, the
evidence gaps, the exceptions in force and the manual evidence. Each read is one unit of work."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from auditbook.catalog.model import Catalog
from auditbook.history.period import Period, PeriodRuns
from auditbook.history.status import judged_on, manual_item_states
from auditbook.store import history as stored
from auditbook.store import manual_evidence as documents
from auditbook.store.session import reading


def population(engine, types: list[str], pruns: PeriodRuns) -> list[dict]:
    """Every resource of these types observed by at least one run of the period."""
    if not pruns.runs or not types:
        return []
    lo, hi = pruns.ids[0], pruns.ids[-1]
    with reading(engine) as session:
        intervals = stored.resource_intervals(session, types, lo, hi)
    seen: dict[tuple, dict] = {}
    for r in intervals:
        if not pruns.in_period(r.first_run, r.last_run):
            continue
        key = (r.resource_type, r.account, r.region, r.resource_id)
        first, last = max(r.first_run, lo), min(r.last_run, hi)
        item = seen.get(key)
        if item is None:
            seen[key] = {"resource_type": r.resource_type, "account": r.account, "region": r.region,
                         "resource": r.arn or r.resource_id, "name": r.name, "_first": first, "_last": last}
        else:
            item["_first"], item["_last"] = min(item["_first"], first), max(item["_last"], last)
    out = []
    for item in seen.values():
        item["first_seen"] = pruns.times.get(item.pop("_first"))
        item["last_seen"] = pruns.times.get(item.pop("_last"))
        out.append(item)
    out.sort(key=lambda i: (i["resource_type"], i["account"], i["region"], i["resource"]))
    return out


def evidence_gaps(engine, types: Optional[list[str]], pruns: PeriodRuns) -> list[dict]:
    """Failed reads in the period's runs, grouped: what could not be read, how often, first and last day."""
    if not pruns.runs:
        return []
    with reading(engine) as session:
        gaps = stored.gaps_between(session, pruns.ids[0], pruns.ids[-1], types)
    grouped: dict[tuple, dict] = {}
    for g in gaps:
        at = pruns.times.get(g.pop("run_id"))
        if at is None:
            continue
        key = (g["account"], g["region"], g["resource_type"], g["resource"], g["call"], g["error"])
        item = grouped.setdefault(key, {**g, "runs": 0, "first": at, "last": at})
        item["runs"] += 1
        item["first"], item["last"] = min(item["first"], at), max(item["last"], at)
    return sorted(grouped.values(), key=lambda g: (g["first"], g["account"], g["region"], g["resource_type"]))


def exceptions_in_force(engine, pruns: PeriodRuns, check_ids: Optional[set[str]] = None) -> list[dict]:
    """The exceptions each run recorded as in force, with the first and last day they were."""
    if not pruns.runs:
        return []
    with reading(engine) as session:
        params = stored.parameters(session, pruns.ids)
    out: dict[str, dict] = {}
    for rid, run_params in params.items():
        for exc in run_params.get("exceptions") or []:
            if check_ids is not None and exc.get("check") not in check_ids:
                continue
            day = pruns.times[rid].date()
            item = out.setdefault(exc["id"], {**exc, "first_in_force": day, "last_in_force": day})
            item["first_in_force"] = min(item["first_in_force"], day)
            item["last_in_force"] = max(item["last_in_force"], day)
    return sorted(out.values(), key=lambda e: e["id"])


def manual_evidence(engine, catalog: Catalog, criterion: str, period: Period, today: Optional[dt.date] = None) -> dict:
    """Required items and their state at the period's end (today, while it runs: the day the
    criterion's status is judged on), and every document effective by then."""
    on = judged_on(period.end, today)
    with reading(engine) as session:
        on_file = documents.records(session, effective_by=on)
        items = [s for s in manual_item_states(session, catalog, on, period.start) if s.criterion == criterion]
    mine = [d for d in on_file if d.criterion == criterion]
    return {"items": [{"item": s.item, "cadence": s.cadence, "state_at_period_end": s.state, "due": s.due,
                       "matched_to": s.per, "not_evidenced": s.missing_events, "why": "; ".join(s.reasons)}
                      for s in items],
            "documents": [{"item": d.item, "filename": d.filename, "sha256": d.sha256, "owner": d.owner,
                           "submitted_by": d.submitted_by, "uploaded_at": d.uploaded_at,
                           "review": d.status, "decided_by": d.decided_by, "decided_at": d.decided_at,
                           "reason": d.reason, "incident": d.incident_id, "flags": ", ".join(d.flags),
                           "evidences": d.subject, "explanation": d.explanation, "counts": d.counts,
                           "effective_date": d.effective_date, "expires_on": d.expires_on,
                           "in_period": period.contains(d.effective_date),
                           "covers_period": d.expires_on is None or d.expires_on > period.start}
                          for d in mine]}
