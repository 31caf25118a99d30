"""`auditbook scope`: the system boundary of a period (accounts with names, regions, services, out of
scope, the reconciliation with the organisation's accounts) and putting an account, region, tag or
resource out of scope or back in, with a reason (admins; docs/scope.md)."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from auditbook.cli.common import CATALOG_OPT, DB_OPT, OutputFormat, group, operator, out
from auditbook.errors import UserError, one_line

scope_app = group("scope", "The system boundary: what is in scope, what is out of scope and why.")


def _text(value) -> str:
    return escape(one_line("—" if value is None else str(value)))


def _period(period: Optional[str], start: Optional[str], end: Optional[str]):
    from auditbook.history.period import parse_period, quarter
    if period or start or end:
        return parse_period(period, start, end)
    today = dt.datetime.now(dt.timezone.utc).date()
    return quarter(today.year, (today.month - 1) // 3 + 1)


def _target(account: Optional[str], region: Optional[str], tag: Optional[str], resource: Optional[str]):
    given = [(k, v) for k, v in (("account", account), ("region", region), ("tag", tag), ("resource", resource))
             if v is not None]
    if len(given) != 1:
        raise UserError("scope: give exactly one of --account, --region, --tag or --resource")
    return given[0]


def _print(doc: dict) -> None:
    p = doc["period"]
    out.print(f"[bold]Scope {_text(p['start'])} to {_text(p['end'])}[/bold] · {doc['runs']} runs")
    out.print(f"regions: {_text(', '.join(doc['regions']) or 'none read')}")
    out.print("accounts in the period:")
    for a in doc["accounts"]:
        flag = " [red](out of scope)[/red]" if a["out_of_scope"] else ""
        out.print(f"  {a['account']} {_text(a['name'])}: {a['scanned_days']} days, "
                  f"{_text(', '.join(a['regions']))}{flag}; not read: {len(a['regions_not_read'])} regions")
    services = sorted({s["service"] for s in doc["services"]})
    out.print(f"services: {_text(', '.join(services))}")
    missing = [s["resource_type"] for s in doc["services"] if not s["collected"]]
    if missing:
        out.print(f"  not collected in the period: {_text(', '.join(missing))}")
    out.print("out of scope:" if doc["out_of_scope"] else "out of scope: nothing")
    for r in doc["out_of_scope"]:
        lifted = f" · back in scope {_text(r['lifted_at'])} by {_text(r['lifted_by'])}" if r["lifted_at"] else ""
        out.print(f"  #{r['id']} {r['kind']} {_text(r['value'])}: {_text(r['reason'])} "
                  f"({_text(r['excluded_by'])}, {_text(r['excluded_at'])}){lifted}")
    rec = doc["reconciliation"]
    out.print(f"reconciliation: {_text(rec['note'])}")
    for a in rec["accounts"]:
        out.print(f"  {a['account']} {_text(a['name'])}: {_text(a['status'])} "
                  f"({a['scanned_days']} of {a['listed_days']} days)")
    out.print(f"deviations: {len(doc['deviations'])}")
    for d in doc["deviations"]:
        out.print(f"  {d['account']} {_text(d['name'])}: {_text(d['deviation'])}")
    _print_left_out_and_cuecs(doc)


def _print_left_out_and_cuecs(doc: dict) -> None:
    """What the scope left out of the period's runs, and the complementary user-entity controls."""
    for row in doc["left_out"]:
        out.print(f"left out: {_text(row['statement'])}")
    cuecs = doc["complementary_user_entity_controls"]
    out.print(f"complementary user-entity controls: {len(cuecs) or 'none declared'}")
    for c in cuecs:
        evidence = [f"{k['check']} {k['status']}" for k in c["checks"]] + [
            f"{i['item']} {i['state']}" for i in c["manual_items"]]
        out.print(f"  {c['id']} {c['status']} ({_text(', '.join(c['criteria']))}): {_text(c['statement'])}")
        out.print(f"    evidenced by: {_text('; '.join(evidence))}")


@scope_app.command("show")
def scope_show(
    period: Optional[str] = typer.Option(None, "--period", help="A quarter like 2026Q4 (default: this quarter)."),
    start: Optional[str] = typer.Option(None, "--from", help="First day (YYYY-MM-DD), with --to."),
    end: Optional[str] = typer.Option(None, "--to", help="Last day (YYYY-MM-DD), with --from."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format"),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """The period's scope and boundary (as data/scope.json of its packet)."""
    from auditbook.catalog.model import load_catalog
    from auditbook.history.scope import scope_document
    from auditbook.store.db import open_engine
    chosen = _period(period, start, end)
    doc = scope_document(open_engine(db, create=False), load_catalog(catalog), chosen)
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(doc, indent=1, sort_keys=True) + "\n")
        return
    _print(doc)


ACCOUNT_OPT = typer.Option(None, "--account", help="A 12-digit account id.")
REGION_OPT = typer.Option(None, "--region", help="A region name (us-east-1).")
TAG_OPT = typer.Option(None, "--tag", help="A resource tag, key=value.")
RESOURCE_OPT = typer.Option(None, "--resource", help="A resource ARN.")
REASON_OPT = typer.Option(..., "--reason", help="Why (kept with who and when, shown to the auditor).")


def _change(lift: bool, account, region, tag, resource, reason: str, db: Optional[str]) -> None:
    from auditbook.history.scope import exclude, include
    from auditbook.store.db import open_engine
    kind, value = _target(account, region, tag, resource)
    change = include if lift else exclude
    entry = change(open_engine(db, create=False, writable=True), operator("admin"), kind, value, reason)
    out.print(f"{'back in scope' if lift else 'out of scope'}: {kind} {_text(value)} (entry {entry['id']})")


@scope_app.command("exclude")
def scope_exclude(account: Optional[str] = ACCOUNT_OPT, region: Optional[str] = REGION_OPT,
                  tag: Optional[str] = TAG_OPT, resource: Optional[str] = RESOURCE_OPT,
                  reason: str = REASON_OPT, db: Optional[str] = DB_OPT):
    """Put an account, region, tag or resource out of scope, with the reason (admin)."""
    _change(False, account, region, tag, resource, reason, db)


@scope_app.command("include")
def scope_include(account: Optional[str] = ACCOUNT_OPT, region: Optional[str] = REGION_OPT,
                  tag: Optional[str] = TAG_OPT, resource: Optional[str] = RESOURCE_OPT,
                  reason: str = REASON_OPT, db: Optional[str] = DB_OPT):
    """Bring an out-of-scope account, region, tag or resource back in scope, with the reason (admin)."""
    _change(True, account, region, tag, resource, reason, db)
