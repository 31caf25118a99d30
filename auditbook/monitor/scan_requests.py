"""Scans started from the control room. An admin asks for one (regions and a criterion may narrow it;
the accounts are the latest run's: its accounts file or organisation role, and AWS profile); the
request is a row of the store holding the one scan slot (two admins or two tabs cannot start two),
written with its audit-trail entry in one unit of work. The scan then runs in a thread of the
control room's server, with the server's AWS credentials, through auditbook.scan.run_scan; its
progress (collection jobs done of planned, the scope read last, a heartbeat) is written as it goes,
and its result (the run) or its error when it ends. A request whose heartbeat stopped (the server
was stopped mid-scan) is marked abandoned by the next request."""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from auditbook.auth import Actor, authorize
from auditbook.catalog.model import Catalog
from auditbook.collect.inputs import parse_regions
from auditbook.errors import UserError, one_line, shown
from auditbook.store import audit_log, runs
from auditbook.store import scan_requests as stored
from auditbook.store.audit_log import now
from auditbook.store.session import reading, writing

log = logging.getLogger(__name__)
SYSTEM = Actor("auditbook", "system")
STALE_AFTER = dt.timedelta(minutes=15)  # no heartbeat for this long: the scan is gone (server stopped)
HEARTBEAT_SECONDS = 30.0
PROGRESS_SECONDS = 1.0  # progress is written at most this often
STATES = ("queued", "running", "done", "failed", "abandoned")


class ScanBusy(UserError):
    """A scan is already queued or running."""

    def __init__(self, holder: Optional[dict]):
        who = (f"requested by {holder['requested_by']} at {holder['requested_at']:%Y-%m-%d %H:%M} UTC "
               f"(request {holder['id']}, {holder['state']})") if holder else "just requested by someone else"
        super().__init__(f"a scan is already running: {who}; one scan runs at a time")
        self.holder = holder


def _json(request: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in request.items()}


def scan_options(engine, catalog: Catalog, *, regions: Optional[str] = None,
                 criterion: Optional[str] = None) -> dict:
    """The request's options, checked before anything is stored: regions (a comma-separated list;
    empty: the latest run's), a criterion of the catalog (empty: all), and the latest run's accounts
    (accounts file or organisation role) and AWS profile."""
    regions = (regions or "").strip() or None
    parse_regions(regions)
    criterion = (criterion or "").strip() or None
    if criterion is not None and criterion not in {c.id for c in catalog.controls}:
        raise UserError(f"criterion: {shown(criterion)} is not a criterion in the catalog")
    with reading(engine) as session:
        latest = runs.latest(session)
    params = latest.parameters if latest else {}
    if regions is None and params.get("regions"):
        regions = ",".join(params["regions"])
    return {"regions": regions, "criterion": criterion, "accounts_file": params.get("accounts_file"),
            "org_role": params.get("org_role"), "profile": params.get("profile")}


def _abandon_stale(session, at: dt.datetime) -> None:
    """Free the slot of a request whose heartbeat stopped more than STALE_AFTER ago."""
    holder = stored.active(session)
    if holder is not None and at - holder["heartbeat_at"] > STALE_AFTER:
        error = f"abandoned: no progress since {holder['heartbeat_at']:%Y-%m-%d %H:%M} UTC (the server stopped?)"
        if stored.release(session, holder["id"], "abandoned", at, error=error):
            audit_log.record(session, SYSTEM, "abandon_scan", "scan", holder["id"], before=_json(holder),
                             note=error, at=at)


def request_scan(engine, actor: Actor, options: dict) -> dict:
    """Store a scan request holding the slot, with its audit-trail entry (ScanBusy: another holds it).
    Start it with start_in_background."""
    authorize(actor, "start_scan")
    at = now()
    try:
        with writing(engine) as session:
            _abandon_stale(session, at)
            made = stored.insert_request(session, requested_by=actor.name, role=actor.role, at=at, options=options)
            audit_log.record(session, actor, "start_scan", "scan", made["id"], after=_json(made), at=at)
    except stored.SlotTaken:
        raise ScanBusy(current(engine)) from None
    return made


