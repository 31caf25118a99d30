"""`auditbook resource ARN`: a resource's timeline in the terminal — its stored states, each change
between two runs with the fields it changed, and the CloudTrail write events behind it (or the gap
where no log covers the interval). The same timeline as the control room's resource page."""
from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Optional

import typer
from rich.markup import escape

from auditbook.cli.common import DB_OPT, OutputFormat, app, out
from auditbook.errors import one_line

KIND = {"created": "created", "first_seen": "first seen", "modified": "changed", "deleted": "no longer seen"}


def _text(value) -> str:
    """Stored text (hostile until shown) for a rich line: one line, markup escaped."""
    return escape(one_line(str(value)))


def _when(value: Optional[dt.datetime]) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _json_default(value):
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _event_line(e: dict) -> str:
    ticket = f"ticket {e['ticket']} ({e['ticket_from']})" if e["ticket"] else "no ticket reference"
    session = f"session {e['session_name']}, " if e["session_name"] else ""
    failed = f" [red]FAILED {_text(e['error_code'])}[/red]" if e["error_code"] else ""
    simulated = " [yellow]SIMULATED[/yellow]" if e["simulated"] else ""
    return (f"    [bold]{_text(e['event_name'])}[/bold] by {_text(e['principal'])} at {_when(e['at'])} "
            f"from {_text(e['source_ip'] or '?')} ({session}{_text(ticket)}; user agent "
            f"{_text(e['user_agent'] or '?')}){failed}{simulated}")


def _print_change(change: dict) -> None:
    from auditbook.history.record_diff import FieldChange, summary_line
    kind = KIND.get(change["kind"], change["kind"])
    span = (f"between {_when(change['from'])} (run {change['from_run']}) and {_when(change['to'])} (run {change['to_run']})"
            if change["from"] else f"in run {change['to_run']} ({_when(change['to'])})")
    out.print(f"[bold]{kind}[/bold] {span}")
    for c in change["diff"]:
        out.print(f"    {_text(summary_line(FieldChange(**c)))}")
    for e in change["events"]:
        out.print(_event_line(e))
    cover = change["coverage"]
    if cover is None:
        out.print("    (no earlier run read its scope: the store's history of it starts here)")
        return
    if not change["events"] and cover["covered"]:
        out.print("    no CloudTrail write event on it in this interval (the logs read cover it)")
    for gap in cover["gaps"]:
        out.print(f"    [yellow]evidence gap[/yellow]: no CloudTrail log read covers {cover['account']} "
                  f"{_text(cover['region'])} from {_when(gap['from'])} to {_when(gap['to'])}")
    if cover["unread_records"]:
        out.print(f"    [yellow]evidence gap[/yellow]: {cover['unread_records']} records of its logs could not be read")


def _print_timeline(found: dict) -> None:
    out.print(f"[bold]{_text(found['name'] or found['arn'])}[/bold] {_text(found['arn'])}")
    out.print(f"{_text(found['resource_type'])} · account {_text(found['account'])} · {_text(found['region'])} · "
              f"{len(found['states'])} of {found['states_total']} stored states"
              + (" · [yellow]SIMULATED (demo)[/yellow]" if found["simulated"] else ""))
    for change in found["changes"]:
        _print_change(change)
    if found["other_events"]:
        out.print("[bold]other write events[/bold] (no change of the record seen across them)")
        for e in found["other_events"]:
            out.print(_event_line(e))
    if found["events_total"] > found["events_shown"]:
        out.print(f"(the newest {found['events_shown']} of {found['events_total']} write events: "
                  "narrow --from/--to to see older ones)")


@app.command("resource")
def resource(
    arn: str = typer.Argument(..., help="The resource's ARN (as findings and the evidence explorer show it)."),
    start: Optional[str] = typer.Option(None, "--from", metavar="DATE", help="From this day (YYYY-MM-DD) or time."),
    end: Optional[str] = typer.Option(None, "--to", metavar="DATE", help="To this day (YYYY-MM-DD) or time."),
    resource_type: Optional[str] = typer.Option(None, "--type", help="The resource type, for an ARN stored as several."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format"),
    pattern: Optional[str] = typer.Option(None, "--ticket-pattern", metavar="REGEX",
                                          help="Ticket references in session names and request tags "
                                               "(default: AUDITBOOK_TICKET_PATTERN, else [A-Z][A-Z0-9]+-[0-9]+)."),
    db: Optional[str] = DB_OPT,
):
    """A resource's timeline: its stored states, each change with the fields it changed and the CloudTrail
    write events behind it (who, when, from where, which call, session, ticket), or the evidence gap."""
    from auditbook.evaluate.tickets import ticket_pattern
    from auditbook.history.resource_timeline import timeline, window_bound
    from auditbook.store.db import open_engine
    since, until = window_bound(start, "--from"), window_bound(end, "--to", end=True)
    compiled = ticket_pattern(pattern)
    found = timeline(open_engine(db, create=False), arn, resource_type, since, until, compiled)
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(found, indent=1, default=_json_default) + "\n")
        return
    _print_timeline(found)
