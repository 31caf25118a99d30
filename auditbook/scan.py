"""`auditbook scan` as a function: catalog → targets → collection → findings → store; and the
services that combine evaluate's rules with the store for what a run takes into account: manual
evidence on file (add_evidence, decide_evidence, evidence_documents, evidence_status) and the exception register's audit trail."""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

from auditbook import __version__
from auditbook.auth import Actor, authorize
from auditbook.catalog.model import Catalog, load_catalog
from auditbook.collect.apart import CollectionProcess, CollectionRequest, for_command
from auditbook.collect.executors import INLINE, LOCAL, dask_address
from auditbook.collect.inputs import load_accounts_file, parse_regions
from auditbook.collect.memory import limit_malloc_arenas
from auditbook.collect.plan import (
    Boundary,
    apply_boundary,
    closed_checks,
    left_out,
    needed_types,
)
from auditbook.collect.records import Collection
from auditbook.errors import UserError, shown
from auditbook.evaluate.evaluator import Finding, evaluate, summarise
from auditbook.evaluate.evidence_review import (
    StaleEvidence,
    check_decision,
    checked_reason,
)
from auditbook.evaluate.manual_evidence import (
    EvidenceRecord,
    ItemStatus,
    criteria_needing,
    item_states,
    prepare_evidence,
)
from auditbook.evaluate.risk_register import Trail, apply_exceptions, load_register
from auditbook.plugins import publish_run_stored
from auditbook.store import audit_log
from auditbook.store import manual_evidence as documents
from auditbook.store import scope as stored_scope
from auditbook.store.db import open_engine, resolve_url
from auditbook.store.item_populations import item_populations
from auditbook.store.runs import save_run
from auditbook.store.session import reading, writing

if TYPE_CHECKING:  # only the collection process, inline scans and Dask scans import botocore
    from auditbook.collect.ratelimit import RateLimits
    from auditbook.store.evidence_objects import EvidenceBucket


@dataclass
class ScanResult:
    run_id: int
    db_url: str
    summary: list[dict]
    findings: list[Finding]
    collection: Collection
    seconds: float
    accounts: list[dict]
    regions: list[str]
    catalog: Optional[Catalog] = None  # the catalog the command loaded (whole, even with `criterion`)


def run_scan(*, accounts_file: Optional[Path] = None, org_role: Optional[str] = None,
             regions: Optional[str] = None, db: Optional[str] = None, profile: Optional[str] = None,
             catalog_path: Optional[Path] = None, workers: int = 12, exceptions_path: Optional[Path] = None,
             on_plan: Optional[Callable[[int], None]] = None,
             on_progress: Optional[Callable[[str], None]] = None,
             criterion: Optional[str] = None, at: Optional[dt.datetime] = None,
             simulated: Optional[str] = None, executor: str = INLINE, rate_limits: Optional[RateLimits] = None,
             evidence_bucket: Optional[EvidenceBucket] = None) -> ScanResult:
    """`criterion`: collect and evaluate only what that criterion's checks need. `at` and `simulated`
    are for the demo's simulated quarter: the run is stamped `at` and labelled with `simulated`.
    `executor` (collect.executors): "inline" (this process's threads, the default here), "local" (a
    collection process, collect.apart: the one the program started early, else one started now) or a Dask
    scheduler (collect.distributed). `rate_limits`: per (account, region, service) (collect.ratelimit). `evidence_bucket`: the run's evidence kept in that S3 bucket under Object
    Lock (store.evidence_objects), the store keeping hashes."""
    limit_malloc_arenas()
    dask_address(executor)  # a malformed --executor is refused first
    request = CollectionRequest(accounts_file, org_role, regions, profile, workers, rate_limits)
    with for_command(executor == LOCAL) as apart:
        if apart is not None:
            apart.send_request(request)  # it builds its clients while this process reads the catalog and the store
        catalog = whole_catalog = load_catalog(catalog_path)  # every input is validated before AWS or the store
        accounts_spec = load_accounts_file(accounts_file) if accounts_file else None
        parse_regions(regions)
        register = load_register(exceptions_path, required=exceptions_path is not None,
                                 known_checks={c.id for c in catalog.checks})
        if criterion is not None:
            if criterion not in {c.id for c in catalog.controls}:
                raise UserError(f"criterion: {shown(criterion)} is not a criterion in the catalog")
            catalog = closed_checks(catalog, {c.id for c in catalog.checks_for(criterion)})
        engine, started, t0, collected = collect_into(db, at, apart, request, catalog, accounts_spec, executor,
                                                      on_plan, on_progress)
    collection = collected.collection
    params = {"accounts_file": str(accounts_file) if accounts_file else None, "org_role": org_role,
              "regions": collected.regions, "regions_requested": collected.regions_requested, "profile": profile,
              "catalog": catalog.path, "resource_types": collected.resource_types, "criterion": criterion,
              "simulated": simulated, "executor": executor if executor in (LOCAL, INLINE) else "dask",
              "throttled": collection.throttled}
    finished = started + dt.timedelta(seconds=time.perf_counter() - t0)
    run_id, findings, summary = record_run(engine, catalog, register, collection, collected.accounts, params, started,
                                           finished, evidence_bucket)
    return ScanResult(run_id, resolve_url(db), summary, findings, collection,
                      time.perf_counter() - t0, collected.accounts, collected.regions, whole_catalog)


