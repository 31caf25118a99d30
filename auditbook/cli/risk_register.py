"""`auditbook exceptions`: the accepted-risk register (exceptions.yaml) — list, add, remove."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from auditbook.cli.common import CATALOG_OPT, DB_OPT, group, operator, out

exceptions_app = group("exceptions", "The exception register: accepted risks with owner, approver and expiry.")
EXC_FILE = typer.Option(None, "--file", help="Exception register (default: exceptions.yaml here).")


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
