"""`auditbook sample CONTROL`: a criterion's population over a period (count and SHA-256) and a
reproducible sample drawn from it, recorded in the store's audit trail; `--verify` re-draws the period's
recorded draws of the criterion and checks they come out the same (docs/samples.md)."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from auditbook.cli.common import CATALOG_OPT, DB_OPT, OutputFormat, app, operator, out
from auditbook.errors import one_line

SHOWN_COLUMNS = 5  # columns of each sampled row in the table (the whole row is in --format json)


def _text(value) -> str:
    return escape(one_line(str(value)))


def _json_default(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _print_draw(drawn: dict) -> None:
    pop = drawn["population"]
    out.print(f"[bold]{_text(drawn['criterion'])}[/bold] · population [bold]{drawn['kind']}[/bold] · period "
              f"{_text(drawn['period']['start'])} to {_text(drawn['period']['end'])}")
    out.print(f"population: {pop.count} rows · SHA-256 {pop.sha256}")
    out.print(f"sample: {len(drawn['ids'])} of {pop.count} (size {drawn['size']}, {_text(drawn['size_from'])}) · "
              f"seed {drawn['seed']} · recorded by {_text(drawn['drawn_by'])}")
    rows = {r["id"]: r for r in pop.rows}
    for n, ident in enumerate(drawn["ids"], 1):
        values = [f"{k}={v}" for k, v in rows[ident].items() if k != "id" and v][:SHOWN_COLUMNS]
        out.print(f"  {n:>3}. {_text(ident)}  " + _text(" · ".join(values)))


def _verify(engine, catalog, criterion: str, period, ticket: Optional[str]) -> None:
    from auditbook.history.sampling import recorded_draws, verify_draw
    found = recorded_draws(engine, period, criterion)
    if not found:
        out.print(f"no draw of {_text(criterion)} is recorded for {period.start}..{period.end}")
        raise typer.Exit(1)
    failed = 0
    for recorded in found:
        problems = verify_draw(engine, catalog, recorded, ticket)
        label = (f"draw of {recorded.get('kind')} by {_text(recorded.get('drawn_by'))} at "
                 f"{_text(recorded.get('at'))} (seed {recorded.get('seed')})")
        out.print(f"{'same sample' if not problems else 'DIFFERS'}: {label}")
        for p in problems:
            out.print(f"    {_text(p)}")
        failed += bool(problems)
    if failed:
        raise typer.Exit(1)


@app.command("sample")
def sample(
    control: str = typer.Argument(..., help="The criterion (e.g. CC7.3)."),
    period: str = typer.Option(..., "--period", help="2026Q3, 2026 (a year) or 2026-07-01..2026-09-30."),
    size: Optional[int] = typer.Option(None, "--size", help="Sample size (1 to 1000)."),
    by_frequency: bool = typer.Option(False, "--by-frequency", help="Size by the control's frequency."),
    seed: Optional[int] = typer.Option(None, "--seed", help="The seed (0 to 2^63-1): the same seed re-draws the same sample."),
    kind: Optional[str] = typer.Option(None, "--population",
                                       help="resources, alerts, incidents, changes, access or manual "
                                            "(default: the criterion's own)."),
    verify: bool = typer.Option(False, "--verify", help="Re-draw the period's recorded draws of CONTROL and compare."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format"),
    ticket: Optional[str] = typer.Option(None, "--ticket-pattern", metavar="REGEX",
                                         help="Ticket references of changes (default: AUDITBOOK_TICKET_PATTERN)."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Draw a reproducible sample of CONTROL's population over the period and record it in the store."""
    from auditbook.catalog.model import load_catalog
    from auditbook.errors import UserError
    from auditbook.history.sampling import checked_seed, parse_audit_period, take_sample
    from auditbook.store.db import open_engine
    chosen = parse_audit_period(period)
    cat = load_catalog(catalog)
    if control not in {c.id for c in cat.controls}:
        raise UserError(f"CONTROL: {one_line(repr(control))} is not a criterion of the catalog")
    if verify:
        _verify(open_engine(db, create=False), cat, control, chosen, ticket)
        return
    if seed is None:
        raise UserError("--seed: required (the seed re-draws the same sample)")
    checked_seed(seed)
    drawn = take_sample(open_engine(db, create=False, writable=True), cat, operator("auditor"), control, chosen,
                        seed=seed, size=size, by_frequency=by_frequency, kind=kind, ticket=ticket)
    if fmt == OutputFormat.json:
        pop = drawn.pop("population")
        rows = {r["id"]: r for r in pop.rows}
        shown = {**drawn, "sample": [rows[i] for i in drawn["ids"]]}
        sys.stdout.write(json.dumps(shown, indent=1, sort_keys=True, default=_json_default) + "\n")
        return
    _print_draw(drawn)
