"""`auditbook alerts`: list (the default: `auditbook alerts --state firing` still lists), show,
triage, suppress, suppressions, lift. The person at the terminal acts as an analyst (like the
runbooks): every change is authorised, version-checked and written to the audit trail by the core."""
from __future__ import annotations

import json
import sys
from enum import Enum
from typing import Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from auditbook.cli.common import DB_OPT, OutputFormat, app, err, operator, out
from auditbook.errors import one_line

MAX_ID = 2**63 - 1
alerts_app = typer.Typer(help="Alerts: list (the default), show, triage, suppress, suppressions, lift.",
                         no_args_is_help=False)
app.add_typer(alerts_app, name="alerts")


def _t(value) -> str:
    """Stored text (hostile: a CloudTrail user agent, a person's reason) as one printable line of
    rich markup shown as typed: no terminal escape, no line break, no markup."""
    return escape(one_line("" if value is None else value))


class Decision(str, Enum):
    true_positive = "true-positive"
    benign_true_positive = "benign-true-positive"
    false_positive = "false-positive"


STATE_OPT = typer.Option(None, "--state", help="pending, firing, acknowledged, resolved (repeatable).")
FORMAT_OPT = typer.Option(OutputFormat.table, "--format")


def _list(db: Optional[str], fmt: OutputFormat, params: dict, limit: int) -> None:
    from auditbook.monitor import alert_views
    from auditbook.store.db import open_engine
    query, order = alert_views.parse_filters(params)  # checked before the store is opened
    engine = open_engine(db, create=False)
    if query.triage == "overdue":
        query, order = alert_views.parse_filters(params, engine)
    if fmt == OutputFormat.json:
        docs, total = alert_views.documents(engine, query, order, limit)
        sys.stdout.write(json.dumps(docs, indent=1, default=str) + "\n")
    else:
        found = alert_views.page(engine, query, order, 1, limit)
        docs, total = found["rows"], found["total"]
        out.print(_table(docs, total))
    if total > len(docs):
        err.print(f"showing {len(docs)} of {total} alerts (--limit, or narrow the filters)")


def _table(rows: list[dict], total: int) -> Table:
    """One alert per row, readable at 80 columns: the rule with its labels under it (folded), the
    fixed-width columns never squeezed."""
    table = Table(title=f"Alerts ({total})", box=box.SIMPLE, pad_edge=False)
    for col in ("id", "severity", "state", "first seen (UTC)"):
        table.add_column(col, no_wrap=True)
    table.add_column("rule / labels", overflow="fold")
    table.add_column("triage", no_wrap=True, overflow="ellipsis", max_width=16)
    for a in rows:
        triage = a["triage_decision"] or ("suppressed" if a["suppressed_until"] else "—")
        if a["assignee"]:
            triage += f" ({a['assignee']})"
        table.add_row(str(a["id"]), _t(a["severity"]), a["state"], a["first_seen"].strftime("%Y-%m-%d %H:%M"),
                      "\n".join([_t(a["rule"]), *(f"[dim]{_t(f'{k}={v}')}[/dim]" for k, v in a["labels"].items())]),
                      _t(triage))
    return table


def _labels(labels: dict) -> str:
    return _t(", ".join(f"{k}={v}" for k, v in labels.items()))


def _print_detail(found: dict) -> None:
    a, t = found["alert"], found["triage"]
    out.print(f"alert {a['id']}: {_t(a['rule'])} · {a['state']} · {_t(a['severity'])} · {_labels(a['labels'])}")
    out.print(f"  {_t(a['summary'])}")
    out.print(f"  first seen {a['first_seen']:%Y-%m-%d %H:%M} UTC, last seen {a['last_seen']:%Y-%m-%d %H:%M} UTC, "
              f"{a['count']} times; assigned to {_t(a['assignee'] or 'nobody')}")
    decided = (f"{_t(a['triage_decision'])} by {_t(a['triaged_by'])}: {_t(a['triage_reason'])}"
               if a["triage_decision"] else "not triaged")
    due = f"due {t['due']:%Y-%m-%d %H:%M} UTC" if t["due"] else "not firing yet"
    out.print(f"  triage: {decided}; {'late' if t['breached'] else 'on time'} ({due})"
              + (f"; incident {a['incident_id']}" if a["incident_id"] else ""))
    if found["suppression"] and a["suppressed_until"]:
        out.print(f"  suppressed until {a['suppressed_until']:%Y-%m-%d %H:%M} UTC: "
                  f"{_t(found['suppression']['reason'])}")
    for r in found["records"]:
        out.print(f"  {_t(r['time'])} {_t(r['event'])} by {_t(r['principal'])} from "
                  f"{_t(r['source_ip'])} ({_t(r['user_agent'][:60])}) {_t(r['request_parameters'][:200])}")
    for f in found["findings"]:
        out.print(f"  finding {_t(f['check'])} {f['status']} on {_t(f['resource_name'] or f['resource'])}")
    for e in found["history"]:
        out.print(f"  {e['at']:%Y-%m-%d %H:%M} {_t(e['actor'])} {_t(e['action'])} {_t(e['note'] or '')}")


