"""`auditbook incidents`: incidents and their post-mortems (CC7.4, CC7.5) — list, show, update
(category, impact, notifications, root cause, lessons learned, action items, attachments, status)."""
from __future__ import annotations

import datetime as dt
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from auditbook.cli.common import DB_OPT, OutputFormat, err, group, operator, out
from auditbook.errors import UserError, one_line

incidents_app = group("incidents", "Incidents and their post-mortems: list, show, update.")
ID_ARG = typer.Argument(..., metavar="ID", min=1, max=2**63 - 1, help="The incident's id.")
NOTICE = {"yes": True, "no": False, "undecided": None}


class Notice(str, Enum):
    yes = "yes"
    no = "no"
    undecided = "undecided"


def _plain(value) -> str:
    """Untrusted text for the terminal: one printable line (no escape sequence), no rich markup."""
    return escape(one_line("" if value is None else value))


def _json_out(data) -> None:
    def default(value):
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        raise TypeError(type(value).__name__)
    sys.stdout.write(json.dumps(data, indent=1, default=default) + "\n")


@incidents_app.command("list")
def incidents_list(
    status: Optional[list[str]] = typer.Option(None, "--status", help="open, investigating, contained, resolved, "
                                                                      "closed (repeatable; default: all)."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format"),
    db: Optional[str] = DB_OPT,
):
    """Incidents, newest first, with what each post-mortem still lacks."""
    from auditbook.monitor import incidents, postmortem
    from auditbook.store.db import open_engine
    for s in status or []:
        if s not in incidents.STATUSES:
            raise UserError(f"--status: {s!r} is not one of {', '.join(incidents.STATUSES)}")
    rows = incidents.list_incidents(open_engine(db, create=False), tuple(status) if status else None)
    if fmt == OutputFormat.json:
        _json_out(rows)
        return
    table = Table(title=f"Incidents ({len(rows)})")
    for col in ("id", "severity", "status", "title", "assignee", "opened", "to close"):
        table.add_column(col, overflow="fold")
    for i in rows:
        missing = postmortem.missing_to_close(i) if i["severity"] in postmortem.NEEDS_POSTMORTEM else []
        table.add_row(str(i["id"]), i["severity"], i["status"], _plain(i["title"]), _plain(i["assignee"] or "—"),
                      f"{i['created_at']:%Y-%m-%d}", "needs " + ", ".join(missing) if missing else "—")
    out.print(table)


def _field_rows(inc: dict) -> list[tuple[str, str]]:
    from auditbook.monitor import postmortem

    def notice(required, on) -> str:
        state = {True: "required", False: "not required", None: "undecided"}[required]
        return f"{state}, done {on}" if on else (f"{state}, NOT DONE" if required else state)
    return [("title", inc["title"]), ("severity", inc["severity"]), ("status", inc["status"]),
            ("assignee", inc["assignee"] or "—"), ("opened", f"{inc['created_at']:%Y-%m-%d %H:%M} UTC by {inc['created_by']}"),
            ("version", str(inc["version"])), ("category", inc["category"] or "—"),
            ("systems affected", inc["impact_systems"] or "—"), ("data affected", inc["impact_data"] or "—"),
            ("customers affected", "not assessed" if inc["customers_affected"] is None else str(inc["customers_affected"])),
            ("customer notification", notice(inc["customer_notice_required"], inc["customers_notified_on"])),
            ("regulator notification", notice(inc["regulator_notice_required"], inc["regulator_notified_on"])),
            ("root cause", inc["root_cause"] or "—"), ("lessons learned", inc["lessons_learned"] or "—"),
            *([("to close", "needs " + " and ".join(postmortem.missing_to_close(inc)))]
              if inc["severity"] in postmortem.NEEDS_POSTMORTEM and postmortem.missing_to_close(inc) else [])]


@incidents_app.command("show")
def incidents_show(incident_id: int = ID_ARG, fmt: OutputFormat = typer.Option(OutputFormat.table, "--format"),
                   db: Optional[str] = DB_OPT):
    """One incident: its fields, post-mortem, action items, attachments and timeline."""
    from auditbook.monitor import incidents
    from auditbook.store.db import open_engine
    engine = open_engine(db, create=False)
    inc = incidents.detail(engine, incident_id)
    trail = incidents.timeline(engine, incident_id)
    if fmt == OutputFormat.json:
        _json_out({**inc, "timeline": trail})
        return
    fields = Table(title=f"Incident {inc['id']}", show_header=False)
    fields.add_column("field", style="bold")
    fields.add_column("value", overflow="fold")
    for name, value in _field_rows(inc):
        fields.add_row(name, "\n".join(_plain(line) for line in str(value).splitlines() or [""]))
    out.print(fields)
    _print_items(inc)
    timeline = Table(title="Timeline")
    for col in ("at", "who", "action", "note / change"):
        timeline.add_column(col, overflow="fold")
    for e in trail:
        timeline.add_row(f"{e['at']:%Y-%m-%d %H:%M}", _plain(f"{e['actor']} ({e['role']})"), _plain(e["action"]),
                         _plain(_change_text(e)))
    out.print(timeline)


BOOKKEEPING = ("id", "incident_id", "created_by", "created_at", "updated_at", "version", "done_by", "links")


def _change_text(entry: dict) -> str:
    """A timeline entry in a line: its note, what was created, or each changed field's before → after."""
    if entry["note"]:
        return entry["note"]
    after, before = entry["after"] or {}, entry["before"] or {}
    if entry["action"] == "create":
        return f"{after.get('severity', '')}: {after.get('title', '')}"
    shown = [(k, v) for k, v in after.items() if k not in BOOKKEEPING and v is not None]
    if before:
        return "; ".join(f"{k}: {before.get(k)} → {v}" for k, v in shown)
    return "; ".join(f"{k}: {v}" for k, v in shown)


def _print_items(inc: dict) -> None:
    actions = Table(title=f"Action items ({len(inc['actions'])})")
    for col in ("id", "owner", "due", "done", "what"):
        actions.add_column(col, overflow="fold")
    for a in inc["actions"]:
        done = f"{a['done_at']:%Y-%m-%d} by {a['done_by']}" if a["done_at"] else "open"
        actions.add_row(str(a["id"]), _plain(a["owner"]), str(a["due_on"]), _plain(done), _plain(a["text"]))
    out.print(actions)
    files = Table(title=f"Attachments ({len(inc['attachments'])})")
    for col in ("id", "file", "bytes", "sha256", "added"):
        files.add_column(col, overflow="fold")
    for f in inc["attachments"]:
        files.add_row(str(f["id"]), _plain(f["filename"]), str(f["size"]), f["sha256"],
                      _plain(f"{f['uploaded_at']:%Y-%m-%d %H:%M} by {f['uploaded_by']}"))
    out.print(files)


def _changes(status, severity, assignee, category, systems, data, customers_affected, customer_notice,
             customers_notified_on, regulator_notice, regulator_notified_on, root_cause, lessons) -> dict:
    """The options given, as update()'s fields (an option left out changes nothing; "" clears text)."""
    given = {"status": status, "severity": severity, "assignee": assignee, "category": category,
             "impact_systems": systems, "impact_data": data, "customers_affected": customers_affected,
             "customers_notified_on": customers_notified_on, "regulator_notified_on": regulator_notified_on,
             "root_cause": root_cause, "lessons_learned": lessons}
    changes = {k: v for k, v in given.items() if v is not None}
    if customer_notice is not None:
        changes["customer_notice_required"] = NOTICE[customer_notice.value]
    if regulator_notice is not None:
        changes["regulator_notice_required"] = NOTICE[regulator_notice.value]
    return changes


@incidents_app.command("update")
def incidents_update(
    incident_id: int = ID_ARG,
    status: Optional[str] = typer.Option(None, "--status", help="Move to: investigating, contained, resolved, closed…"),
    severity: Optional[str] = typer.Option(None, "--severity", help="critical, high, medium or low."),
    assignee: Optional[str] = typer.Option(None, "--assignee"),
    category: Optional[str] = typer.Option(None, "--category", help="e.g. misconfiguration, credential compromise "
                                                                    "(`\"\"` clears it)."),
    systems: Optional[str] = typer.Option(None, "--systems", help="Impact: the systems affected."),
    data: Optional[str] = typer.Option(None, "--data", help="Impact: the data affected."),
    customers_affected: Optional[str] = typer.Option(None, "--customers-affected", help="How many (\"\": not assessed)."),
    customer_notice: Optional[Notice] = typer.Option(None, "--customer-notice", help="Must customers be told?"),
    customers_notified_on: Optional[str] = typer.Option(None, "--customers-notified-on", help="YYYY-MM-DD."),
    regulator_notice: Optional[Notice] = typer.Option(None, "--regulator-notice", help="Must a regulator be told?"),
    regulator_notified_on: Optional[str] = typer.Option(None, "--regulator-notified-on", help="YYYY-MM-DD."),
    root_cause: Optional[str] = typer.Option(None, "--root-cause"),
    lessons: Optional[str] = typer.Option(None, "--lessons", help="Lessons learned."),
    action: Optional[list[str]] = typer.Option(None, "--action", metavar="OWNER|DUE|TEXT",
                                               help="A new action item, e.g. 'kim|2026-12-01|Add an SCP' (repeatable)."),
    done: Optional[list[int]] = typer.Option(None, "--done", metavar="ACTION_ID", min=1, max=2**63 - 1,
                                             help="Mark an action item done (repeatable)."),
    attach: Optional[list[Path]] = typer.Option(None, "--attach", metavar="FILE", help="Attach a file (repeatable)."),
    version: Optional[int] = typer.Option(None, "--version", min=1, max=2**63 - 1,
                                          help="The version you last saw (default: the current one)."),
    db: Optional[str] = DB_OPT,
):
    """Change an incident and its post-mortem in one unit of work: every input is checked first, and
    all of it is saved or nothing. Closing a high or critical incident needs --root-cause and --lessons."""
    from auditbook.monitor import incident_attachments, incidents, postmortem
    from auditbook.store.db import open_engine
    changes = _changes(status, severity, assignee, category, systems, data, customers_affected, customer_notice,
                       customers_notified_on, regulator_notice, regulator_notified_on, root_cause, lessons)
    actions = [dict(zip(("owner", "due", "text"), postmortem.parse_action(spec))) for spec in action or []]
    if not (changes or actions or done or attach):
        raise UserError("incidents update: nothing to change (give --root-cause, --lessons, --action, --attach, …)")
    for a in actions:
        postmortem.checked_action(a["owner"], a["due"], a["text"])  # a bad one is refused before any file is read
    files = [incident_attachments.read_file(path) for path in attach or []]
    engine = open_engine(db, create=False, writable=True)
    seen = version or incidents.get(engine, incident_id)["version"]
    try:
        after = incidents.update(engine, operator("analyst"), incident_id, seen, actions=actions, files=files,
                                 done=list(done or []), **changes)
    except (incidents.Conflict, postmortem.ActionConflict) as exc:
        err.print(f"[red]conflict[/red] {escape(one_line(str(exc)))}")
        raise typer.Exit(1)
    extra = [f"{len(actions)} action item{'s' * (len(actions) > 1)} added" if actions else "",
             f"{len(done or [])} marked done" if done else "",
             ", ".join(f"attached {_plain(f.filename)} (sha256 {f.sha256[:16]}…)" for f in files)]
    out.print(f"incident {after['id']}: {after['status']}, version {after['version']}"
              + "".join(f"; {x}" for x in extra if x))