def collect_into(db: Optional[str], at: Optional[dt.datetime], apart: Optional[CollectionProcess],
                 request: CollectionRequest, catalog: Catalog, accounts_spec, executor: str,
                 on_plan, on_progress) -> tuple:
    """(the store, the run's start, its perf_counter, the Collected): the store is opened (a store that
    cannot take the run is refused before collecting) and its boundary read, then the collection made in
    the collection process, this process or on the Dask cluster."""
    cluster = None
    if dask_address(executor) is not None:
        from auditbook.collect.distributed import connect
        cluster = connect(executor)  # no scheduler: refused before the store
    try:
        engine = open_engine(db, writable=True)
        started = at or dt.datetime.now(dt.timezone.utc)
        t0 = time.perf_counter()
        boundary = boundary_at(engine, started)
        if apart is not None:
            collected = apart.collect(boundary, [r.name for r in needed_types(catalog)], accounts_spec, on_plan,
                                      on_progress)
        else:
            from auditbook.collect.scan_plan import collect_here
            collected = collect_here(request, accounts_spec, needed_types(catalog), boundary, cluster,
                                     on_plan, on_progress)
    finally:
        if cluster is not None:
            cluster.close()
    return engine, started, t0, collected


def boundary_at(engine, at: dt.datetime) -> Boundary:
    """The out-of-scope entries in force at `at` (history.scope keeps them in the store's settings)."""
    with reading(engine) as session:
        return Boundary.in_force(stored_scope.read_scope(session)["entries"], at)


def record_run(engine, catalog: Catalog, register, collection: Collection, accounts: list[dict], params: dict,
               started: dt.datetime, finished: dt.datetime,
               evidence_bucket: Optional[EvidenceBucket] = None) -> tuple[int, list[Finding], list[dict]]:
    """Apply the scope in force at `started` (collect.plan.apply_boundary: out-of-scope records are
    dropped before evaluation), evaluate the rest on the run's day (exceptions and manual evidence in
    force then) and store it, in one unit of work: the manual evidence read is the one the run
    records, and the run records what the scope left out (parameters "out_of_scope")."""
    today = started.date()
    boundary = boundary_at(engine, started)
    collection, records_left_out = apply_boundary(collection, boundary)
    params = {**params, "out_of_scope": left_out(
        boundary, records_left_out, [a["account"] for a in accounts if a.get("out_of_scope")],
        sorted(set(params.get("regions_requested") or []) - set(params.get("regions") or [])))}
    findings = apply_exceptions(evaluate(catalog, collection), register, today)
    with writing(engine) as session:
        needs = criteria_needing(item_states(catalog, documents.records(session, effective_by=today), today,
                                             **item_populations(session, None, today)))
        params = {**params,
                  # the exceptions in force are part of the run's record
                  "exceptions": [e.model_dump(mode="json") for e in register.exceptions if e.in_force(today)],
                  # and so are the criteria whose required manual evidence was missing or expired that day
                  "needs_evidence": sorted(needs)}
        summary = summarise(catalog, findings, needs)
        run_id = save_run(session, catalog_sha256=catalog.sha256, tool_version=__version__, parameters=params,
                          identities=accounts, collection=collection, findings=findings,
                          started_at=started, finished_at=finished, summary=summary, evidence_bucket=evidence_bucket)
    publish_run_stored(engine, run_id, started)  # alerting subscribes (CheckRegressed: PASS -> FAIL)
    return run_id, findings, summary


