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

from auditbook.cli.common import CATALOG_OPT, DB_OPT, group, out
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