def _suppressions_table(found: list[dict]) -> Table:
    table = Table(title=f"Suppressions ({len(found)})", box=box.SIMPLE)
    for col in ("id", "rule", "labels", "until", "by", "reason", "alerts", "in force"):
        table.add_column(col, overflow="fold")
    for s in found:
        table.add_row(str(s["id"]), _t(s["rule"]), _labels(s["labels"]), f"{s['until']:%Y-%m-%d %H:%M} UTC",
                      _t(s["created_by"]), _t(s["reason"]), str(len(s["alerts"])), "yes" if s["active"] else "no")
    return table


def _given(ctx: typer.Context, *names: str) -> list[str]:
    """The options of `names` given on the command line (not by default or the environment)."""
    return [n for n in names if getattr(ctx.get_parameter_source(n), "name", None) == "COMMANDLINE"]


@alerts_app.callback(invoke_without_command=True)
def alerts_default(ctx: typer.Context, state: Optional[list[str]] = STATE_OPT, fmt: OutputFormat = FORMAT_OPT,
                   db: Optional[str] = DB_OPT):
    """Without a command: `alerts list` with --state and --format (json: rule, state, severity,
    soc2_control, labels, first/last seen, count, triage, evidence)."""
    if ctx.invoked_subcommand is None:
        _list(db, fmt, {"state": list(state or [])}, 1000)
    elif _given(ctx, "state", "fmt", "db"):
        raise typer.BadParameter(f"give {', '.join('--' + n.replace('fmt', 'format') for n in _given(ctx, 'state', 'fmt', 'db'))} "
                                 f"after `{ctx.invoked_subcommand}`")


@alerts_app.command("list")
def alerts_list(
    state: Optional[list[str]] = STATE_OPT,
    severity: Optional[list[str]] = typer.Option(None, "--severity", help="critical, high, … (repeatable)."),
    rule: Optional[list[str]] = typer.Option(None, "--rule", help="A rule name (repeatable)."),
    account: Optional[list[str]] = typer.Option(None, "--account", help="An account id (repeatable)."),
    region: Optional[list[str]] = typer.Option(None, "--region", help="A region (repeatable)."),
    assignee: Optional[str] = typer.Option(None, "--assignee", help="Assigned to this name ('-': unassigned)."),
    since: Optional[str] = typer.Option(None, "--since", help="Seen on or after this date (YYYY-MM-DD) or time."),
    until: Optional[str] = typer.Option(None, "--until", help="First seen up to this date (inclusive) or time."),
    triage: Optional[str] = typer.Option(None, "--triage", help="untriaged, overdue, or a decision."),
    suppressed: Optional[str] = typer.Option(None, "--suppressed", help="any (default), yes, no."),
    sort: Optional[str] = typer.Option(None, "--sort", help="'severity, oldest first' (default), 'severity, "
                                                            "newest first', 'newest first', 'oldest first'."),
    limit: int = typer.Option(1000, "--limit", min=1, max=10000, help="At most this many alerts."),
    fmt: OutputFormat = FORMAT_OPT,
    db: Optional[str] = DB_OPT,
):
    """List alerts through filters, sorted by severity then age (the oldest first)."""
    params = {"state": state, "severity": severity, "rule": rule, "account": account, "region": region,
              "assignee": [assignee] if assignee else None, "since": [since] if since else None,
              "until": [until] if until else None, "triage": [triage] if triage else None,
              "suppressed": [suppressed] if suppressed else None, "sort": [sort] if sort else None}
    _list(db, fmt, {k: list(v) for k, v in params.items() if v}, limit)


@alerts_app.command("show")
def alerts_show(alert_id: int = typer.Argument(..., min=1, max=MAX_ID, metavar="ID"), fmt: OutputFormat = FORMAT_OPT,
                db: Optional[str] = DB_OPT):
    """One alert: its triage, the CloudTrail records behind it, the findings it concerns, its history."""
    from auditbook.monitor import alert_views
    from auditbook.store.db import open_engine
    found = alert_views.detail(open_engine(db, create=False), alert_id)
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(found, indent=1, default=str) + "\n")
        return
    _print_detail(found)


