"""`auditbook deviations`: the deviations of a period (failure stretches of the checks, manual evidence
missing or expired, accounts the organisation listed that no run read), each with management's
response or "no management response", and recording a response (analysts and admins; versioned, in
the audit trail; docs/deviations.md)."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from auditbook.cli.common import CATALOG_OPT, DB_OPT, OutputFormat, group, operator, out
from auditbook.errors import one_line

deviations_app = group("deviations", "Deviations of a period and management's response to each.")
PERIOD_OPT = typer.Option(..., "--period", help="2026Q3, 2026 (a year) or 2026-07-01..2026-09-30.")


class YesNo(str, Enum):
    yes = "yes"
    no = "no"


def _t(value) -> str:
    """Stored or hostile text as one printable line, shown as typed (never rich markup)."""
    return escape(one_line("—" if value is None else str(value)))


def _print(found: list[dict], label: str) -> None:
    """Each deviation as a heading line and two indented lines (readable at 80 columns, greppable)."""
    out.print(f"Deviations {_t(label)}: {len(found)}", highlight=False)
    for d in found:
        at_start = ("yes" if d["existed_at_start"] else "no") + (" (set)" if d["existed_at_start_overridden"] else "")
        out.print(f"{d['id']}  {_t(d['kind'])}  {_t(', '.join(d['criteria']) or 'scope')}  {_t(d['from'])} .. "
                  f"{_t(d['until'] or d['state'])}  existed at start: {at_start}", highlight=False)
        subject = d["check"] or d["item"] or ""
        where = " ".join(x for x in (d["account"], d["resource_name"] or d["resource"]) if x)
        out.print("  " + _t(" · ".join(x for x in (subject, where, d["what"]) if x)), highlight=False)
        answer = d["response"]
        if answer:
            out.print(f"  response v{answer['version']} by {_t(answer['responded_by'])} at "
                      f"{_t(answer['responded_at'][:16])}: {_t(answer['response'])}", highlight=False)
        else:
            out.print(f"  {d['response_text']} (version 0)", highlight=False)


@deviations_app.command("list")
def deviations_list(period: str = PERIOD_OPT,
                    criterion: Optional[str] = typer.Option(None, "--criterion", help="One criterion's deviations."),
                    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format"),
                    db: Optional[str] = DB_OPT, catalog: Optional[Path] = CATALOG_OPT):
    """Every deviation of the period with its response (version 0: none yet)."""
    from auditbook.catalog.model import load_catalog
    from auditbook.history.deviations import deviations
    from auditbook.history.sampling import parse_audit_period
    from auditbook.store.db import open_engine
    chosen = parse_audit_period(period)
    cat = load_catalog(catalog)
    found = deviations(open_engine(db, create=False), cat, chosen, criterion)
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(found, indent=1, sort_keys=True) + "\n")
        return
    _print(found, chosen.label)


@deviations_app.command("respond")
def deviations_respond(
    deviation: str = typer.Argument(..., metavar="ID", help="The deviation's id (auditbook deviations list)."),
    period: str = PERIOD_OPT,
    root_cause: str = typer.Option(..., "--root-cause", help="Why it happened."),
    response: str = typer.Option(..., "--response", help="Management's response."),
    version: int = typer.Option(..., "--version", help="The response's version you read (0: none yet)."),
    ticket: Optional[str] = typer.Option(None, "--ticket", help="The ticket tracking it."),
    compensating: Optional[str] = typer.Option(None, "--compensating", help="The compensating control."),
    remediation: Optional[str] = typer.Option(None, "--remediation", help="What was done to remediate it."),
    remediated_on: Optional[str] = typer.Option(None, "--remediated-on", help="When it was remediated (YYYY-MM-DD)."),
    existed_at_start: Optional[YesNo] = typer.Option(None, "--existed-at-start",
                                                     help="Override the computed answer (give --existed-reason)."),
    existed_reason: Optional[str] = typer.Option(None, "--existed-reason", help="Why the override."),
    db: Optional[str] = DB_OPT, catalog: Optional[Path] = CATALOG_OPT,
):
    """Record management's response to a deviation of the period (you, as an analyst)."""
    from auditbook.catalog.model import load_catalog
    from auditbook.history.deviations import checked_fields, checked_id, respond
    from auditbook.history.sampling import parse_audit_period
    from auditbook.store.db import open_engine
    chosen = parse_audit_period(period)
    fields = {"root_cause": root_cause, "response": response, "ticket": ticket, "compensating": compensating,
              "remediation": remediation, "remediated_on": remediated_on,
              "existed_at_start": None if existed_at_start is None else existed_at_start == YesNo.yes,
              "existed_reason": existed_reason}
    checked_id(deviation)
    checked_fields(**fields)  # bad input is refused before the store is opened
    cat = load_catalog(catalog)
    done = respond(open_engine(db, create=False, writable=True), operator("analyst"), deviation, version,
                   catalog=cat, period=chosen, **fields)
    out.print(f"deviation {done['id']}: response version {done['response']['version']} recorded by "
              f"{_t(done['response']['responded_by'])}")
