"""`auditbook bridge`: the signed bridge letter for the days since the last report's period ended, and
`auditbook gaps`: the monitoring gaps (days without a scan) of a period with their reasons, and
recording a reason (admins; in the audit trail). docs/bridge.md."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from auditbook.cli.common import (
    CATALOG_OPT,
    DB_OPT,
    OutputFormat,
    app,
    group,
    operator,
    out,
)
from auditbook.errors import one_line

gaps_app = group("gaps", "Monitoring gaps (days without a scan) and the reason for each.")


def _t(value) -> str:
    """Stored or hostile text as one printable line, shown as typed (never rich markup)."""
    return escape(one_line("—" if value is None else str(value)))


@app.command()
def bridge(
    since: str = typer.Option(..., "--since", metavar="DATE", help="The last report's period end (YYYY-MM-DD)."),
    to: Optional[str] = typer.Option(None, "--to", metavar="DATE", help="The letter's last day (default today, UTC)."),
    out_dir: Path = typer.Option(..., "--out", metavar="DIR", help="Folder to create for the letter (new or empty)."),
    signer: str = typer.Option(..., "--signer", help="ed25519:KEYFILE (from `auditbook keygen`) or kms:KEY_ARN."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
):
    """Write the signed bridge letter: what was monitored since the last report's end, the gaps with
    their reasons, each criterion's status, the deviations and incidents of those days."""
    from auditbook.report.bridge import bridge_window, build_bridge
    from auditbook.report.packet.signing import parse_signer
    bridge_window(since, to, dt.datetime.now(dt.timezone.utc).date())  # bad dates are named before the key is read
    sign = parse_signer(signer)
    result = build_bridge(since=since, to=to, out=out_dir, signer=sign, db=db, catalog_path=catalog)
    w = result.window
    out.print(f"bridge letter {_t(result.path)}: {w.start} to {w.end}, {result.observed} of {result.days} days "
              f"with a scan, {result.gap_days} without ({result.unexplained_gap_days} with no reason recorded), "
              f"{result.deviations} deviations, {result.incidents} incidents", highlight=False)
    out.print(f"manifest SHA-256 {result.manifest_sha256}", highlight=False)


@gaps_app.command("explain")
def gaps_explain(
    start: str = typer.Option(..., "--from", metavar="DATE", help="First day without a scan (YYYY-MM-DD)."),
    end: str = typer.Option(..., "--to", metavar="DATE", help="Last day without a scan (YYYY-MM-DD)."),
    reason: str = typer.Option(..., "--reason", help="Why no scan ran (kept with who and when, shown to the auditor)."),
    db: Optional[str] = DB_OPT,
):
    """Record why days had no scan (admin; in the audit trail; a later reason supersedes)."""
    from auditbook.history.gaps import explain_gap
    from auditbook.store.db import open_engine
    entry = explain_gap(open_engine(db, create=False, writable=True), operator("admin"), start, end, reason)
    out.print(f"reason recorded for {entry['from']} to {entry['to']}: {_t(entry['reason'])}", highlight=False)


@gaps_app.command("list")
def gaps_list(
    start: str = typer.Option(..., "--from", metavar="DATE", help="First day (YYYY-MM-DD)."),
    end: str = typer.Option(..., "--to", metavar="DATE", help="Last day (YYYY-MM-DD)."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format"),
    db: Optional[str] = DB_OPT,
):
    """The days of a period without a scan, each range with its reason (as data/gaps.json)."""
    from auditbook.history.gaps import monitoring_gaps
    from auditbook.history.period import parse_period, period_runs
    from auditbook.store.db import open_engine
    chosen = parse_period(None, start, end)
    engine = open_engine(db, create=False)
    gaps = monitoring_gaps(engine, period_runs(engine, chosen))
    if fmt == OutputFormat.json:
        sys.stdout.write(json.dumps(gaps, indent=1, sort_keys=True) + "\n")
        return
    out.print(f"Monitoring gaps {chosen.start} to {chosen.end}: {sum(g['days'] for g in gaps)} days", highlight=False)
    for g in gaps:
        who = f" ({_t(g['explained_by'])}, {_t(g['explained_at'][:16])})" if g["explained_by"] else ""
        out.print(f"  {g['from']} .. {g['to']} ({g['days']} days): {_t(g['reason'])}{who}", highlight=False)
