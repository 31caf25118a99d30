"""`auditbook validate`, `policy`, `parameters`, `controls-doc`, `collectors-doc`: the catalog and the collectors; and
`auditbook controls export|import|status`: the company's own controls (docs/company-controls.md)."""
from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from auditbook.cli.common import CATALOG_OPT, DB_OPT, OutputFormat, app, err, group, out
from auditbook.errors import one_line


@app.command()
def validate(catalog: Optional[Path] = CATALOG_OPT):
    """Validate the catalog and print what it holds."""
    from auditbook.catalog.model import load_catalog
    cat = load_catalog(catalog)
    out.print(f"{cat.path}: valid — {len(cat.controls)} criteria, {len(cat.checks)} checks "
              f"(sha256 {cat.sha256[:16]}…)")


@app.command()
def policy(
    catalog: Optional[Path] = CATALOG_OPT,
    org: bool = typer.Option(False, "--org", help="Also the actions to list the organisation and assume roles."),
):
    """Print the least-privilege IAM policy: exactly the actions the collectors declare."""
    from auditbook.catalog.model import load_catalog
    from auditbook.collect.policy import policy_document
    sys.stdout.write(json.dumps(policy_document(load_catalog(catalog), org=org), indent=2) + "\n")


@app.command()
def parameters(
    catalog: Optional[Path] = CATALOG_OPT,
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", help="table or json."),
):
    """Print the thresholds the checks read: value in force, default, where it was set, the checks
    that read it (docs/parameters.md)."""
    from auditbook.catalog.model import load_catalog
    from auditbook.catalog.parameters import as_text, parameter_rows
    cat = load_catalog(catalog)
    rows = parameter_rows(cat.parameters, cat.checks)
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    for row in rows:
        value = as_text(row["value"])
        changed = "" if row["source"] == "default" else f" (default {as_text(row['default'])})"
        where = "the default" if row["source"] == "default" else f"set in {row['source']}"
        out.print(f"{escape(row['parameter'])} = {escape(value)}{escape(changed)} — {escape(where)}; "
                  f"read by {len(row['checks'])} check(s)")


@app.command("controls-doc")
def controls_doc(catalog: Optional[Path] = CATALOG_OPT):
    """Print docs/controls.md (criterion, checks, test procedure, manual evidence) from the catalog."""
    from auditbook.catalog.docs import render_controls_md
    from auditbook.catalog.model import load_catalog
    sys.stdout.write(render_controls_md(load_catalog(catalog)))


@app.command("collectors-doc")
def collectors_doc(path: Path = typer.Argument(Path("docs/collectors.md"))):
    """Print the given collectors doc with its resource-type section regenerated from the registry."""
    from auditbook.catalog.docs import splice_collectors_md
    from auditbook.yamlfile import read_text
    sys.stdout.write(splice_collectors_md(read_text(path), str(path)))  # a regular UTF-8 file of bounded size


# -- the company's own controls (docs/company-controls.md) -------------------------------------------

controls_app = group("controls", "The company's own controls: their status over a period, and the mapping "
                                 "to criteria, checks and manual items as CSV or OSCAL.")


class MappingFormat(str, Enum):
    csv = "csv"
    oscal = "oscal"


def _emit(text: str, path: Optional[Path], force: bool) -> None:
    from auditbook.report.exports.company import write_new
    if path is None:
        sys.stdout.write(text)
        return
    write_new(path, text, force)
    err.print(f"wrote {escape(one_line(str(path)))}")


@controls_app.command("export")
def controls_export(
    fmt: MappingFormat = typer.Option(..., "--format", help="csv (the auditor's workpapers) or oscal (a component "
                                                          "definition)."),
    out_path: Optional[Path] = typer.Option(None, "--out", help="Write to this file (default: standard output)."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Export the company controls and their mapping to criteria, checks and manual items."""
    from auditbook.catalog.model import load_catalog
    from auditbook.report.exports.company import component_definition, mapping_csv
    cat = load_catalog(catalog)
    text = (mapping_csv(cat) if fmt == MappingFormat.csv
            else json.dumps(component_definition(cat), indent=2, ensure_ascii=False) + "\n")
    _emit(text, out_path, force)


@controls_app.command("import")
def controls_import(
    path: Path = typer.Argument(..., help="A mapping CSV (as `controls export --format csv` writes it)."),
    out_path: Path = typer.Option(..., "--out", help="The library file to write (name it in controls.yaml with "
                                                     "include:)."),
    force: bool = typer.Option(False, "--force", help="Replace --out if it exists."),
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Read a mapping CSV, validate it against the catalog and write it as a company control library."""
    from auditbook.catalog.model import load_catalog
    from auditbook.report.exports.company import library_yaml, read_mapping_csv
    controls = read_mapping_csv(path, load_catalog(catalog))
    _emit(library_yaml(controls), out_path, force)
    out.print(f"{len(controls)} company controls validated")


@controls_app.command("status")
def controls_status(
    period: str = typer.Option(..., "--period", help="2026Q3, 2026 (a year) or 2026-07-01..2026-09-30."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format"),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Each company control over the period: its status (the worst of its criteria's) and its mapping."""
    from auditbook.catalog.model import load_catalog
    from auditbook.history.company_controls import company_overview
    from auditbook.history.period import period_runs
    from auditbook.history.sampling import parse_audit_period
    from auditbook.store.db import open_engine
    chosen, cat = parse_audit_period(period), load_catalog(catalog)
    engine = open_engine(db, create=False)
    rows = company_overview(engine, cat, period_runs(engine, chosen))
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
        return
    if not rows:
        out.print("no company controls in the catalog (docs/company-controls.md)")
    for row in rows:
        criteria = ", ".join(f"{c} {s}" for c, s in row["criterion_status"].items())
        out.print(f"[bold]{escape(row['id'])}[/bold] {row['status']} · {escape(one_line(row['owner']))} · "
                  f"{row['frequency']} · {criteria}")
        out.print(f"    {escape(one_line(row['statement']))}")
