"""`auditbook scan` as a function: catalog → targets → collection → findings → store; and the
services that combine evaluate's rules with the store for what a run takes into account: manual
evidence on file (add_evidence, decide_evidence, evidence_documents, evidence_status) and the exception register's audit trail."""
from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from botocore.exceptions import BotoCoreError

from auditbook import __version__
from auditbook.auth import Actor, authorize
from auditbook.catalog.model import Catalog, load_catalog
from auditbook.collect.clients import ClientCache
from auditbook.collect.distributed import (
    LOCAL,
    collect_distributed,
    connect,
    dask_address,
)
from auditbook.collect.memory import limit_malloc_arenas
from auditbook.collect.plan import Boundary, apply_boundary, left_out, needed_types
from auditbook.collect.ratelimit import RateLimits
from auditbook.collect.runner import Collection, Runner, planned_jobs
from auditbook.collect.targets import (
    TargetSpec,
    current_target,
    load_accounts_file,
    parse_regions,
    resolve_regions,
    specs_from_file,
    specs_from_org,
    targets_from_file,
    targets_from_org,
)
from auditbook.errors import UserError, one_line, shown
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
from auditbook.store.evidence_objects import EvidenceBucket
from auditbook.store.item_populations import item_populations
from auditbook.store.runs import save_run
from auditbook.store.session import reading, writing


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


def closed_checks(catalog: Catalog, check_ids: set[str]) -> Catalog:
    """The catalog cut down to `check_ids` plus every other check on the resource types they read,
    repeated until nothing new is needed. A run that collects a type must evaluate every check on it,
    or the store would take the missing findings for resolved ones."""
    unknown = sorted(check_ids - {c.id for c in catalog.checks})
    if unknown:
        raise UserError(f"checks: {shown(unknown[0])} is not a check in the catalog")
    chosen = set(check_ids)
    while True:
        types = {t.name for t in needed_types(catalog, chosen)}
        more = {c.id for c in catalog.checks if c.resource in types} - chosen
        if not more:
            return catalog.model_copy(update={"checks": [c for c in catalog.checks if c.id in chosen]})
        chosen |= more


def client_cache(pool: int, profile: Optional[str], rate_limits: Optional[RateLimits] = None) -> ClientCache:
    """The scan's AWS clients; a profile that does not exist (or a broken AWS config) is one line."""
    try:
        return ClientCache(pool=pool, profile=profile, rate_limits=rate_limits)
    except BotoCoreError as exc:
        raise UserError(f"{'--profile' if profile else 'AWS configuration'}: {one_line(str(exc))}")


def run_scan(*, accounts_file: Optional[Path] = None, org_role: Optional[str] = None,
             regions: Optional[str] = None, db: Optional[str] = None, profile: Optional[str] = None,
             catalog_path: Optional[Path] = None, workers: int = 12, exceptions_path: Optional[Path] = None,
             on_plan: Optional[Callable[[int], None]] = None,
             on_progress: Optional[Callable[[str], None]] = None,
             criterion: Optional[str] = None, at: Optional[dt.datetime] = None,
             simulated: Optional[str] = None, executor: str = LOCAL, rate_limits: Optional[RateLimits] = None,
             evidence_bucket: Optional[EvidenceBucket] = None) -> ScanResult:
    """`criterion`: collect and evaluate only what that criterion's checks need. `at` and `simulated`
    are for the demo's simulated quarter: the run is stamped `at` and labelled with `simulated`.
    `executor`: "local" (this process's threads) or a Dask scheduler (collect.distributed).
    `rate_limits`: per (account, region, service) (collect.ratelimit). `evidence_bucket`: the run's
    evidence kept in that S3 bucket under Object Lock (store.evidence_objects), the store keeping hashes."""
    limit_malloc_arenas()
    catalog = whole_catalog = load_catalog(catalog_path)  # every input is validated before AWS or the store
    accounts_spec = load_accounts_file(accounts_file) if accounts_file else None
    parse_regions(regions)
    dask_address(executor)
    register = load_register(exceptions_path, required=exceptions_path is not None,
                             known_checks={c.id for c in catalog.checks})
    if criterion is not None:
        if criterion not in {c.id for c in catalog.controls}:
            raise UserError(f"criterion: {shown(criterion)} is not a criterion in the catalog")
        catalog = closed_checks(catalog, {c.id for c in catalog.checks_for(criterion)})
    cluster = connect(executor) if executor != LOCAL else None  # no scheduler: refused before the store
    try:
        engine = open_engine(db, writable=True)  # a store that cannot take the run is refused before collecting
        started = at or dt.datetime.now(dt.timezone.utc)
        t0 = time.perf_counter()
        clients = client_cache(workers * 2, profile, rate_limits)
        plan = ScanPlan(clients, boundary_at(engine, started), accounts_file, accounts_spec, org_role, regions,
                        needed_types(catalog), workers, rate_limits)
        collection, accounts, region_list, all_regions = plan.collect(cluster, on_plan, on_progress)
    finally:
        if cluster is not None:
            cluster.close()
    params = {"accounts_file": str(accounts_file) if accounts_file else None, "org_role": org_role,
              "regions": region_list, "regions_requested": all_regions, "profile": profile, "catalog": catalog.path,
              "resource_types": [r.name for r in plan.rtypes], "criterion": criterion, "simulated": simulated,
              "executor": "local" if executor == LOCAL else "dask", "throttled": collection.throttled}
    finished = started + dt.timedelta(seconds=time.perf_counter() - t0)
    run_id, findings, summary = record_run(engine, catalog, register, collection, accounts, params, started, finished,
                                           evidence_bucket)
    return ScanResult(run_id, resolve_url(db), summary, findings, collection,
                      time.perf_counter() - t0, accounts, region_list, whole_catalog)