def add_evidence(engine, catalog: Catalog, criterion: str, path: Path, *, effective: dt.date, owner: str,
                 item: Optional[str] = None, uploaded_by: Optional[str] = None,
                 today: Optional[dt.date] = None, incident: Optional[int] = None,
                 actor: Optional[Actor] = None, evidence_bucket: Optional[EvidenceBucket] = None) -> EvidenceRecord:
    """Submit a document as manual evidence for a criterion: stored pending (it counts for nothing
    until a second person approves it), submitted by `actor` (default: `uploaded_by` or the login
    name, as an analyst), in the audit trail. Every input is checked (and the file read) before
    anything is written; `incident` links a per-incident item's document to its incident."""
    new = prepare_evidence(catalog, criterion, path, effective=effective, owner=owner, item=item,
                           uploaded_by=actor.name if actor else uploaded_by, today=today, incident=incident)
    submitter = actor or Actor(new.uploaded_by, "analyst")
    authorize(submitter, "submit_evidence")
    with writing(engine) as session:
        if incident is not None and not documents.incident_exists(session, incident):
            raise UserError(f"--incident: there is no incident {incident}")
        row = documents.add(session, new, uploaded_at=dt.datetime.now(dt.timezone.utc), bucket=evidence_bucket)
        audit_log.record(session, submitter, "submit_evidence", "manual_evidence", row.id,
                         after={"criterion": row.criterion, "item": row.item, "sha256": row.sha256,
                                "effective_date": str(row.effective_date), "incident_id": row.incident_id,
                                "status": row.status, "flags": row.flags})
        return row


def decide_evidence(engine, actor: Actor, evidence_id: int, version: int, decision: str,
                    reason: Optional[str]) -> EvidenceRecord:
    """Approve or reject a pending document (decision "approve" or "reject") with a reason: only with
    the approve_evidence permission, never by its submitter (two-person rule), only at the version
    the decider saw (StaleEvidence otherwise); the decision is in the audit trail."""
    authorize(actor, "approve_evidence")
    reason = checked_reason(reason)
    with writing(engine) as session:
        seen = documents.record(session, evidence_id)
        if seen is None:
            raise UserError(f"evidence: there is no document {evidence_id}")
        status = check_decision(decision, actor.name, seen.submitted_by, seen.status, evidence_id)
        at = dt.datetime.now(dt.timezone.utc)
        if seen.version != version or not documents.decide_if_version(
                session, evidence_id, version, status=status, by=actor.name, role=actor.role, at=at, reason=reason):
            raise StaleEvidence(f"evidence {evidence_id} changed since it was read (version {version}, now "
                                f"{seen.version}, {seen.status}): read it again")
        audit_log.record(session, actor, f"{decision}_evidence", "manual_evidence", evidence_id,
                         before={"status": seen.status, "version": version},
                         after={"status": status, "version": version + 1}, note=reason, at=at)
        return documents.record(session, evidence_id)


def evidence_documents(engine, status: Optional[str] = None) -> list[EvidenceRecord]:
    """Every document on file (or those in a review status: pending, approved, rejected), with its
    review and flags, by effective date."""
    with reading(engine) as session:
        return documents.records(session, status=status)


def evidence_trail(engine, evidence_id: int) -> list[dict]:
    """A document's entries in the audit trail (submitted, approved or rejected), oldest first."""
    with reading(engine) as session:
        return audit_log.trail(session, "manual_evidence", evidence_id)


def evidence_status(engine, catalog: Catalog, on: Optional[dt.date] = None,
                    since: Optional[dt.date] = None, ticket: Optional[str] = None) -> list[ItemStatus]:
    """Each required item's state on a date (default today, UTC): current, expired or missing; only
    approved documents (explained, if flagged) count, and each per-event item is matched to its
    population (store.item_populations) from `since` (default: the start of that day's quarter)."""
    on = on or dt.datetime.now(dt.timezone.utc).date()
    with reading(engine) as session:
        return item_states(catalog, documents.records(session, effective_by=on), on,
                           **item_populations(session, since, on, ticket))


def document_bytes(engine, sha256: str) -> bytes:
    """A manual evidence document's content."""
    with reading(engine) as session:
        content = documents.document(session, sha256)
    if content is None:
        raise UserError(f"no document {shown(sha256)}")
    return content


def register_trail(engine) -> Trail:
    """The exception register's audit trail in the store: each add or remove recorded as an entry of
    the audit log, in a unit of work of its own (give it to risk_register.add/remove_exception)."""
    def record_change(actor, action: str, exception_id: str, change: dict) -> None:
        with writing(engine) as session:
            audit_log.record(session, actor, action, "exception", exception_id, **change)
    return record_change
