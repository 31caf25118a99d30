"""`auditbook app-audit ingest | list`: the application's audit events from CloudWatch Logs
(app-audit.yml; docs/app-audit.md)."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from auditbook.cli.common import DB_OPT, OutputFormat, err, group, out

app_audit = group("app-audit", "Application audit events (data access, system changes, admin actions) read "
                               "from CloudWatch Logs: evidence for CC6.3 and CC8.1, and an alert source.")
KIND_CHOICES = ("data_access", "system_change", "admin_action", "other")


@app_audit.command("ingest")
def ingest(
    config: Path = typer.Option(..., "--config", help="app-audit.yml: the log groups and field names."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="Alerting rules (default: the bundled alerts.yml)."),
    db: Optional[str] = DB_OPT,
):
    """Read new events from each log group's checkpoint, raise app_events alerts (exit 1: a log group unread)."""
    from auditbook.monitor.app_audit import ingest as ingest_all
    from auditbook.monitor.app_audit_config import load_config
    from auditbook.monitor.rules import load_rules
    from auditbook.store.db import open_engine
    parsed, loaded = load_config(config), load_rules(rules)  # every input checked first
    results = ingest_all(open_engine(db, writable=True), parsed, loaded)
    for name, r in results.items():
        covered = (f"covered {r.covered[0]:%Y-%m-%d %H:%M} to {r.covered[1]:%Y-%m-%d %H:%M} UTC"
                   if r.covered else "not covered")
        out.print(f"{escape(name)}: {r.kept} new events, {r.unread} unreadable, {r.matches} matches, "
                  f"{r.fired} alerts raised; {covered}")
        for where, reason in r.bad_files:
            err.print(f"[yellow]evidence gap[/yellow] {escape(where)}: {escape(reason)}")
    if any(r.source_error for r in results.values()):
        raise typer.Exit(1)


def _day(value: Optional[str], option: str) -> Optional[dt.datetime]:
    from auditbook.errors import UserError, shown
    if value is None:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), dt.timezone.utc)
    except ValueError:
        raise UserError(f"{option}: {shown(value)} is not a date (YYYY-MM-DD)") from None


@app_audit.command("list")
def list_events(
    since: Optional[str] = typer.Option(None, "--since", help="From this day (YYYY-MM-DD, UTC)."),
    until: Optional[str] = typer.Option(None, "--until", help="To the end of this day (YYYY-MM-DD, UTC)."),
    kind: Optional[str] = typer.Option(None, "--kind", help="data_access, system_change, admin_action or other."),
    unread: bool = typer.Option(False, "--unread", help="The events that could not be read (evidence gaps)."),
    limit: int = typer.Option(200, "--limit", min=1, max=100000),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format"),
    db: Optional[str] = DB_OPT,
):
    """The stored application audit events, oldest first (the newest `--limit`)."""
    from auditbook.errors import UserError, shown
    from auditbook.history.app_events import list_events as listed
    from auditbook.store.db import open_engine
    if kind is not None and kind not in KIND_CHOICES:
        raise UserError(f"--kind: {shown(kind)} is not one of {', '.join(KIND_CHOICES)}")
    end = _day(until, "--until")
    rows, total = listed(open_engine(db, create=False), _day(since, "--since"),
                         end + dt.timedelta(days=1) if end else None, kind, unread, limit)
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(rows, indent=1, default=str) + "\n")
        return
    table = Table("time (UTC)", "kind", "user", "source IP", "action", "outcome", "resource", "log group",
                  "why unread" if unread else "user agent")
    for r in rows:
        table.add_row(f"{r['at']:%Y-%m-%d %H:%M:%S}", escape(r["kind"] or "-"), escape(r["user"]),
                      escape(r["source_ip"]), escape(r["action"]), escape(r["outcome"]), escape(r["resource"]),
                      escape(f"{r['account']}/{r['region']}/{r['log_group']}"),
                      escape(r["unread"] if unread else r["user_agent"]))
    out.print(table)
    out.print(f"{len(rows)} of {total} events")
