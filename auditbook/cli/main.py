"""The auditbook command line. Thin: each command calls one core function."""
from __future__ import annotations

import csv
import io
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from auditbook import __version__
from auditbook.auth import PermissionDenied
from auditbook.errors import ScanAborted, UserError, one_line, shown

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="auditbook: continuous SOC 2 evidence for AWS.")
out = Console(soft_wrap=True)  # a line stays one line (greppable), whatever the terminal width
err = Console(stderr=True, soft_wrap=True)

DB_OPT = typer.Option(None, "--db", envvar="AUDITBOOK_DB",
                      help="SQLAlchemy URL of the store (default sqlite:///var/auditbook.db).")
CATALOG_OPT = typer.Option(None, "--catalog", help="Catalog file (default: the bundled controls.yaml).")


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    ocsf = "ocsf"
    asff = "asff"
    oscal = "oscal"


def _summary_table(summary: list[dict]) -> Table:
    table = Table(title="Posture by criterion (automated checks and manual evidence)", show_lines=False)
    for col in ("criterion", "title", "status", "checks", "pass", "fail", "error", "excepted"):
        table.add_column(col, justify="left" if col in ("criterion", "title", "status") else "right")
    colour = {"PASS": "green", "FAIL": "red", "ERROR": "yellow", "NEEDS_EVIDENCE": "cyan", "EXCEPTED": "magenta"}
    for row in summary:
        table.add_row(escape(row["control"]), escape(row["title"]),
                      f"[{colour[row['status']]}]{row['status'].replace('_', ' ').lower()}", str(row["checks"]),
                      f"[green]{row['PASS']}",
                      f"[red]{row['FAIL']}" if row["FAIL"] else "0",
                      f"[yellow]{row['ERROR']}" if row["ERROR"] else "0",
                      f"[magenta]{row.get('EXCEPTED', 0)}" if row.get("EXCEPTED") else "0")
    return table