def current(engine) -> Optional[dict]:
    """The request holding the slot (queued or running), if any."""
    with reading(engine) as session:
        return stored.active(session)


def recent(engine, limit: int = 5) -> list[dict]:
    """The latest requests, newest first."""
    with reading(engine) as session:
        return stored.recent(session, limit)


class _Progress:
    """Progress of one request, written at most every PROGRESS_SECONDS (and on every heartbeat)."""

    def __init__(self, engine, request_id: int):
        self.engine, self.request_id = engine, request_id
        self.lock = threading.Lock()
        self.planned: Optional[int] = None
        self.done, self.current, self.written = 0, None, 0.0

    def plan(self, jobs: int) -> None:
        with self.lock:
            self.planned = jobs
            self.write()

    def step(self, label: str) -> None:
        with self.lock:
            self.done += 1
            self.current = one_line(label)[:stored.CURRENT_LENGTH]
            if time.monotonic() - self.written >= PROGRESS_SECONDS:
                self.write()

    def beat(self) -> None:
        with self.lock:
            self.write()

    def write(self) -> None:
        try:
            with writing(self.engine) as session:
                stored.progress(session, self.request_id, now(), state="running", planned=self.planned,
                                done=self.done, current=self.current)
        except stored.StoreBusy:
            log.info("scan request %s: progress not written (the store is busy); the next write catches up",
                     self.request_id)
        self.written = time.monotonic()


def execute(engine, db_url: str, request_id: int, *, catalog_path: Optional[str] = None,
            exceptions_path: Optional[str] = None, scan: Optional[Callable] = None) -> dict:
    """Run the request's scan now (in this thread) and record how it ended; the request as it is then."""
    if scan is None:
        from auditbook.scan import run_scan as scan
    with reading(engine) as session:
        request = stored.get(session, request_id)
    opts, progress = request["options"], _Progress(engine, request_id)
    stop = threading.Event()
    beating = threading.Thread(target=_heartbeat, args=(progress, stop), daemon=True, name=f"scan-{request_id}-beat")
    beating.start()
    try:
        with writing(engine) as session:
            stored.progress(session, request_id, now(), state="running", started_at=now())
        result = scan(accounts_file=Path(opts["accounts_file"]) if opts.get("accounts_file") else None,
                      org_role=opts.get("org_role"), regions=opts.get("regions"), db=db_url,
                      profile=opts.get("profile"), criterion=opts.get("criterion"),
                      catalog_path=Path(catalog_path) if catalog_path else None,
                      exceptions_path=Path(exceptions_path) if exceptions_path else None,
                      on_plan=progress.plan, on_progress=progress.step)
        outcome = {"state": "done", "run_id": result.run_id, "error": None}
    except UserError as exc:
        outcome = {"state": "failed", "run_id": None, "error": one_line(str(exc))}
    except Exception as exc:  # noqa: BLE001 — the request records it as its error, and the log keeps the traceback
        log.exception("scan request %s failed", request_id)
        outcome = {"state": "failed", "run_id": None, "error": f"{type(exc).__name__}: {one_line(str(exc))}"}
    finally:
        stop.set()
        beating.join()
        progress.beat()  # the last steps (written at most every PROGRESS_SECONDS) are kept too
    return _finish(engine, request_id, outcome)


def _heartbeat(progress: _Progress, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        progress.beat()


def _finish(engine, request_id: int, outcome: dict) -> dict:
    at = now()
    error = outcome["error"][:stored.ERROR_LENGTH] if outcome["error"] else None
    with writing(engine) as session:
        stored.release(session, request_id, outcome["state"], at, run_id=outcome["run_id"], error=error)
        audit_log.record(session, SYSTEM, "finish_scan", "scan", request_id,
                         after={"state": outcome["state"], "run_id": outcome["run_id"]}, note=error, at=at)
        return stored.get(session, request_id)


def start_in_background(engine, db_url: str, request_id: int, **kwargs) -> threading.Thread:
    """Run execute() in a daemon thread of this process (the control room's server)."""
    thread = threading.Thread(target=execute, args=(engine, db_url, request_id), kwargs=kwargs, daemon=True,
                              name=f"scan-request-{request_id}")
    thread.start()
    return thread
