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
from auditbook.history import shared_reads
from auditbook.store import findings, posture, runs
from auditbook.store import history as finding_history
from auditbook.store import manual_evidence as documents
from auditbook.store import scope as scope_reads
from auditbook.store.item_populations import item_populations, populations_by_day

FINDING_STATUSES = ("FAIL", "ERROR", "EXCEPTED", "PASS")
NO_DATA = "NO_DATA"  # the run recorded nothing for the criterion (a catalog newer than the run)
# whether a run read the resource types of a criterion's checks (coverage_of)
COLLECTED, NOT_COLLECTED, FAILED = "collected", "not collected", "failed"


def status_of(counts: Optional[Mapping[str, int]], manual_states: Iterable[str],
              coverage: Optional[str] = None) -> str:
    """THE status of a criterion: its findings' counts by status (None: the run recorded none for it),
    the states of its required manual items on the day it is judged, and (when known) whether the run
    read its checks' resource types (coverage_of). No finding at all is PASS only when the types were
    read: not read is NO_DATA (NEEDS_EVIDENCE if an item is not current), read and failed is ERROR
    (an evidence gap) — never PASS."""
    needs_evidence = any(state != "current" for state in manual_states)
    if counts is not None and coverage in (NOT_COLLECTED, FAILED) and not any(counts.values()):
        if coverage == FAILED:
            return "ERROR"
        counts = None
    if counts is None:
        return "NEEDS_EVIDENCE" if needs_evidence else NO_DATA
    full = {s: int(counts.get(s, 0) or 0) for s in FINDING_STATUSES}
    return criterion_status(full, needs_evidence)


def coverage_of(types: Iterable[str], attempted: Mapping[str, bool]) -> Optional[str]:
    """Whether a run read the resource types of a criterion's checks: FAILED when one was attempted and
    never read (every scope an evidence gap), NOT_COLLECTED when one was not attempted, COLLECTED when
    all were read; None for a criterion without checks. `attempted`: {type: read at least once}."""
    needed = set(types)
    if not needed:
        return None
    if any(attempted.get(t) is False for t in needed):
        return FAILED
    if any(t not in attempted for t in needed):
        return NOT_COLLECTED
    return COLLECTED


def run_statuses(session, run_id: int) -> list[dict]:
    """store.findings.statuses_at_run, read once where reads are shared (history.shared_reads): a packet's
    overview and its scope document both count the last run's findings."""
    return shared_reads.once(("statuses_at_run", shared_reads.store_key(session), run_id),
                             lambda: findings.statuses_at_run(session, run_id))


def period_intervals(session, check_ids: Iterable[str], lo: int, hi: int) -> list:
    """store.history.finding_intervals of these checks over the runs lo..hi, read once where reads are
    shared (the packet's overview and deviations; each criterion page of a kernel). Never sort or change
    the list: copy it."""
    ids = tuple(sorted(set(check_ids)))
    return shared_reads.once(("finding_intervals", shared_reads.store_key(session), lo, hi, ids),
                             lambda: finding_history.finding_intervals(session, list(ids), lo, hi))


def run_coverage(session, run_id: Optional[int]) -> dict[str, bool]:
    """{resource type: read at least once} of a run, in the caller's unit of work (empty for no run):
    what coverage_of takes."""
    if run_id is None:
        return {}
    return dict(shared_reads.once(("run_coverage", shared_reads.store_key(session), run_id),
                                  lambda: scope_reads.types_attempted(session, run_id, run_id)))


def criterion_types(catalog: Catalog) -> dict[str, set[str]]:
    """{criterion: the resource types its checks evaluate}."""
    out: dict[str, set[str]] = defaultdict(set)
    for check in catalog.checks:
        for criterion in check.controls:
            out[criterion].add(check.resource)
    return dict(out)


def counts_of(findings: Iterable[Mapping]) -> dict[str, int]:
    """Findings (dicts with a "status") counted by status."""
    out = dict.fromkeys(FINDING_STATUSES, 0)
    for f in findings:
        out[f["status"]] = out.get(f["status"], 0) + 1
    return out


def manual_item_states(session, catalog: Catalog, on: dt.date, since: Optional[dt.date] = None) -> list[ItemStatus]:
    """Every required manual item's state on a day, from the documents on file and the populations the
    per-event items must each evidence (store.item_populations) from `since` (a period's start; None:
    the start of that day's quarter, as a run records it) to that day — in the caller's unit of work:
    the one read behind every status."""
    def read() -> list[ItemStatus]:
        return item_states(catalog, documents.records(session, effective_by=on), on,
                           **item_populations(session, since, on))
    return shared_reads.once(("manual_item_states", shared_reads.store_key(session), catalog.sha256,
                              tuple(c.id for c in catalog.controls), on, since), read)


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
    attempted, types = run_coverage(session, run_id), criterion_types(catalog)
    out = {}
    for control in catalog.controls:
        row = stored.get(control.id)
        counts = None if row is None else {"PASS": row["pass"], "FAIL": row["fail"], "ERROR": row["error"],
                                           "EXCEPTED": row["excepted"]}
        out[control.id] = {"pass": 0, "fail": 0, "error": 0, "excepted": 0,
                           **{k: v for k, v in (row or {}).items() if k != "status"},
                           "status": status_of(counts, manual.get(control.id, []),
                                               coverage_of(types.get(control.id, ()), attempted))}
    return out


def statuses_over_runs(session, catalog: Catalog, rows: list[tuple]) -> dict[tuple[int, str], str]:
    """{(run id, criterion): status} for many runs at once (the posture trend), each by the one rule:
    the run's counts (rows of (run id, run start, criterion, pass, fail, error, excepted)), the manual
    evidence on the run's day (documents and populations read once per quarter, judged per day) and the types the
    run read (coverage_of)."""
    if not rows:
        return {}
    days = {run_id: at.date() for run_id, at, *_ in rows}
    last = max(days.values())
    on_file = documents.records(session, effective_by=last)
    populations = populations_by_day(session, set(days.values()))
    manual = {day: states_by_criterion(item_states(catalog, on_file, day, **populations[day]))
              for day in set(days.values())}
    attempted = scope_reads.types_attempted_by_run(session, min(days), max(days))
    types = criterion_types(catalog)
    out = {}
    for run_id, _at, criterion, passed, failed, errors, excepted in rows:
        counts = {"PASS": passed, "FAIL": failed, "ERROR": errors, "EXCEPTED": excepted}
        out[(run_id, criterion)] = status_of(counts, manual[days[run_id]].get(criterion, []),
                                             coverage_of(types.get(criterion, ()), attempted.get(run_id, {})))
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
