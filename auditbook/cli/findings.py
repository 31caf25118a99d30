"""`auditbook scan`, `findings` and `export`: run the pipeline, read a run, send it elsewhere."""
from __future__ import annotations

import csv
import io
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from auditbook.cli.common import CATALOG_OPT, DB_OPT, app, err, group, out
from auditbook.cli.evidence import EVIDENCE_OPT, RETENTION_OPT, evidence_bucket
from auditbook.errors import UserError
from auditbook.gc_tuning import collector_paused
from auditbook.plugins import PluginConflict, export_formats

PLAIN_FORMATS = ("table", "json", "csv")


def _format_choices() -> tuple[str, ...]:
    """The choices of --format: the plain ones and every registered export format (built-in or a
    plugin's); a format that takes a plain one's name is refused, never shadowed."""
    formats = sorted(export_formats())
    for name in formats:
        if name in PLAIN_FORMATS:
            raise PluginConflict(f"export_formats: {name!r} is already an output of `auditbook findings`")
    return (*PLAIN_FORMATS, *formats)


FindingsFormat = Enum("FindingsFormat", {name: name for name in _format_choices()}, type=str)
CSV_FIELDS = ["check", "controls", "status", "severity", "account", "region", "resource_type", "resource",
              "message", "evidence", "declared_criteria", "fails_declared"]


