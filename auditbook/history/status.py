"""One status per criterion (issue 14 §1): the packet's index and criterion pages, the control room's
posture and the exports all take a criterion's status from here, so they cannot disagree.

A criterion's status at a run is evaluate.evaluator.criterion_status over two inputs:
- its automated findings in that run (counts of PASS / FAIL / ERROR / EXCEPTED over its checks), and
- the states of its required manual evidence items (current / expired / missing, from
  evaluate.manual_evidence.item_states) on one day: the run's day for a run (the control room, the
  exports), the period's end (or today, while the period runs) for a packet.
Any item that is not current makes it NEEDS_EVIDENCE — never PASS — unless a failure or an evidence
gap outranks it. The one read of the manual evidence for that day is manual_item_states."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Iterable, Mapping, Optional

from auditbook.catalog.model import Catalog
from auditbook.evaluate.evaluator import criterion_status
from auditbook.evaluate.manual_evidence import ItemStatus, item_states
from auditbook.store import findings, posture, runs
from auditbook.store import manual_evidence as documents

FINDING_STATUSES = ("FAIL", "ERROR", "EXCEPTED", "PASS")
NO_DATA = "NO_DATA"  # the run recorded nothing for the criterion (a catalog newer than the run)


def status_of(counts: Optional[Mapping[str, int]], manual_states: Iterable[str]) -> str:
    """THE status of a criterion: its findings' counts by status (None: the run recorded none for it)
    and the states of its required manual items on the day it is judged."""
    needs_evidence = any(state != "current" for state in manual_states)
    if counts is None:
        return "NEEDS_EVIDENCE" if needs_evidence else NO_DATA
    full = {s: int(counts.get(s, 0) or 0) for s in FINDING_STATUSES}
    return criterion_status(full, needs_evidence)


def counts_of(findings: Iterable[Mapping]) -> dict[str, int]:
    """Findings (dicts with a "status") counted by status."""
    out = dict.fromkeys(FINDING_STATUSES, 0)
    for f in findings:
        out[f["status"]] = out.get(f["status"], 0) + 1
    return out


def manual_item_states(session, catalog: Catalog, on: dt.date, since: Optional[dt.date] = None) -> list[ItemStatus]:
    """Every required manual item's state on a day, from the documents on file and the incidents
    opened from `since` (a period's start; None: ever, as a run records it) to that day, which the
    per-incident items must each evidence — in the caller's unit of work: the one read behind every
    status."""
    return item_states(catalog, documents.records(session, effective_by=on), on,
                       incidents=documents.incidents_opened(session, since, on))


def states_by_criterion(states: Iterable[ItemStatus]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for s in states:
        out[s.criterion].append(s.state)
    return dict(out)


def judged_on(period_end: dt.date, today: Optional[dt.date] = None) -> dt.date:
    """The day a period's manual evidence is judged on: its end, or today while it still runs."""
    return min(period_end, today or dt.datetime.now(dt.timezone.utc).date())


def statuses_at_run(session, catalog: Catalog, run_id: int) -> dict[str, dict]:
    """{criterion: {pass, fail, error, excepted, status}} of a run (in the caller's unit of work): the
    run's counts per criterion (as stored with it; counted from its findings for a run stored before
    they were kept), and the manual evidence on the run's day."""
    run = runs.get(session, run_id)
    if run is None:
        return {}
    stored = posture.counts_for_run(session, run_id) or _counted(catalog, findings.at_run(session, run_id))
    manual = states_by_criterion(manual_item_states(session, catalog, run.started_at.date()))
    out = {}
    for control in catalog.controls:
        row = stored.get(control.id)
        counts = None if row is None else {"PASS": row["pass"], "FAIL": row["fail"], "ERROR": row["error"],
                                           "EXCEPTED": row["excepted"]}
        out[control.id] = {"pass": 0, "fail": 0, "error": 0, "excepted": 0,
                           **{k: v for k, v in (row or {}).items() if k != "status"},
                           "status": status_of(counts, manual.get(control.id, []))}
    return out


def _counted(catalog: Catalog, rows: list[dict]) -> dict[str, dict]:
    """{criterion: {pass, fail, error, excepted}} of a run's findings (stored rows)."""
    out = {c.id: dict.fromkeys(("pass", "fail", "error", "excepted"), 0) for c in catalog.controls}
    for row in rows:
        for criterion in row["controls"]:
            if criterion in out and row["status"].lower() in out[criterion]:
                out[criterion][row["status"].lower()] += 1
    return out


def needing_evidence_at_run(session, catalog: Catalog, run_id: int) -> list[str]:
    """The criteria whose required manual evidence was not current on the run's day."""
    run = runs.get(session, run_id)
    if run is None:
        return []
    manual = states_by_criterion(manual_item_states(session, catalog, run.started_at.date()))
    return sorted(c for c, states in manual.items() if any(s != "current" for s in states))
