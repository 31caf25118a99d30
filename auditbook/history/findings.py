"""A run's findings and evidence, as every front end lists them (the CLI's `findings`, the control
room's evidence explorer and drill-down, the notebooks): each function opens one unit of work."""
from __future__ import annotations

import re
from typing import Iterable, Optional

from auditbook.errors import UserError, shown
from auditbook.store import evidence, findings, runs
from auditbook.store.runs import RunRecord
from auditbook.store.session import reading

MAX_ID = 2**63 - 1  # ids are 64-bit signed integers in every store
STATUSES = ("PASS", "FAIL", "ERROR", "EXCEPTED")


def _run_id(run) -> Optional[int]:
    """The run id `run` names (None: the latest); a UserError unless it is an id or "latest"."""
    if run in (None, "", "latest"):
        return None
    if not re.fullmatch(r"[0-9]{1,19}", str(run)) or int(run) > MAX_ID:
        raise UserError(f"--run: {shown(run)} is not a run id (a number up to {MAX_ID}) or 'latest'")
    return int(run)


def _found(record: Optional[RunRecord], run) -> RunRecord:
    if record is None:
        raise UserError("no runs in the store yet: run `auditbook scan` first" if _run_id(run) is None
                        else f"--run: no run {run} in the store")
    return record


def resolve_run(engine, run: str = "latest") -> RunRecord:
    """The run `run` names: a run id, or "latest" (a UserError for anything else, or no such run)."""
    run_id = _run_id(run)
    with reading(engine) as session:
        record = runs.latest(session) if run_id is None else runs.get(session, run_id)
    return _found(record, run)


def status_filter(status: Optional[str]) -> Optional[str]:
    """--status as a finding status (None: every status)."""
    if not status:
        return None
    if status.upper() not in STATUSES:
        raise UserError(f"--status: {shown(status)} is not PASS, FAIL, ERROR or EXCEPTED")
    return status.upper()


def findings_for_run(engine, run_id: int, checks: Optional[Iterable[str]] = None) -> list[dict]:
    """The findings observed in one run (only of `checks`, if given)."""
    with reading(engine) as session:
        return findings.at_run(session, run_id, checks)


def list_findings(engine, run: str = "latest", status: Optional[str] = None) -> tuple[RunRecord, list[dict]]:
    """The run `run` names and its findings (only those of `status`, if given), read together: the
    CLI's `findings`, and every export."""
    wanted, run_id = status_filter(status), _run_id(run)
    with reading(engine) as session:
        record = runs.latest(session) if run_id is None else runs.get(session, run_id)
        rows = findings.at_run(session, record.id) if record is not None else []
    return _found(record, run), [r for r in rows if wanted is None or r["status"] == wanted]


def evidence_body(engine, sha256: str) -> Optional[dict]:
    """The redacted API response with this SHA-256 (None: not in the store)."""
    with reading(engine) as session:
        return evidence.body(session, sha256)


def run_table(engine) -> list[dict]:
    """Every run, oldest first: when, API calls, simulated or not, and findings per status."""
    with reading(engine) as session:
        return [{"run": r.id, "started_at": r.started_at, "api_calls": r.api_calls, "simulated": r.simulated,
                 **r.counts} for r in runs.all_runs(session)]