@app.command()
def scan(
    accounts: Optional[Path] = typer.Option(None, "--accounts", help="YAML accounts file (id, role, external_id, name)."),
    org: Optional[str] = typer.Option(None, "--org", metavar="ROLE_NAME",
                                      help="Scan every account of the AWS Organization by assuming ROLE_NAME."),
    regions: Optional[str] = typer.Option(None, "--regions", help="Comma-separated regions, or 'all' (enabled regions)."),
    profile: Optional[str] = typer.Option(None, "--profile", envvar="AWS_PROFILE", help="AWS profile."),
    workers: int = typer.Option(12, "--workers", min=1, max=64, help="Concurrent API calls (on a Dask cluster: "
                                "per task, and each worker thread runs one task)."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
    exceptions: Optional[Path] = typer.Option(None, "--exceptions", help="Exception register "
                                              "(default: exceptions.yaml here, if it exists)."),
    details: bool = typer.Option(False, "--details", help="Print every criterion's status and check counts "
                                 "(default: a compact summary)."),
    executor: str = typer.Option("local", "--executor", envvar="AUDITBOOK_EXECUTOR",
                                 metavar="local|inline|dask://HOST:PORT|tls://HOST:PORT",
                                 help="Where the collection runs: a collection process started with the command "
                                 "(local), this process's own threads (inline), or a Dask cluster's workers, each "
                                 "assuming the accounts' roles itself (docs/distributed.md)."),
    rate_limits: Optional[Path] = typer.Option(None, "--rate-limits", envvar="AUDITBOOK_RATE_LIMITS", metavar="FILE",
                                               help="Rate limits per (account, region, service): docs/rate-limits.md "
                                               "(default: adaptive only, AWS's throttling sets the pace)."),
    evidence: Optional[str] = EVIDENCE_OPT,
    retention: str = RETENTION_OPT,
):
    """Collect evidence, evaluate every check, store the run and print a summary."""
    # with --executor local, run_scan takes the collection process cli.entry started as the program began
    # (it imports botocore and builds the clients while this process imports the store and opens it)
    with collector_paused():  # auditbook.gc_tuning: the scan's modules live as long as the process
        from auditbook.scan import run_scan
    if accounts and org:
        raise UserError("--accounts and --org cannot be used together")
    limits = load_limits(rate_limits)
    bucket = evidence_bucket(evidence, retention)  # no Object Lock: refused before anything is read
    progress = Progress(TextColumn("collecting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}"), console=err, transient=True, disable=not sys.stderr.isatty())
    task = progress.add_task("", total=None)
    with progress:
        result = run_scan(accounts_file=accounts, org_role=org, regions=regions, db=db, profile=profile,
                          catalog_path=catalog, workers=workers, exceptions_path=exceptions, executor=executor,
                          rate_limits=limits, evidence_bucket=bucket,
                          on_plan=lambda n: progress.update(task, total=n),
                          on_progress=lambda label: progress.update(task, advance=1, description=label))
    _say_scan(result, details)


def load_limits(path: Optional[Path]):
    """--rate-limits FILE, checked (None without one: botocore is not imported for it)."""
    if path is None:
        return None
    from auditbook.collect.ratelimit import load_rate_limits
    return load_rate_limits(path)


def _say_scan(result, details: bool) -> None:
    """A scan's summary: posture, accounts unreachable, keys AWS throttled, gaps, counts, where it is stored."""
    from auditbook.report.terminal import criteria_table, posture_summary
    from auditbook.store.db import redacted
    if details:
        out.print(criteria_table(result.summary))
    else:
        out.print(posture_summary(result.summary, result.catalog))  # the catalog the scan read
    for acct in (a for a in result.accounts if a["error"]):
        err.print(f"[yellow]account {acct['account']} ({escape(acct['name'] or '')}) unreachable: "
                  f"{escape(acct['error'])}")
    if result.collection.throttled:
        throttled = result.collection.throttled
        err.print(f"[yellow]AWS throttled {sum(s['throttled'] for s in throttled.values())} request(s) on "
                  f"{len(throttled)} account/region/service key(s), e.g. {escape(next(iter(throttled)))}: "
                  "retried with backoff (docs/rate-limits.md)")
    if result.collection.gaps:
        err.print(f"[yellow]{len(result.collection.gaps)} evidence gap(s): affected checks are ERROR "
                  f"(see `auditbook findings --run {result.run_id}`)")
    counts = {s: sum(1 for f in result.findings if f.status == s) for s in ("PASS", "FAIL", "ERROR", "EXCEPTED")}
    out.print(f"run {result.run_id}: {len(result.accounts)} account(s) x {len(result.regions)} region(s), "
              f"{len(result.collection.records)} resources, {result.collection.calls} API calls, "
              f"{result.seconds:.1f} s — PASS {counts['PASS']}, FAIL {counts['FAIL']}, ERROR {counts['ERROR']}, "
              f"EXCEPTED {counts['EXCEPTED']}")
    out.print(f"store: {escape(redacted(result.db_url))}")
    out.print(f"run id: {result.run_id}")
    out.print(f"  what fails, resource by resource: auditbook findings --run {result.run_id} --status FAIL")
    if not details:
        out.print("  every criterion: auditbook scan --details")


@app.command()
def findings(
    run: str = typer.Option("latest", "--run", help="Run id, or 'latest'."),
    fmt: FindingsFormat = typer.Option("table", "--format", help="table, json, csv, or a registered export "
                                       "format (`auditbook export formats`)."),
    status: Optional[str] = typer.Option(None, "--status", help="Only PASS, FAIL, ERROR or EXCEPTED."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """The findings of a run."""
    from auditbook.catalog.model import load_catalog
    from auditbook.history.declared import annotated_findings
    from auditbook.report.exports.view import render
    from auditbook.store.db import open_engine
    fmt = fmt.value
    engine = open_engine(db, create=False)
    if fmt not in PLAIN_FORMATS:  # an export format from the registry (an unknown one: one line)
        document = render(engine, run, fmt, load_catalog(catalog), status=status)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    record, rows = annotated_findings(engine, load_catalog(catalog), run, status)  # docs/declared-controls.md
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif fmt == "csv":
        sys.stdout.write(_csv(rows))
    else:
        out.print(_table(record.id, rows))


def _csv(rows: list[dict]) -> str:
    from auditbook.history.populations import neutralised
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for r in rows:  # cells a spreadsheet would run as a formula are neutralised, as in every CSV we write
        writer.writerow({k: neutralised(";".join(v) if isinstance(v, list) else "" if v is None else str(v))
                         for k, v in r.items() if k in CSV_FIELDS})
    return buf.getvalue()


def _table(run_id: int, rows: list[dict]) -> Table:
    table = Table(title=f"Findings of run {run_id}")
    for col in ("status", "severity", "check", "account", "region", "resource", "message", "declared"):
        table.add_column(col, overflow="fold")
    style = {"PASS": "green", "FAIL": "red", "ERROR": "yellow", "EXCEPTED": "magenta"}
    for r in rows:
        declared = ", ".join(r.get("declared_criteria") or [])
        failing = ", ".join(r.get("fails_declared") or [])
        table.add_row(f"[{style[r['status']]}]{r['status']}", r["severity"], r["check"], r["account"],
                      r["region"], escape(r["resource"]), escape(r["message"]),
                      f"[red]fails declared {failing}[/red]" if failing else escape(declared))
    return table


export_app = group("export", "Send findings to other systems, or list the export formats.")


@export_app.command("formats")
def export_list():
    """The registered export formats (`findings --format NAME`), built-in and from plugins."""
    formats = export_formats()
    for name in sorted(formats):
        out.print(f"{name}: {escape(formats[name].help)}")


@export_app.command("securityhub")
def export_securityhub(
    run: str = typer.Option("latest", "--run", help="Run id, or 'latest'."),
    region: Optional[str] = typer.Option(None, "--region", help="Security Hub region (default: the session's)."),
    status: Optional[str] = typer.Option(None, "--status", help="Only findings with this status."),
    profile: Optional[str] = typer.Option(None, "--profile", envvar="AWS_PROFILE", help="AWS profile."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Import a run's findings into AWS Security Hub (BatchImportFindings, ASFF)."""
    from auditbook.catalog.model import load_catalog
    from auditbook.report.exports.asff import security_hub_import
    from auditbook.report.exports.view import load_view
    from auditbook.store.db import open_engine
    view = load_view(open_engine(db, create=False), run, load_catalog(catalog), status=status)
    result = security_hub_import(view, region, profile)
    out.print(f"run {view.run.id}: {result['imported']} finding(s) imported into Security Hub "
              f"({result['account']}, {result['region']}); {len(result['failed'])} failed")
    for failure in result["failed"][:10]:
        err.print(f"[red]failed {escape(str(failure.get('Id')))}: {escape(str(failure.get('ErrorMessage')))}")
    if result["failed"]:
        raise typer.Exit(1)
