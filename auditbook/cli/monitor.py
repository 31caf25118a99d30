"""`auditbook watch`, `runbook`, `exporter`: monitoring and containment (`auditbook alerts` is
cli/alerts.py, registered from here)."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
import typer.main
from rich.markup import escape
from typer.core import TyperGroup

from auditbook.cli import alerts  # noqa: F401 (registers the `alerts` group)
from auditbook.cli.common import CATALOG_OPT, DB_OPT, app, err, group, operator, out
from auditbook.plugins import runbooks as registered_runbooks

if TYPE_CHECKING:
    from auditbook.monitor.runbooks import Runbook
    from auditbook.monitor.watch import CycleResult


def _print_cycle(result: CycleResult) -> None:
    for name, r in result.ingest.items():
        if hasattr(r, "kept"):  # an application audit log group (monitor.app_audit.AppIngestResult)
            out.print(f"{escape(name)}: {r.kept} new events, {r.unread} unreadable, {r.matches} matches, "
                      f"{r.fired} alerts raised")
        else:
            out.print(f"{escape(name)}: {r.files} new files ({r.skipped} read before), {r.records} records, "
                      f"{r.matches} matches, {r.fired} alerts raised, "
                      f"{r.records / max(r.seconds, 1e-9):,.0f} records/s")
        for key, reason in r.bad_files:
            err.print(f"[yellow]evidence gap[/yellow] {escape(name)}/{escape(key)}: {escape(reason)}")
    for rule_name, resource, reason in result.posture_gaps:
        err.print(f"[yellow]evidence gap[/yellow] posture rule {escape(rule_name)} on {escape(resource)}: "
                  f"{escape(reason)} (not evaluated)")
    for e in result.escalated:
        err.print(f"[red]escalated[/red] incident {e['incident']}: {e['sla']} SLA breached")
    for e in result.triage_escalated:
        err.print(f"[red]escalated[/red] alert {e['alert']}: not triaged by {e['due']:%Y-%m-%d %H:%M} UTC")
    sent = (f"notifications sent {result.notifications['sent']}, failed {result.notifications['failed']}; "
            if result.notifications else "")
    if (r := result.reminders) is not None:
        out.print(f"evidence reminders: {len(r.sent)} sent, {len(r.failed)} failed, "
                  f"{len(r.unrouted)} owner(s) without a channel")
    out.print(f"posture rules raised {result.posture_fired}; {result.resolved} alerts resolved; "
              f"{sent}cycle {result.seconds:.1f} s")


@app.command()
def watch(
    bucket: Optional[list[str]] = typer.Option(None, "--bucket", help="A CloudTrail bucket to read (repeatable)."),
    prefix: str = typer.Option("", "--prefix", help="Only keys under this prefix (e.g. AWSLogs/)."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="Alerting rules (default: the bundled alerts.yml)."),
    interval: int = typer.Option(60, "--interval", min=5, max=86400, help="Seconds between cycles."),
    once: bool = typer.Option(False, "--once", help="Run one cycle and exit (for cron)."),
    notify: Optional[Path] = typer.Option(None, "--notify", help="notify.yml: Slack, PagerDuty and Jira channels."),
    lookup_events: Optional[list[str]] = typer.Option(None, "--lookup-events", metavar="REGION",
                                                      help="Also read CloudTrail LookupEvents in REGION (repeatable)."),
    catalog: Optional[Path] = CATALOG_OPT,  # whose manual evidence the daily reminders are about
    app_audit: Optional[Path] = typer.Option(None, "--app-audit",
                                             help="app-audit.yml: also read the application's audit log groups."),
    db: Optional[str] = DB_OPT,
):
    """Read new CloudTrail logs, evaluate the alerting rules, resolve what has gone quiet, notify, remind
    owners of due manual evidence once a day; on a loop."""
    from auditbook.monitor.watch import prepare, watch_loop
    from auditbook.store.db import open_engine
    plan = prepare(list(bucket or []), prefix, rules, notify, list(lookup_events or []),
                   catalog, app_audit)  # every input checked first
    last = watch_loop(open_engine(db, writable=True), plan, interval=interval, once=once, on_cycle=_print_cycle)
    if last.unread_sources:  # --once: a bucket not listed / LookupEvents failed: nothing of it was read
        raise typer.Exit(1)


class RunbookGroup(TyperGroup):
    """`auditbook runbook`: one command per registered runbook, made from the registry when the group
    is used (listing them imports the runbooks; `auditbook version` does not)."""

    def _load(self) -> None:
        if getattr(self, "_loaded", False):
            return
        self._loaded = True
        for book in registered_runbooks().values():
            one = typer.Typer()
            one.command(book.name)(_runbook_command(book))
            self.add_command(typer.main.get_command(one), book.name)

    def list_commands(self, ctx):
        self._load()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        self._load()
        return super().get_command(ctx, name)


runbook_app = group("runbook", "Containment runbooks (the registered ones): a dry run first; --yes runs it and "
                               "writes the result to the incident.", cls=RunbookGroup)


def _run_runbook(book: Runbook, incident: int, params: dict, yes: bool, db: Optional[str]) -> None:
    """The dry run of a registered runbook (the incident checked first), and with --yes, the run."""
    from auditbook.monitor.runbooks import dry_run, execute
    from auditbook.store.db import open_engine
    engine = open_engine(db, create=False, writable=yes)  # the incident is in an existing store
    plan, clients = dry_run(engine, incident, book.name, params)
    out.print(f"{plan.runbook} on {escape(plan.target)} — the calls it makes:")
    for line in plan.lines():
        out.print(f"  {escape(line)}")
    if not yes:
        out.print("dry run: nothing was changed. Run again with --yes to do it.")
        return
    # the CLI operator holds the AWS credentials; it acts as an analyst (the control room checks its users' roles)
    result = execute(engine, operator("analyst"), incident, plan, clients, confirm=True)
    out.print(f"done; recorded on incident {incident}" +
              (f" (quarantine group {result['quarantine_group']})" if result.get("quarantine_group") else ""))


def _runbook_command(book: Runbook):
    """A `runbook NAME` command whose options are the runbook's parameters (the registry decides)."""
    def command(incident: int, yes: bool, db: Optional[str], **params):
        _run_runbook(book, incident, params, yes, db)
    options = [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
                                 default=typer.Option(... if p.required else None, p.option, help=p.label))
               for p in book.parameters]
    fixed = [inspect.Parameter("incident", inspect.Parameter.KEYWORD_ONLY, annotation=int,
                               default=typer.Option(..., "--incident", min=1, max=2**63 - 1,
                                                    help="The incident (its id) the runbook answers.")),
             inspect.Parameter("yes", inspect.Parameter.KEYWORD_ONLY, annotation=bool,
                               default=typer.Option(False, "--yes", help="Do it (after reading the dry run).")),
             inspect.Parameter("db", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str], default=DB_OPT)]
    command.__signature__ = inspect.Signature(options + fixed)
    command.__doc__ = book.title
    return command


@app.command()
def exporter(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(9108, "--port", min=0, max=65535),
             db: Optional[str] = DB_OPT, catalog: Optional[Path] = CATALOG_OPT):
    """Serve posture, alert, denied-access and key-rotation metrics for Prometheus (/metrics)."""
    from auditbook.catalog.model import load_catalog
    from auditbook.monitor.prometheus import serve as serve_metrics
    from auditbook.store.db import open_engine
    serve_metrics(open_engine(db, create=False), load_catalog(catalog), host, port,
                  on_ready=lambda url: out.print(f"metrics on {url} — Ctrl-C stops it"))