@dataclass
class ScanPlan:
    """What a scan reads (accounts, regions, resource types) and how: with this process's threads, or
    on a Dask cluster, where the accounts are decided without assuming any role (collect.distributed)."""
    clients: ClientCache
    boundary: Boundary
    accounts_file: Optional[Path]
    accounts_spec: object
    org_role: Optional[str]
    regions: Optional[str]
    rtypes: list
    workers: int
    rate_limits: Optional[RateLimits] = None

    def collect(self, cluster, on_plan, on_progress) -> tuple[Collection, list[dict], list[str], list[str]]:
        """(collection, accounts, regions read, regions requested); excluded regions are never read."""
        if cluster is None:
            targets = scan_targets(self.clients, self.boundary, self.accounts_file, self.accounts_spec, self.org_role)
            all_regions = resolve_regions(targets, self.regions, self.clients)
        else:
            specs = scan_specs(self.clients, self.boundary, self.accounts_file, self.accounts_spec, self.org_role)
            listed = self.regions and parse_regions(self.regions) is None  # "all": the coordinator's account's
            all_regions = resolve_regions([current_target(self.clients)] if listed else [], self.regions, self.clients)
        region_list = [r for r in all_regions if r not in self.boundary.regions_out()]
        if on_plan:
            on_plan(planned_jobs(targets if cluster is None else specs, region_list, self.rtypes))
        if cluster is not None:
            collection, accounts = collect_distributed(cluster, specs, region_list, self.rtypes, all_regions[0],
                                                       self.workers, on_progress, self.rate_limits)
            collection.calls += self.clients.calls  # and the coordinator's own (identity, accounts, regions)
            collection.calls_by_operation = dict(sorted((Counter(collection.calls_by_operation)
                                                         + self.clients.calls_by_operation).items()))
            return collection, accounts, region_list, all_regions
        collection = Runner(workers=self.workers, on_progress=on_progress, clients=self.clients).run(
            targets, region_list, self.rtypes, global_region=all_regions[0])
        accounts = [{"account": t.account, "name": t.name, "role": t.role_arn, "identity": t.identity,
                     "error": t.error, **({"out_of_scope": t.out_of_scope} if t.out_of_scope else {})}
                    for t in targets]
        return collection, accounts, region_list, all_regions


def boundary_at(engine, at: dt.datetime) -> Boundary:
    """The out-of-scope entries in force at `at` (history.scope keeps them in the store's settings)."""
    with reading(engine) as session:
        return Boundary.in_force(stored_scope.read_scope(session)["entries"], at)


def scan_targets(clients: ClientCache, boundary: Boundary, accounts_file: Optional[Path], accounts_spec,
                 org_role: Optional[str]) -> list:
    """The accounts the scan covers; those out of scope are listed with their entry and never reached."""
    skip = boundary.accounts_out()
    if accounts_file:
        return targets_from_file(clients, accounts_spec, accounts_file, skip)
    if org_role:
        return targets_from_org(clients, org_role, skip)
    target = current_target(clients)
    target.out_of_scope = skip.get(target.account)
    return [target]


def scan_specs(clients: ClientCache, boundary: Boundary, accounts_file: Optional[Path], accounts_spec,
               org_role: Optional[str]) -> list[TargetSpec]:
    """The accounts a distributed scan covers, decided with the current credentials and no role assumed
    (the workers assume them): those out of scope carry their entry and get no task."""
    skip = boundary.accounts_out()
    if accounts_file:
        return specs_from_file(clients, accounts_spec, accounts_file, skip)
    if org_role:
        return specs_from_org(clients, org_role, skip)
    me = current_target(clients)
    return [TargetSpec(me.account, "current", out_of_scope=skip.get(me.account))]


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