@alerts_app.command("triage")
def alerts_triage(
    alert_ids: list[int] = typer.Argument(..., min=1, max=MAX_ID, metavar="ID...", help="One alert or several."),
    decision: Optional[Decision] = typer.Option(None, "--decision", help="true-positive (opens an incident), "
                                                                         "benign-true-positive, false-positive."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why (required with --decision)."),
    assignee: Optional[str] = typer.Option(None, "--assignee", help="Assign to this name ('' or '-': unassign)."),
    note: Optional[str] = typer.Option(None, "--note", help="A note for the alert's history."),
    acknowledge: bool = typer.Option(False, "--acknowledge", help="Acknowledge it too (if firing)."),
    resolve: bool = typer.Option(False, "--resolve", help="Resolve it too."),
    db: Optional[str] = DB_OPT,
):
    """Triage alerts: a decision with its reason, an assignee, a note; several IDs: all or none."""
    from auditbook.monitor import triage as core
    from auditbook.monitor.alerts import StaleAlert
    from auditbook.store.db import open_engine
    change = core.Change(decision=decision.value if decision else None, reason=reason, note=note,
                         assignee=core.UNCHANGED if assignee is None else ("" if assignee == "-" else assignee),
                         acknowledge=acknowledge, resolve=resolve)
    core.checked(change)  # bad input is refused before the store is opened
    engine = open_engine(db, create=False, writable=True)
    try:
        done = core.apply(engine, operator("analyst"), core.current_versions(engine, alert_ids), change)
    except StaleAlert as exc:
        err.print(f"error: {_t(str(exc))}")
        raise typer.Exit(1)
    for a in done:
        incident = f", incident {a['incident_id']}" if a["incident_id"] else ""
        out.print(f"alert {a['id']}: {a['state']}, {_t(a['triage_decision'] or 'not triaged')}, assigned to "
                  f"{_t(a['assignee'] or 'nobody')}{incident}")


@alerts_app.command("suppress")
def alerts_suppress(
    rule: str = typer.Option(..., "--rule", help="The rule to silence."),
    label: list[str] = typer.Option(..., "--label", help="name=value an alert must carry (repeatable)."),
    until: str = typer.Option(..., "--until", help="Until this date (YYYY-MM-DD, 00:00 UTC) or time (at most 90 days)."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit trail)."),
    db: Optional[str] = DB_OPT,
):
    """Silence a rule for a label set until a date: its alerts are kept, shown as suppressed, not notified."""
    from auditbook.monitor import suppressions as core
    from auditbook.store.db import open_engine
    labels: dict = {}
    for pair in label:
        name, value = core.parse_label(pair)
        labels[name] = value
    until_at = core.parse_until(until)
    engine = open_engine(db, create=False, writable=True)
    made = core.suppress(engine, operator("analyst"), rule=rule, labels=labels, until=until_at, reason=reason)
    covered = ", ".join(str(i) for i in made["alerts"]) or "none open now"
    out.print(f"suppression {made['id']}: {_t(made['rule'])} "
              f"{_labels(made['labels'])} until "
              f"{made['until']:%Y-%m-%d %H:%M} UTC; alerts covered: {covered}")


@alerts_app.command("suppressions")
def alerts_suppressions(every: bool = typer.Option(False, "--all", help="Lapsed and lifted ones too."),
                        fmt: OutputFormat = FORMAT_OPT, db: Optional[str] = DB_OPT):
    """The suppressions in force (--all: every one), with who made them, why and the alerts they cover."""
    from auditbook.monitor import suppressions as core
    from auditbook.store.db import open_engine
    found = core.list_suppressions(open_engine(db, create=False), active_only=not every)
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(found, indent=1, default=str) + "\n")
        return
    out.print(_suppressions_table(found))


@alerts_app.command("lift")
def alerts_lift(suppression_id: int = typer.Argument(..., min=1, max=MAX_ID, metavar="SUPPRESSION"),
                reason: str = typer.Option(..., "--reason", help="Why it ends early."), db: Optional[str] = DB_OPT):
    """End a suppression now."""
    from auditbook.monitor import suppressions as core
    from auditbook.store.db import open_engine
    engine = open_engine(db, create=False, writable=True)
    current = core.get_suppression(engine, suppression_id)
    done = core.lift(engine, operator("analyst"), suppression_id, current["version"], reason)
    out.print(f"suppression {done['id']} lifted at {done['until']:%Y-%m-%d %H:%M} UTC")
