"""`auditbook evidence` (manual evidence) and `auditbook exceptions` (the accepted-risk register)."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from auditbook.cli.common import CATALOG_OPT, DB_OPT, group, operator, out
from auditbook.errors import UserError, shown

evidence_app = group("evidence", "Manual evidence: documents for criteria, with owner and effective date.")
exceptions_app = group("exceptions", "The exception register: accepted risks with owner, approver and expiry.")
EXC_FILE = typer.Option(None, "--file", help="Exception register (default: exceptions.yaml here).")


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


@exceptions_app.command("list")
def exceptions_list(file: Optional[Path] = EXC_FILE):
    """Every exception, in force or expired."""
    from auditbook.evaluate.risk_register import load_register
    register = load_register(file)
    table = Table(title="Exception register")
    for col in ("id", "check", "account", "resource", "owner", "approver", "expires", "state", "justification"):
        table.add_column(col, overflow="fold")
    today = dt.date.today()
    for e in register.exceptions:
        state = "[green]in force" if e.in_force(today) else "[red]expired"
        table.add_row(escape(e.id), escape(e.check), e.account, escape(e.resource), escape(e.owner),
                      escape(e.approver), str(e.expires), state, escape(e.justification))
    out.print(table)


@exceptions_app.command("add")
def exceptions_add(
    exception_id: str = typer.Argument(..., metavar="ID"),
    check: str = typer.Option(..., "--check"),
    owner: str = typer.Option(..., "--owner"),
    justification: str = typer.Option(..., "--justification"),
    approver: str = typer.Option(..., "--approver"),
    expires: str = typer.Option(..., "--expires", help="YYYY-MM-DD"),
    account: str = typer.Option("*", "--account", help="12-digit account id, or * for any."),
    resource: str = typer.Option("*", "--resource", help="Pattern (fnmatch) over the resource ARN/id or name."),
    file: Optional[Path] = EXC_FILE,
    catalog: Optional[Path] = CATALOG_OPT,
    db: Optional[str] = DB_OPT,
):
    """Add an exception (refused without owner, justification, approver and expiry)."""
    from auditbook.catalog.model import load_catalog
    from auditbook.evaluate.risk_register import add_exception
    from auditbook.scan import register_trail
    from auditbook.store.db import open_engine
    fields = {"id": exception_id, "check": check, "owner": owner, "justification": justification,
              "approver": approver, "expires": expires, "account": account, "resource": resource}
    entry = add_exception(fields, {c.id for c in load_catalog(catalog).checks}, file, actor=operator("admin"),
                          trail=register_trail(open_engine(db, writable=True)))
    out.print(f"added {escape(entry.id)}: {escape(check)} until {entry.expires}")


@exceptions_app.command("remove")
def exceptions_remove(exception_id: str = typer.Argument(..., metavar="ID"), file: Optional[Path] = EXC_FILE,
                      db: Optional[str] = DB_OPT):
    """Remove an exception."""
    from auditbook.evaluate.risk_register import remove_exception
    from auditbook.scan import register_trail
    from auditbook.store.db import open_engine
    remove_exception(exception_id, file, actor=operator("admin"), trail=register_trail(open_engine(db, writable=True)))
    out.print(f"removed {escape(exception_id)}")
