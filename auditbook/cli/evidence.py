"""`auditbook evidence`: manual evidence — documents for criteria, with owner and effective date."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from auditbook.cli.common import CATALOG_OPT, DB_OPT, err, group, operator, out
from auditbook.errors import UserError, one_line, shown

evidence_app = group("evidence", "Manual evidence: documents for criteria, with owner and effective date, "
                                 "approved by a second person.")
MAX_ID = 2**63 - 1
EVIDENCE_OPT = typer.Option(None, "--evidence", envvar="AUDITBOOK_EVIDENCE", metavar="s3://BUCKET/PREFIX",
                            help="Keep evidence objects in this S3 bucket (Object Lock required), content-addressed "
                                 "and locked in COMPLIANCE mode: docs/evidence-store.md.")
RETENTION_OPT = typer.Option("7y", "--evidence-retention", envvar="AUDITBOOK_EVIDENCE_RETENTION", metavar="DAYS|Ny",
                             help="How long each evidence object is locked: days (2557, 2557d) or years (7y).")


def evidence_bucket(url: Optional[str], retention: str):
    """The checked --evidence bucket (None: not given): a bad URL or retention, or a bucket without
    Object Lock, is one line, exit 2, before anything is written."""
    if url is None:
        return None
    from auditbook.store.evidence_objects import open_bucket, parse_retention
    return open_bucket(url, parse_retention(retention))


@evidence_app.command("add")
def evidence_add(
    criterion: str = typer.Argument(..., metavar="CRITERION"),
    file: Path = typer.Argument(..., metavar="FILE"),
    effective_date: str = typer.Option(..., "--effective-date", help="YYYY-MM-DD: the date the evidence speaks for."),
    owner: str = typer.Option(..., "--owner"),
    item: Optional[str] = typer.Option(None, "--item", help="Which required item (when the criterion has several)."),
    incident: Optional[int] = typer.Option(None, "--incident", min=1, max=MAX_ID,
                                           help="The incident a per-incident item's document is for."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
    evidence: Optional[str] = EVIDENCE_OPT,
    retention: str = RETENTION_OPT,
):
    """Submit a document as manual evidence for a criterion (SHA-256, owner, expiry from cadence). You
    (the login name) are its submitter; it counts once a second person approves it."""
    from auditbook.catalog.model import load_catalog
    from auditbook.evaluate.manual_evidence import parse_date
    from auditbook.scan import add_evidence
    from auditbook.store.db import open_engine
    cat = load_catalog(catalog)
    effective = parse_date(effective_date, "--effective-date")
    bucket = evidence_bucket(evidence, retention)
    engine = open_engine(db, writable=True)
    row = add_evidence(engine, cat, criterion, file, effective=effective, owner=owner,
                       item=item, incident=incident, actor=operator("analyst"), evidence_bucket=bucket)
    if bucket is not None:
        where = f"s3://{bucket.bucket}/{bucket.content_key(row.sha256)}"
        out.print(f"document {row.sha256[:16]}… kept in {escape(where)} (Object Lock, COMPLIANCE)")
    lapses = f"lapses {row.expires_on}" if row.expires_on else "does not lapse (per event)"
    out.print(f"evidence {row.id}: {escape(row.criterion)} / {escape(row.item)}: {escape(row.filename)} "
              f"sha256 {row.sha256[:16]}…, effective {row.effective_date}, {lapses}; pending approval by a second "
              f"person (auditbook evidence approve {row.id} --reason …)")
    for flag in row.flags:
        err.print(f"[yellow]flag[/]: {escape(flag)}")
    per = next(m.per for m in cat.control(row.criterion).manual_evidence if m.name == row.item)
    if per in ("change", "access-change", "account"):
        option = "--account ACCOUNT" if per == "account" else "--change EVENT_ID_OR_TICKET"
        err.print(f"per {per}: name what it evidences before it is approved: auditbook evidence link {row.id} {option}")


@evidence_app.command("verify-store")
def evidence_verify_store(db: Optional[str] = DB_OPT,
                          problems_only: bool = typer.Option(False, "--problems-only",
                                                             help="List only the objects with a problem."),
                          evidence: Optional[str] = EVIDENCE_OPT):
    """Check every evidence object the store keeps in a bucket: at the content address of its SHA-256
    (in the --evidence bucket, when given), present at its recorded version, SHA-256 matching, locked in
    COMPLIANCE mode until at least the recorded retention, and no other version or delete marker on its
    key. Exit 1 if any is not so."""
    from auditbook.store.db import open_engine
    from auditbook.store.evidence_worm import verify_store
    expected = evidence_bucket(evidence, "7y") if evidence else None
    checked = bad = 0
    for found in verify_store(open_engine(db, create=False), expected):
        checked += 1
        bad += not found.ok
        until = found.retain_until.isoformat() if found.retain_until else "-"
        if found.ok and not problems_only:
            out.print(f"ok {found.kind} {found.sha256[:16]}… {escape(found.url)} version {escape(str(found.version))} "
                      f"{found.mode} until {until}", soft_wrap=True)
        for problem in found.problems:
            sys.stderr.write(one_line(f"PROBLEM {found.kind} {found.sha256} {found.url} version {found.version}: "
                                      f"{problem}") + "\n")
    out.print(f"{checked} objects checked, {bad} with problems")
    if bad:
        raise typer.Exit(1)


@evidence_app.command("move-to-bucket")
def evidence_move_to_bucket(evidence: Optional[str] = EVIDENCE_OPT, retention: str = RETENTION_OPT,
                            db: Optional[str] = DB_OPT):
    """Move the API responses and documents an existing store holds itself into the evidence bucket
    (content-addressed, locked): the store keeps only where each is. Safe to run again."""
    from auditbook.store.db import open_engine
    from auditbook.store.evidence_worm import move_store_to_bucket
    bucket = evidence_bucket(evidence, retention)
    if bucket is None:
        raise UserError("--evidence: required (s3://BUCKET/PREFIX, or AUDITBOOK_EVIDENCE)")
    responses, documents = move_store_to_bucket(open_engine(db, create=False, writable=True), bucket)
    out.print(f"moved to {escape(bucket.url)}: {responses} API responses, {documents} documents", soft_wrap=True)


VERSION_HELP = ("The version you read (`evidence list --pending`): the decision is refused if the document "
                "changed since. Required once its submitter has explained or linked it.")


def _decide(evidence_id: int, reason: Optional[str], decision: str, db: Optional[str],
            version: Optional[int] = None) -> None:
    from auditbook.evaluate.evidence_review import checked_reason
    from auditbook.scan import decide_evidence, evidence_documents
    from auditbook.store.db import open_engine
    checked_reason(reason)  # bad input is refused before the store is opened
    engine = open_engine(db, create=False, writable=True)
    seen = next((r for r in evidence_documents(engine) if r.id == evidence_id), None)
    if seen is None:
        raise UserError(f"ID: there is no document {evidence_id}")
    if version is None and seen.version > 1:  # annotated since it was submitted: decide on what you read
        raise UserError(f"--version: document {evidence_id} was explained or linked by its submitter after it was "
                        f"submitted (now version {seen.version}); read it (`evidence list --pending`) and give "
                        f"--version {seen.version}")
    row = decide_evidence(engine, operator("approver"), evidence_id, seen.version if version is None else version,
                          decision, reason)
    out.print(f"evidence {row.id}: {escape(row.criterion)} / {escape(row.item)}: {row.status} by "
              f"{escape(row.decided_by or '')}")
    if row.approved and row.uncovered:
        err.print(f"[yellow]does not count[/]: {escape(row.uncovered)}")


@evidence_app.command("approve")
def evidence_approve(evidence_id: int = typer.Argument(..., metavar="ID", min=1, max=MAX_ID),
                     reason: Optional[str] = typer.Option(None, "--reason", help="Why it is accepted (required)."),
                     version: Optional[int] = typer.Option(None, "--version", min=1, max=MAX_ID, help=VERSION_HELP),
                     db: Optional[str] = DB_OPT):
    """Approve a pending document (you must not be its submitter): from now on it counts for its criterion."""
    _decide(evidence_id, reason, "approve", db, version)


@evidence_app.command("reject")
def evidence_reject(evidence_id: int = typer.Argument(..., metavar="ID", min=1, max=MAX_ID),
                    reason: Optional[str] = typer.Option(None, "--reason", help="Why it is refused (required)."),
                    version: Optional[int] = typer.Option(None, "--version", min=1, max=MAX_ID, help=VERSION_HELP),
                    db: Optional[str] = DB_OPT):
    """Reject a pending document with a reason (you must not be its submitter): it never counts."""
    _decide(evidence_id, reason, "reject", db, version)


def _annotate(evidence_id: int, db: Optional[str], catalog: Optional[Path], **fields) -> None:
    from auditbook.catalog.model import load_catalog
    from auditbook.history.evidence_events import annotate_evidence
    from auditbook.scan import evidence_documents
    from auditbook.store.db import open_engine
    cat = load_catalog(catalog)
    engine = open_engine(db, create=False, writable=True)
    seen = next((r for r in evidence_documents(engine) if r.id == evidence_id), None)
    if seen is None:
        raise UserError(f"ID: there is no document {evidence_id}")
    row = annotate_evidence(engine, cat, operator("analyst"), evidence_id, seen.version, **fields)
    linked = f", evidences {escape(row.subject)}" if row.subject else ""
    explained = ", explained" if row.explanation else ""
    out.print(f"evidence {row.id}: {escape(row.criterion)} / {escape(row.item)}{linked}{explained}; pending approval "
              f"by a second person (auditbook evidence approve {row.id} --reason …)")


@evidence_app.command("explain")
def evidence_explain(evidence_id: int = typer.Argument(..., metavar="ID", min=1, max=MAX_ID),
                     explanation: Optional[str] = typer.Option(None, "--explanation",
                                                               help="Why it came late or is dated back (required)."),
                     db: Optional[str] = DB_OPT, catalog: Optional[Path] = CATALOG_OPT):
    """Explain your pending document flagged late or backdated: it covers its period only once approved
    with its explanation by a second person."""
    from auditbook.evaluate.evidence_review import checked_explanation
    checked_explanation(explanation)  # bad input is refused before the store is opened
    _annotate(evidence_id, db, catalog, explanation=explanation)


@evidence_app.command("link")
def evidence_link(evidence_id: int = typer.Argument(..., metavar="ID", min=1, max=MAX_ID),
                  change: Optional[str] = typer.Option(None, "--change", help="The CloudTrail event id or ticket it "
                                                       "evidences (per-change items)."),
                  account: Optional[str] = typer.Option(None, "--account", help="The account it reviews "
                                                        "(per-account items)."),
                  db: Optional[str] = DB_OPT, catalog: Optional[Path] = CATALOG_OPT):
    """Link your pending document to the change or account it evidences (`per: change`,
    `per: access-change` or `per: account` items)."""
    if (change is None) == (account is None):
        raise UserError("give one of --change or --account")
    _annotate(evidence_id, db, catalog, change=change, account=account)


def _document_json(e) -> dict:
    return {"id": e.id, "criterion": e.criterion, "item": e.item, "filename": e.filename, "sha256": e.sha256,
            "owner": e.owner, "uploaded_by": e.uploaded_by, "submitted_by": e.submitted_by,
            "uploaded_at": e.uploaded_at.isoformat(), "effective_date": str(e.effective_date),
            "expires_on": str(e.expires_on) if e.expires_on else None, "status": e.status,
            "decided_by": e.decided_by, "decided_at": e.decided_at.isoformat() if e.decided_at else None,
            "reason": e.reason, "incident_id": e.incident_id, "subject": e.subject, "explanation": e.explanation,
            "version": e.version, "flags": e.flags, "counts": e.counts, "does_not_count": e.uncovered}


def _evidence_json(r) -> dict:
    e = r.evidence
    return {"criterion": r.criterion, "item": r.item, "cadence": r.cadence, "state": r.state,
            "lapses": str(r.due) if r.due else None, "per": r.per,
            "missing_incidents": r.missing_events if r.per == "incident" else [],
            "not_evidenced": r.missing_events, "reasons": r.reasons,
            "evidence": None if e is None else _document_json(e),
            "awaiting_approval": [_document_json(w) for w in r.waiting if w.status == "pending"],
            "not_counted": [_document_json(w) for w in r.waiting if w.status != "pending"]}


def _pending(db: Optional[str], fmt: str) -> None:
    from auditbook.scan import evidence_documents
    from auditbook.store.db import open_engine
    rows = evidence_documents(open_engine(db, create=False), status="pending")
    if fmt == "json":
        sys.stdout.write(json.dumps([_document_json(r) for r in rows], indent=2) + "\n")
        return
    table = Table(title="Manual evidence awaiting approval")
    for col in ("id", "version", "criterion", "item", "file", "submitted by", "uploaded", "effective", "evidences",
                "flags"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(str(r.id), str(r.version), r.criterion, escape(r.item), escape(r.filename),
                      escape(r.submitted_by), f"{r.uploaded_at:%Y-%m-%d}", str(r.effective_date),
                      escape(r.subject or ""), escape("; ".join(r.flags)))
    out.print(table)
    out.print(f"{len(rows)} pending")


def _note(r) -> str:
    """Why the item is not current (members not evidenced, documents that do not count), and the
    flags of the document that makes it current."""
    parts = [escape(reason) for reason in r.reasons]
    if r.evidence is not None and r.evidence.flags:
        parts.append(escape("; ".join(r.evidence.flags)))
    return "; ".join(parts)


@evidence_app.command("list")
def evidence_list(
    on: Optional[str] = typer.Option(None, "--on", help="YYYY-MM-DD (default today): state on this date."),
    since: Optional[str] = typer.Option(None, "--since", help="YYYY-MM-DD: the period's start (per-event items are "
                                        "matched to the incidents, changes and accounts from then; default: ever)."),
    due: bool = typer.Option(False, "--due", help="Only items missing or expired."),
    pending: bool = typer.Option(False, "--pending", help="The documents awaiting approval (with their flags)."),
    fmt: str = typer.Option("table", "--format", help="table or json"),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """What manual evidence each criterion has on a date, and what is due."""
    from auditbook.catalog.model import load_catalog
    from auditbook.evaluate.manual_evidence import parse_date
    from auditbook.scan import evidence_status
    from auditbook.store.db import open_engine
    if fmt not in ("table", "json"):
        raise UserError(f"--format: {shown(fmt)} is not table or json")
    if pending:
        return _pending(db, fmt)
    day = parse_date(on, "--on") if on else dt.date.today()
    start = parse_date(since, "--since") if since else None
    if start is not None and start > day:
        raise UserError(f"--since: {start} is after --on {day}")
    rows = evidence_status(open_engine(db, create=False), load_catalog(catalog), day, since=start)
    rows = [r for r in rows if r.state != "current"] if due else rows
    if fmt == "json":
        sys.stdout.write(json.dumps([_evidence_json(r) for r in rows], indent=2) + "\n")
        return
    table = Table(title=f"Manual evidence on {day}")
    for col in ("criterion", "item", "cadence", "state", "file", "owner", "effective", "lapses", "note"):
        table.add_column(col, overflow="fold")
    colour = {"current": "green", "expired": "red", "missing": "yellow"}
    for r in rows:
        e = r.evidence
        table.add_row(r.criterion, escape(r.item), r.cadence, f"[{colour[r.state]}]{r.state}",
                      escape(e.filename) if e else "", escape(e.owner) if e else "",
                      str(e.effective_date) if e else "", str(e.expires_on or "") if e else "", _note(r))
    out.print(table)
    counts = {s: sum(1 for r in rows if r.state == s) for s in ("current", "expired", "missing")}
    out.print(f"{counts['current']} current, {counts['expired']} expired, {counts['missing']} missing")


@evidence_app.command("remind")
def evidence_remind(
    notify: Path = typer.Option(Path("notify.yml"), "--notify", help="notify.yml: the channels, each with the "
                                "owners it takes (`owners:`; \"*\": every other owner)."),
    within: int = typer.Option(14, "--within", help="Days before an item lapses that its owner is told."),
    on: Optional[str] = typer.Option(None, "--on", help="YYYY-MM-DD (default today, UTC): the day reminded for."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what is due and where it would go; send nothing."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Tell each owner which manual evidence is missing, expired or lapses soon, on their channel
    (Slack, e-mail); recorded, and not sent twice the same day. Run it daily (cron), or let
    `auditbook watch` do it. Exit 1 when a reminder failed or an owner has no channel."""
    from auditbook.catalog.model import load_catalog
    from auditbook.evaluate.manual_evidence import parse_date
    from auditbook.monitor.notify import load_channels
    from auditbook.monitor.reminders import remind
    from auditbook.store.db import open_engine
    cat, channels = load_catalog(catalog), load_channels(notify)
    day = parse_date(on, "--on") if on else None
    engine = open_engine(db, create=False, writable=not dry_run)
    result = remind(engine, cat, channels, day=day, within=within, dry_run=dry_run)
    verb = "would send" if dry_run else "sent"
    for row in result.sent:
        out.print(f"{verb}: {escape(row['owner'])} via {row['channel']}: {escape(row['criterion'])} "
                  f"{escape(row['item'])} ({row['state']})")
    for row in result.failed:
        err.print(f"[red]failed[/]: {escape(row['owner'])} via {row['channel']}: {escape(row['criterion'])} "
                  f"{escape(row['item'])}: {escape(row['error'] or '')}")
    for owner in result.unrouted:
        err.print(f"[yellow]no channel[/] takes {escape(owner)}'s reminders (name them under a channel's `owners:` "
                  f"in {escape(str(notify))}, or add \"*\")")
    out.print(f"{result.day}: {len(result.due)} item(s) due; {len(result.sent)} reminder(s) "
              f"{'would be sent' if dry_run else 'sent'}, "
              f"{len(result.failed)} failed, {result.already} already sent today, {len(result.unrouted)} owner(s) "
              "without a channel")
    if result.failed or result.unrouted:
        raise typer.Exit(1)