@app.command()
def scan(
    accounts: Optional[Path] = typer.Option(None, "--accounts", help="YAML accounts file (id, role, external_id, name)."),
    org: Optional[str] = typer.Option(None, "--org", metavar="ROLE_NAME",
                                      help="Scan every account of the AWS Organization by assuming ROLE_NAME."),
    regions: Optional[str] = typer.Option(None, "--regions", help="Comma-separated regions, or 'all' (enabled regions)."),
    profile: Optional[str] = typer.Option(None, "--profile", envvar="AWS_PROFILE", help="AWS profile."),
    workers: int = typer.Option(12, "--workers", min=1, max=64, help="Concurrent API calls."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
    exceptions: Optional[Path] = typer.Option(None, "--exceptions", help="Exception register "
                                              "(default: exceptions.yaml here, if it exists)."),
):
    """Collect evidence, evaluate every check, store the run and print a summary."""
    from auditbook.scan import run_scan
    from auditbook.store.db import redacted

    if accounts and org:
        raise UserError("--accounts and --org cannot be used together")
    show = sys.stderr.isatty()
    progress = Progress(TextColumn("collecting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}"), console=err, transient=True, disable=not show)
    task = progress.add_task("", total=None)
    with progress:
        result = run_scan(accounts_file=accounts, org_role=org, regions=regions, db=db, profile=profile,
                          catalog_path=catalog, workers=workers, exceptions_path=exceptions,
                          on_plan=lambda n: progress.update(task, total=n),
                          on_progress=lambda label: progress.update(task, advance=1, description=label))
    out.print(_summary_table(result.summary))
    counts = {s: sum(1 for f in result.findings if f.status == s) for s in ("PASS", "FAIL", "ERROR", "EXCEPTED")}
    unreachable = [a for a in result.accounts if a["error"]]
    for acct in unreachable:
        err.print(f"[yellow]account {acct['account']} ({acct['name']}) unreachable: {acct['error']}")
    if result.collection.gaps:
        err.print(f"[yellow]{len(result.collection.gaps)} evidence gap(s): affected checks are ERROR "
                  f"(see `auditbook findings --run {result.run_id}`)")
    out.print(f"run {result.run_id}: {len(result.accounts)} account(s) x {len(result.regions)} region(s), "
              f"{len(result.collection.records)} resources, {result.collection.calls} API calls, "
              f"{result.seconds:.1f} s — PASS {counts['PASS']}, FAIL {counts['FAIL']}, ERROR {counts['ERROR']}, "
              f"EXCEPTED {counts['EXCEPTED']}")
    out.print(f"store: {redacted(result.db_url)}")
    out.print(f"run id: {result.run_id}")


@app.command()
def findings(
    run: str = typer.Option("latest", "--run", help="Run id, or 'latest'."),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json, csv, ocsf (OCSF Detection Finding), "
                               "asff (Security Hub) or oscal (OSCAL assessment-results)."),
    status: Optional[str] = typer.Option(None, "--status", help="Only PASS, FAIL, ERROR or EXCEPTED."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """The findings of a run."""
    from auditbook.store.db import open_engine
    from auditbook.store.query import findings_for_run, resolve_run

    engine = open_engine(db, create=False)
    run_row = resolve_run(engine, run)
    rows = findings_for_run(engine, run_row.id)
    wanted = _status_filter(status)
    if wanted:
        rows = [r for r in rows if r["status"] == wanted]
    if fmt in (Format.ocsf, Format.asff, Format.oscal):
        sys.stdout.write(json.dumps(_export(engine, run_row.id, rows, fmt, catalog), indent=2) + "\n")
    elif fmt == Format.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    elif fmt == Format.csv:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["check", "controls", "status", "severity", "account", "region",
                                                 "resource_type", "resource", "message", "evidence"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (";".join(v) if isinstance(v, list) else v) for k, v in r.items()
                             if k in writer.fieldnames})
        sys.stdout.write(buf.getvalue())
    else:
        table = Table(title=f"Findings of run {run_row.id}")
        for col in ("status", "severity", "check", "account", "region", "resource", "message"):
            table.add_column(col, overflow="fold")
        style = {"PASS": "green", "FAIL": "red", "ERROR": "yellow", "EXCEPTED": "magenta"}
        for r in rows:
            table.add_row(f"[{style[r['status']]}]{r['status']}", r["severity"], r["check"], r["account"],
                          r["region"], escape(r["resource"]), escape(r["message"]))
        out.print(table)


def _status_filter(status: Optional[str]) -> Optional[str]:
    """--status as a finding status (None: every status)."""
    if not status:
        return None
    if status.upper() not in ("PASS", "FAIL", "ERROR", "EXCEPTED"):
        raise UserError(f"--status: {shown(status)} is not PASS, FAIL, ERROR or EXCEPTED")
    return status.upper()


def _operator(role: str):
    """The person at the terminal, as an actor of `role`: the CLI's writes are authorised and
    recorded like every other front end's."""
    import getpass
    import os

    from auditbook.auth import Actor
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        name = f"uid {os.getuid()}"
    return Actor(f"{name} (cli)", role)


def _export(engine, run_id: int, rows: list[dict], fmt: Format, catalog: Optional[Path]):
    from auditbook.catalog.model import load_catalog
    from auditbook.report.exports import load_view

    view = load_view(engine, run_id, load_catalog(catalog), rows)
    if fmt == Format.ocsf:
        from auditbook.report.exports.ocsf import to_ocsf
        return to_ocsf(view)
    if fmt == Format.asff:
        from auditbook.report.exports.asff import to_asff
        return to_asff(view)
    from auditbook.report.exports.oscal import to_oscal
    return to_oscal(view)


export_app = typer.Typer(help="Send findings to other systems.", no_args_is_help=True)
app.add_typer(export_app, name="export")


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
    from botocore.exceptions import BotoCoreError, ClientError

    from auditbook.collect.clients import new_session
    from auditbook.catalog.model import load_catalog
    from auditbook.report.exports import load_view
    from auditbook.report.exports.asff import import_to_security_hub, to_asff
    from auditbook.store.db import open_engine
    from auditbook.store.query import resolve_run

    wanted = _status_filter(status)
    engine = open_engine(db, create=False)
    run_row = resolve_run(engine, run)
    view = load_view(engine, run_row.id, load_catalog(catalog))
    if wanted:
        view.rows = [r for r in view.rows if r["status"] == wanted]
    try:
        session = new_session(profile_name=profile)
        region = region or session.region_name or "us-east-1"
        sts, hub = session.client("sts", region_name=region), session.client("securityhub", region_name=region)
    except (BotoCoreError, ValueError) as exc:  # no such profile, a malformed region name
        raise UserError(f"--region/--profile: {one_line(str(exc))}")
    try:
        account = sts.get_caller_identity()["Account"]
        result = import_to_security_hub(hub, to_asff(view, importer_account=account, importer_region=region))
    except (ClientError, BotoCoreError) as exc:
        raise ScanAborted(f"Security Hub import failed: {one_line(str(exc))}")
    out.print(f"run {run_row.id}: {result['imported']} finding(s) imported into Security Hub "
              f"({account}, {region}); {len(result['failed'])} failed")
    for failure in result["failed"][:10]:
        err.print(f"[red]failed {escape(str(failure.get('Id')))}: {escape(str(failure.get('ErrorMessage')))}")
    if result["failed"]:
        raise typer.Exit(1)


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


evidence_app = typer.Typer(help="Manual evidence: documents for criteria, with owner and effective date.",
                           no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")


@evidence_app.command("add")
def evidence_add(
    criterion: str = typer.Argument(..., metavar="CRITERION"),
    file: Path = typer.Argument(..., metavar="FILE"),
    effective_date: str = typer.Option(..., "--effective-date", help="YYYY-MM-DD: the date the evidence speaks for."),
    owner: str = typer.Option(..., "--owner"),
    item: Optional[str] = typer.Option(None, "--item", help="Which required item (when the criterion has several)."),
    uploaded_by: Optional[str] = typer.Option(None, "--uploaded-by", help="Default: the current user."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Store a document as manual evidence for a criterion (SHA-256, owner, uploader, expiry from cadence)."""
    from auditbook.catalog.model import load_catalog
    from auditbook.evaluate.manual_evidence import add_evidence, parse_date
    from auditbook.store.db import open_engine

    cat = load_catalog(catalog)
    effective = parse_date(effective_date, "--effective-date")
    row = add_evidence(open_engine(db, writable=True), cat, criterion, file, effective=effective, owner=owner,
                       item=item, uploaded_by=uploaded_by)
    lapses = f"lapses {row.expires_on}" if row.expires_on else "does not lapse (per event)"
    out.print(f"{escape(row.criterion)} / {escape(row.item)}: {escape(row.filename)} sha256 {row.sha256[:16]}…, "
              f"effective {row.effective_date}, {lapses}")


@evidence_app.command("list")
def evidence_list(
    on: Optional[str] = typer.Option(None, "--on", help="YYYY-MM-DD (default today): state on this date."),
    due: bool = typer.Option(False, "--due", help="Only items missing or expired."),
    fmt: str = typer.Option("table", "--format", help="table or json"),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """What manual evidence each criterion has on a date, and what is due."""
    import datetime as dt

    from auditbook.catalog.model import load_catalog
    from auditbook.evaluate.manual_evidence import evidence_status, parse_date
    from auditbook.store.db import open_engine

    day = parse_date(on, "--on") if on else dt.date.today()
    rows = evidence_status(open_engine(db, create=False), load_catalog(catalog), day)
    if due:
        rows = [r for r in rows if r.state != "current"]
    if fmt == "json":
        sys.stdout.write(json.dumps([{
            "criterion": r.criterion, "item": r.item, "cadence": r.cadence, "state": r.state,
            "lapses": str(r.due) if r.due else None,
            "evidence": None if r.evidence is None else {
                "filename": r.evidence.filename, "sha256": r.evidence.sha256, "owner": r.evidence.owner,
                "uploaded_by": r.evidence.uploaded_by, "uploaded_at": r.evidence.uploaded_at.isoformat(),
                "effective_date": str(r.evidence.effective_date),
                "expires_on": str(r.evidence.expires_on) if r.evidence.expires_on else None}} for r in rows],
            indent=2) + "\n")
        return
    if fmt != "table":
        raise UserError(f"--format: {fmt!r} is not table or json")
    table = Table(title=f"Manual evidence on {day}")
    for col in ("criterion", "item", "cadence", "state", "file", "owner", "effective", "lapses"):
        table.add_column(col, overflow="fold")
    colour = {"current": "green", "expired": "red", "missing": "yellow"}
    for r in rows:
        e = r.evidence
        table.add_row(r.criterion, escape(r.item), r.cadence, f"[{colour[r.state]}]{r.state}",
                      escape(e.filename) if e else "", escape(e.owner) if e else "",
                      str(e.effective_date) if e else "", str(e.expires_on or "") if e else "")
    out.print(table)
    counts = {s: sum(1 for r in rows if r.state == s) for s in ("current", "expired", "missing")}
    out.print(f"{counts['current']} current, {counts['expired']} expired, {counts['missing']} missing")


exceptions_app = typer.Typer(help="The exception register: accepted risks with owner, approver and expiry.",
                             no_args_is_help=True)
app.add_typer(exceptions_app, name="exceptions")
EXC_FILE = typer.Option(None, "--file", help="Exception register (default: exceptions.yaml here).")


@exceptions_app.command("list")
def exceptions_list(file: Optional[Path] = EXC_FILE):
    """Every exception, in force or expired."""
    import datetime as dt

    from auditbook.evaluate.risk_register import load_register

    register = load_register(file)
    table = Table(title="Exception register")
    for col in ("id", "check", "account", "resource", "owner", "approver", "expires", "state", "justification"):
        table.add_column(col, overflow="fold")
    today = dt.date.today()
    for e in register.exceptions:
        state = "[green]in force" if e.in_force(today) else "[red]expired"
        table.add_row(escape(e.id), escape(e.check), e.account, escape(e.resource), escape(e.owner),
                      escape(e.approver), str(e.expires), state, escape(e.justification))
    out.print(table)


@exceptions_app.command("add")
def exceptions_add(
    exception_id: str = typer.Argument(..., metavar="ID"),
    check: str = typer.Option(..., "--check"),
    owner: str = typer.Option(..., "--owner"),
    justification: str = typer.Option(..., "--justification"),
    approver: str = typer.Option(..., "--approver"),
    expires: str = typer.Option(..., "--expires", help="YYYY-MM-DD"),
    account: str = typer.Option("*", "--account", help="12-digit account id, or * for any."),
    resource: str = typer.Option("*", "--resource", help="Pattern (fnmatch) over the resource ARN/id or name."),
    file: Optional[Path] = EXC_FILE,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Add an exception (refused without owner, justification, approver and expiry)."""
    from auditbook.catalog.model import load_catalog
    from auditbook.evaluate.risk_register import add_exception

    entry = add_exception({"id": exception_id, "check": check, "owner": owner, "justification": justification,
                           "approver": approver, "expires": expires, "account": account, "resource": resource},
                          {c.id for c in load_catalog(catalog).checks}, file, actor=_operator("admin"))
    out.print(f"added {escape(entry.id)}: {escape(check)} until {entry.expires}")


@exceptions_app.command("remove")
def exceptions_remove(exception_id: str = typer.Argument(..., metavar="ID"), file: Optional[Path] = EXC_FILE):
    """Remove an exception."""
    from auditbook.evaluate.risk_register import remove_exception

    remove_exception(exception_id, file, actor=_operator("admin"))
    out.print(f"removed {escape(exception_id)}")


@app.command("controls-doc")
def controls_doc(catalog: Optional[Path] = CATALOG_OPT):
    """Print docs/controls.md (criterion, checks, test procedure, manual evidence) from the catalog."""
    from auditbook.catalog.model import load_catalog
    from auditbook.catalog.docs import render_controls_md

    sys.stdout.write(render_controls_md(load_catalog(catalog)))


@app.command("collectors-doc")
def collectors_doc(path: Path = typer.Argument(Path("docs/collectors.md"))):
    """Print the given collectors doc with its resource-type section regenerated from the registry."""
    from auditbook.catalog.docs import splice_collectors_md
    from auditbook.yamlfile import read_text

    sys.stdout.write(splice_collectors_md(read_text(path), str(path)))  # a regular UTF-8 file of bounded size


@app.command()
def packet(
    period: Optional[str] = typer.Option(None, "--period", help="A quarter, e.g. 2026Q4."),
    start: Optional[str] = typer.Option(None, "--from", metavar="DATE", help="First day (YYYY-MM-DD), with --to."),
    end: Optional[str] = typer.Option(None, "--to", metavar="DATE", help="Last day (YYYY-MM-DD), with --from."),
    out_dir: Path = typer.Option(..., "--out", metavar="DIR", help="Folder to create for the packet (must not exist or be empty)."),
    signer: str = typer.Option(..., "--signer", help="ed25519:KEYFILE (from `auditbook keygen`) or kms:KEY_ARN."),
    previous: Optional[Path] = typer.Option(None, "--previous", metavar="DIR",
                                            help="The previous packet to chain to (default: the newest earlier packet in the store)."),
    workers: int = typer.Option(2, "--workers", min=1, max=8, help="Notebook kernels run in parallel."),
    notebooks: Optional[Path] = typer.Option(None, "--notebooks", metavar="DIR",
                                             help="Your own control.ipynb and packet_index.ipynb (default: the bundled ones)."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Build the signed, offline HTML audit packet for a period from the runs in the store."""
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.signing import parse_signer
    from auditbook.history.period import parse_period
    from auditbook.store.db import open_engine

    chosen = parse_period(period, start, end)
    sign = parse_signer(signer)  # checked before anything runs
    open_engine(db, create=False, writable=True)  # the store must exist, and take the packet's record at the end
    result = build_packet(period=chosen, out=out_dir, signer=sign, db=db, catalog_path=catalog,
                          previous_dir=previous, workers=workers, notebooks=notebooks,
                          on_progress=lambda m: err.print(f"  {escape(m)}"))
    out.print(f"packet {escape(str(result.path))}: {result.criteria} criteria, {result.runs} runs, "
              f"{result.files} files, {result.bytes / 2**20:.1f} MB, built in {result.seconds:.1f} s")
    out.print(f"manifest SHA-256 {result.manifest_sha256}" +
              (f" (chained to {result.previous_manifest_sha256})" if result.previous_manifest_sha256 else " (first in its chain)"))
    for f in result.failed:
        err.print(f"[red]notebook failed[/red] {escape(f['criterion'])}: {escape(f['error'])}")
    if result.failed:
        raise typer.Exit(1)


@app.command()
def keygen(out_prefix: str = typer.Option("auditbook", "--out", metavar="PREFIX",
                                          help="Writes PREFIX.key (private, mode 0600) and PREFIX.pub.")):
    """Make an Ed25519 key pair for signing packets."""
    from auditbook.report.packet.signing import keygen as make
    try:
        private, public = make(out_prefix)
    except (OSError, ValueError) as exc:  # an unwritable folder, a full disk, a NUL in the name
        key = Path(f"{out_prefix}.key")
        if key.is_file() and not Path(f"{out_prefix}.pub").exists():
            key.unlink()  # keygen never overwrites, so this half pair is the one just made: leave nothing half-written
        raise UserError(f"--out: cannot write {shown(getattr(exc, 'filename', None) or out_prefix)}: "
                        f"{getattr(exc, 'strerror', None) or exc}")
    out.print(f"private key {escape(str(private))} (keep it secret), public key {escape(str(public))} (give it to auditors)")


@app.command()
def verify(
    directory: Path = typer.Argument(..., metavar="DIR", help="The packet folder."),
    public_key: Optional[Path] = typer.Option(None, "--public-key", metavar="FILE", help="PEM public key (Ed25519, or the KMS key's)."),
    kms: Optional[str] = typer.Option(None, "--kms", metavar="KEY_ARN", help="Verify with AWS KMS instead."),
    previous: Optional[Path] = typer.Option(None, "--previous", metavar="DIR", help="The previous packet of the chain."),
):
    """Check a packet: the signature, every file, and the chain. Prints "valid" or what failed."""
    from auditbook.report.packet.manifest import verify_packet
    from auditbook.report.packet.signing import kms_client_for, load_public_key
    if (public_key is None) == (kms is None):
        raise UserError("--public-key: give exactly one of --public-key FILE or --kms KEY_ARN")
    key = load_public_key(public_key) if public_key else None
    client = kms_client_for(kms, "--kms") if kms is not None else None  # a malformed key or region stops here
    result = verify_packet(directory, public_key=key, kms_key=kms, previous=previous, kms_client=client)
    if result.valid:
        out.print("valid")
        return
    for problem in result.problems:  # already escaped, one line each: printed as they are (no rich markup)
        sys.stderr.write(f"invalid: {problem}\n")
    raise typer.Exit(1)


@app.command("app")
def control_room(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (127.0.0.1 unless an identity provider is configured)."),
    port: int = typer.Option(8501, "--port"),
    local_role: str = typer.Option("admin", "--local-role",
                                   help="Role of the single local user when no identity provider is configured."),
    exceptions: Optional[Path] = typer.Option(None, "--exceptions", help="Exception register the admin page edits."),
    public_host: Optional[str] = typer.Option(None, "--public-host",
                                              help="Host name users reach the control room by (e.g. behind a proxy); "
                                                   "requests naming another host than it or a loopback name are refused."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Start the Streamlit control room on the store the CLI uses: prints the link to open (with its
    one-time-per-start token in local mode), then this process becomes the server."""
    from auditbook.web.server import serve
    serve(db, host, port, local_role=local_role, catalog=str(catalog) if catalog else None,
          exceptions=str(exceptions) if exceptions else None, public_host=public_host)


class AlertFormat(str, Enum):
    table = "table"
    json = "json"


@app.command("alerts")
def alerts_list(
    state: Optional[list[str]] = typer.Option(None, "--state", help="firing, acknowledged, resolved (repeatable)."),
    fmt: AlertFormat = typer.Option(AlertFormat.table, "--format"),
    db: Optional[str] = DB_OPT,
):
    """List alerts (json: rule, state, severity, soc2_control, labels, first/last seen, count, evidence)."""
    from auditbook.monitor import alerts as core
    from auditbook.monitor.cloudtrail import evidence_records
    from auditbook.store.db import open_engine
    for s in state or []:
        if s not in core.STATES:
            raise UserError(f"--state: {shown(s)} is not one of {', '.join(core.STATES)}")
    engine = open_engine(db, create=False)
    rows = core.list_alerts(engine, tuple(state) if state else None)
    if fmt == AlertFormat.json:
        from auditbook.store.query import evidence_body
        docs = []
        for a in rows:
            if a["rule"] == core.REGRESSED:
                evidence = [{"sha256": h, "body": evidence_body(engine, h)} for h in a["evidence"]]
            else:
                evidence = evidence_records(engine, a)
            docs.append({"id": a["id"], "rule": a["rule"], "state": a["state"], "severity": a["severity"],
                         "soc2_control": a["soc2_control"], "labels": a["labels"], "summary": a["summary"],
                         "first_seen": a["first_seen"].isoformat(), "last_seen": a["last_seen"].isoformat(),
                         "count": a["count"], "acknowledged_by": a["acknowledged_by"], "evidence": evidence})
        sys.stdout.write(json.dumps(docs, indent=1, default=str) + "\n")
        return
    table = Table(title=f"Alerts ({len(rows)})")
    for col in ("id", "state", "severity", "rule", "soc2", "labels", "count", "last seen"):
        table.add_column(col)
    for a in rows:
        table.add_row(str(a["id"]), a["state"], a["severity"], escape(a["rule"]), escape(a["soc2_control"]),
                      escape(", ".join(f"{k}={v}" for k, v in a["labels"].items())), str(a["count"]),
                      a["last_seen"].strftime("%Y-%m-%d %H:%M"))
    out.print(table)


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
    db: Optional[str] = DB_OPT,
):
    """Read new CloudTrail logs, evaluate the alerting rules, resolve what has gone quiet, notify; on a loop."""
    import time as _time

    from auditbook.monitor.notify import load_channels
    from auditbook.monitor.rules import load_rules
    from auditbook.monitor.runbooks import aws_client
    from auditbook.store.db import open_engine
    from auditbook.monitor.watch import cycle
    load_rules(rules)  # a bad rules file stops here, in one line
    channels = load_channels(notify) if notify else []
    engine = open_engine(db, writable=True)
    lookups = [aws_client("cloudtrail", r) for r in lookup_events or []]  # a bad region stops here
    clients = {}

    def s3_for(name):
        if "s3" not in clients:
            clients["s3"] = aws_client("s3")
        return clients["s3"]
    while True:
        result = cycle(engine, s3_for, list(bucket or []), rules, prefix, channels=channels, lookup_clients=lookups)
        for name, r in result.ingest.items():
            out.print(f"{escape(name)}: {r.files} new files ({r.skipped} read before), {r.records} records, "
                      f"{r.matches} matches, {r.fired} alerts raised, {r.records / max(r.seconds, 1e-9):,.0f} records/s")
            for key, reason in r.bad_files:
                err.print(f"[yellow]evidence gap[/yellow] {escape(name)}/{escape(key)}: {escape(reason)}")
        for rule_name, resource, reason in result.posture_gaps:
            err.print(f"[yellow]evidence gap[/yellow] posture rule {escape(rule_name)} on {escape(resource)}: "
                      f"{escape(reason)} (not evaluated)")
        for e in result.escalated:
            err.print(f"[red]escalated[/red] incident {e['incident']}: {e['sla']} SLA breached")
        out.print(f"posture rules raised {result.posture_fired}; {result.resolved} alerts resolved; "
                  + (f"notifications sent {result.notifications['sent']}, failed {result.notifications['failed']}; "
                     if result.notifications else "") + f"cycle {result.seconds:.1f} s")
        if once:
            if result.unread_sources:  # a bucket not listed / LookupEvents failed: nothing of it was read
                raise typer.Exit(1)
            return
        _time.sleep(interval)


INCIDENT_OPT = typer.Option(..., "--incident", min=1, max=2**63 - 1, help="The incident (its id) the runbook answers.")
runbook_app = typer.Typer(help="Containment runbooks: a dry run first; --yes runs it and writes the result to the incident.")
app.add_typer(runbook_app, name="runbook")


def _runbook(incident: int, service: str, region: Optional[str], make_plan, yes: bool, db: Optional[str]) -> None:
    """Check the store and the incident, plan with a `service` client (the dry run), and run with --yes."""
    from auditbook.monitor.runbooks import active_incident, aws_client, execute
    from auditbook.store.db import open_engine
    engine = open_engine(db, create=False, writable=yes)  # the incident is in an existing store
    active_incident(engine, incident)  # before any AWS call
    client = aws_client(service, region)
    plan = make_plan(client)
    out.print(f"{plan.runbook} on {escape(plan.target)} — the calls it makes:")
    for line in plan.lines():
        out.print(f"  {escape(line)}")
    if not yes:
        out.print("dry run: nothing was changed. Run again with --yes to do it.")
        return
    # the CLI operator holds the AWS credentials; it acts as an analyst (the control room checks its users' roles)
    result = execute(engine, _operator("analyst"), incident, plan, {service: client}, confirm=True)
    out.print(f"done; recorded on incident {incident}" +
              (f" (quarantine group {result['quarantine_group']})" if result.get("quarantine_group") else ""))


@runbook_app.command("quarantine-instance")
def runbook_quarantine(instance: str = typer.Option(..., "--instance"), incident: int = INCIDENT_OPT,
                       region: Optional[str] = typer.Option(None, "--region"), yes: bool = typer.Option(False, "--yes"),
                       db: Optional[str] = DB_OPT):
    """Swap an EC2 instance's security groups for a deny-all quarantine group (the old ones are recorded)."""
    from auditbook.monitor.runbooks import plan_quarantine
    _runbook(incident, "ec2", region, lambda ec2: plan_quarantine(ec2, instance), yes, db)


@runbook_app.command("deactivate-access-key")
def runbook_deactivate(user: str = typer.Option(..., "--user"), key: str = typer.Option(..., "--key"),
                       incident: int = INCIDENT_OPT, yes: bool = typer.Option(False, "--yes"),
                       db: Optional[str] = DB_OPT):
    """Deactivate an IAM user's access key."""
    from auditbook.monitor.runbooks import plan_deactivate_key
    _runbook(incident, "iam", None, lambda iam: plan_deactivate_key(iam, user, key), yes, db)


@runbook_app.command("disable-console-login")
def runbook_disable_login(user: str = typer.Option(..., "--user"), incident: int = INCIDENT_OPT,
                          yes: bool = typer.Option(False, "--yes"), db: Optional[str] = DB_OPT):
    """Remove an IAM user's console password (login profile)."""
    from auditbook.monitor.runbooks import plan_disable_login
    _runbook(incident, "iam", None, lambda iam: plan_disable_login(iam, user), yes, db)


@app.command()
def exporter(host: str = typer.Option("127.0.0.1", "--host"), port: int = typer.Option(9108, "--port", min=0, max=65535),
             db: Optional[str] = DB_OPT, catalog: Optional[Path] = CATALOG_OPT):
    """Serve posture, alert, denied-access and key-rotation metrics for Prometheus (/metrics)."""
    import time as _time

    from prometheus_client import start_http_server

    from auditbook.catalog.model import load_catalog
    from auditbook.monitor.prometheus import registry
    from auditbook.store.db import open_engine
    metrics = registry(open_engine(db, create=False), load_catalog(catalog))
    try:
        start_http_server(port, addr=host, registry=metrics)
    except OSError as exc:  # address in use, not an address of this host
        raise UserError(f"--host/--port: cannot listen on {shown(host)}:{port}: {exc.strerror or exc}")
    out.print(f"metrics on http://{host}:{port}/metrics — Ctrl-C stops it")
    try:
        while True:
            _time.sleep(3600)
    except KeyboardInterrupt:
        return


@app.command()
def demo(
    port: int = typer.Option(5055, "--port", min=0, max=65535, help="Port for the local moto server (127.0.0.1)."),
    db: Optional[str] = typer.Option("sqlite:///var/demo/auditbook.db", "--db", help="Store for the demo run."),
    keep_running: bool = typer.Option(False, "--keep-running", help="Leave the moto server running at the end."),
    packet: bool = typer.Option(True, "--packet/--no-packet",
                                help="Simulate the last quarter of daily scans and build its signed packet."),
    app_port: int = typer.Option(8501, "--app-port", min=0, max=65535, help="Port of the control room started at the end (0: do not start it)."),
):
    """Start a local moto server, build the simulated organisation, simulate a quarter of daily scans,
    scan it today, build the signed audit packet of the simulated quarter, and start the control room."""
    from auditbook.demo.run import run_demo

    run_demo(port=port, db=db, keep_running=keep_running, console=out, packet=packet, app_port=app_port or None)


@app.command()
def version():
    """Print the tool version."""
    out.print(__version__)


def main():
    try:
        code = app(standalone_mode=False)  # typer.Exit(n) comes back as n
        if code == 130:  # typer turns Ctrl-C (KeyboardInterrupt) into Exit(130) under standalone_mode=False
            sys.stderr.write("interrupted: nothing was written\n")
            sys.exit(130)
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.TyperException as exc:
        # click's usage errors (typer vendors click: they are not click.ClickException): the usage
        # line, a hint and "Error: …"; exit 2
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            sys.stderr.write(f"Error: {one_line(exc.format_message())}\n")
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted: nothing was written\n")
        sys.exit(1)
    except (UserError, PermissionDenied) as exc:
        sys.stderr.write(f"error: {one_line(str(exc))}\n")
        sys.exit(2)
    except ScanAborted as exc:
        sys.stderr.write(f"error: {one_line(str(exc))}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: nothing was written\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
