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

from auditbook.cli.common import CATALOG_OPT, DB_OPT, err, group, out
from auditbook.errors import UserError, shown

evidence_app = group("evidence", "Manual evidence: documents for criteria, with owner and effective date.")


@evidence_app.command("add")
def evidence_add(
    criterion: str = typer.Argument(..., metavar="CRITERION"),
    file: Path = typer.Argument(..., metavar="FILE"),
    effective_date: str = typer.Option(..., "--effective-date", help="YYYY-MM-DD: the date the evidence speaks for."),
    owner: str = typer.Option(..., "--owner"),
    item: Optional[str] = typer.Option(None, "--item", help="Which required item (when the criterion has several)."),
    uploaded_by: Optional[str] = typer.Option(None, "--uploaded-by", help="Default: the current user."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Store a document as manual evidence for a criterion (SHA-256, owner, uploader, expiry from cadence)."""
    from auditbook.catalog.model import load_catalog
    from auditbook.evaluate.manual_evidence import parse_date
    from auditbook.scan import add_evidence
    from auditbook.store.db import open_engine
    cat = load_catalog(catalog)
    effective = parse_date(effective_date, "--effective-date")
    row = add_evidence(open_engine(db, writable=True), cat, criterion, file, effective=effective, owner=owner,
                       item=item, uploaded_by=uploaded_by)
    lapses = f"lapses {row.expires_on}" if row.expires_on else "does not lapse (per event)"
    out.print(f"{escape(row.criterion)} / {escape(row.item)}: {escape(row.filename)} sha256 {row.sha256[:16]}…, "
              f"effective {row.effective_date}, {lapses}")


def _evidence_json(r) -> dict:
    e = r.evidence
    return {"criterion": r.criterion, "item": r.item, "cadence": r.cadence, "state": r.state,
            "lapses": str(r.due) if r.due else None,
            "evidence": None if e is None else {
                "filename": e.filename, "sha256": e.sha256, "owner": e.owner, "uploaded_by": e.uploaded_by,
                "uploaded_at": e.uploaded_at.isoformat(), "effective_date": str(e.effective_date),
                "expires_on": str(e.expires_on) if e.expires_on else None}}


@evidence_app.command("list")
def evidence_list(
    on: Optional[str] = typer.Option(None, "--on", help="YYYY-MM-DD (default today): state on this date."),
    due: bool = typer.Option(False, "--due", help="Only items missing or expired."),
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
    day = parse_date(on, "--on") if on else dt.date.today()
    rows = evidence_status(open_engine(db, create=False), load_catalog(catalog), day)
    rows = [r for r in rows if r.state != "current"] if due else rows
    if fmt == "json":
        sys.stdout.write(json.dumps([_evidence_json(r) for r in rows], indent=2) + "\n")
        return
    table = Table(title=f"Manual evidence on {day}")
    for col in ("criterion", "item", "cadence", "state", "file", "owner", "effective", "lapses"):
        table.add_column(col, overflow="fold")
    colour = {"current": "green", "expired": "red", "missing": "yellow"}
    for r in rows:
        e = r.evidence
        table.add_row(r.criterion, escape(r.item), r.cadence, f"[{colour[r.state]}]{r.state}",
                      escape(e.filename) if e else "", escape(e.owner) if e else "",
                      str(e.effective_date) if e else "", str(e.expires_on or "") if e else "")
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
