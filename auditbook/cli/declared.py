"""`auditbook declared`: the criteria the resources' control tag declares (SOC2_Control = "CC6.1"),
set against what the checks observed in a run — declared resources failing their criterion, declared
criteria no check evidences, in-scope resources without the tag, and tag values that are not criteria
(docs/declared-controls.md)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from auditbook.cli.common import CATALOG_OPT, DB_OPT, OutputFormat, app, out
from auditbook.errors import UserError, one_line, shown

STATE_STYLE = {"FAIL": "red", "ERROR": "yellow", "EXCEPTED": "magenta", "PASS": "green", "NOT_EVIDENCED": "blue"}


def _text(value) -> str:
    return escape(one_line("—" if value in (None, "") else str(value)))


def _only(view: dict, criterion: Optional[str]) -> dict:
    """The view narrowed to one criterion (the untagged resources and invalid tags are the run's)."""
    if criterion is None:
        return view
    keep = lambda rows: [r for r in rows if r["criterion"] == criterion]  # noqa: E731
    return {**view, "criteria": keep(view["criteria"]), "declared": keep(view["declared"]),
            "failing": keep(view["failing"]), "not_evidenced": keep(view["not_evidenced"]),
            "resources": [r for r in view["resources"] if criterion in r["criteria"]]}


def _table(title: str, columns: tuple[str, ...], rows: list[list], limit: int) -> Table:
    table = Table(title=title + (f" (first {limit} of {len(rows)})" if len(rows) > limit else ""))
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows[:limit]:
        table.add_row(*row)
    return table


def _where(r: dict) -> list[str]:
    return [_text(r["resource_type"]), _text(r["account"]), _text(r["region"]), _text(r["name"] or r["resource"])]


def _print(view: dict, limit: int) -> None:
    out.print(f"Declared controls of run {view['run']} (tag key {_text(view['tag_key'])}): "
              f"{len(view['resources'])} declared resources · failing their criterion {len(view['failing'])} · "
              f"not evidenced by any check {len(view['not_evidenced'])} · in scope without the tag "
              f"{len(view['untagged'])} · invalid tags {len(view['invalid'])}")
    out.print(_table("Per criterion", ("criterion", "declared", "fail", "error", "excepted", "pass", "not evidenced"),
                     [[c["criterion"], *(str(c[k]) for k in ("declared", "fail", "error", "excepted", "pass",
                                                             "not_evidenced"))] for c in view["criteria"]], limit))
    out.print(_table("Declared, failing their criterion's checks", ("criterion", "state", "type", "account", "region",
                                                                  "resource", "checks"),
                     [[r["criterion"], f"[{STATE_STYLE[r['state']]}]{r['state']}", *_where(r),
                       _text(", ".join(f"{c['check']} {c['status']}" + (" (account-wide)" if c["account_wide"] else "")
                                       for c in r["checks"] if c["status"] in ("FAIL", "ERROR")))]
                      for r in view["failing"]], limit))
    out.print(_table("Declared, not evidenced by any check", ("criterion", "type", "account", "region", "resource",
                                                            "why"),
                     [[r["criterion"], *_where(r), _text(r["reason"])] for r in view["not_evidenced"]], limit))
    out.print(_table(f"In scope, without a {_text(view['tag_key'])} tag", ("type", "account", "region", "resource"),
                     [_where(r) for r in view["untagged"]], limit))
    out.print(_table("Control tags that declare no criterion", ("type", "account", "region", "resource", "value",
                                                               "why"),
                     [[*_where(r), _text(r["value"]), _text(r["reason"])] for r in view["invalid"]], limit))
    for t in view["types_without_tags"]:
        out.print(f"tags not collected for {_text(t['resource_type'])} ({_text(t['reason'])}): its resources are "
                  "not listed as untagged")


@app.command()
def declared(
    run: str = typer.Option("latest", "--run", help="Run id, or 'latest'."),
    criterion: Optional[str] = typer.Option(None, "--criterion", help="Only this criterion's declared resources."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table or json."),
    limit: int = typer.Option(50, "--limit", min=1, max=100000, help="Rows shown per table (json: every row)."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Declared controls vs observed evidence: the criteria each resource's control tag declares."""
    from auditbook.catalog.model import load_catalog
    from auditbook.history.declared import declared as read
    from auditbook.store.db import open_engine
    cat = load_catalog(catalog)
    if criterion is not None and criterion not in {c.id for c in cat.controls}:
        raise UserError(f"--criterion: {shown(criterion)} is not a criterion of the catalog")
    view = _only(read(open_engine(db, create=False), cat, run), criterion)
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(view, indent=2, sort_keys=True) + "\n")
    else:
        _print(view, limit)
