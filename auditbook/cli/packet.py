"""`auditbook packet`, `keygen`, `verify`: the signed Type II audit packet."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from auditbook.cli.common import CATALOG_OPT, DB_OPT, app, err, out
from auditbook.cli.evidence import EVIDENCE_OPT, RETENTION_OPT, evidence_bucket
from auditbook.errors import UserError


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
    by: str = typer.Option("criteria", "--by", metavar="criteria|company",
                           help="Organise the index by the criteria, or by the company's controls (one page each; "
                                "the catalog must include a company control library)."),
    db: Optional[str] = DB_OPT,
    catalog: Optional[Path] = CATALOG_OPT,
    evidence: Optional[str] = EVIDENCE_OPT,
    retention: str = RETENTION_OPT,
):
    """Build the signed, offline HTML audit packet for a period from the runs in the store (with
    --evidence: and keep its files, locked, in the evidence bucket)."""
    from auditbook.history.period import parse_period
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.signing import parse_signer
    from auditbook.store.db import open_engine
    chosen = parse_period(period, start, end)
    sign = parse_signer(signer)  # checked before anything runs
    bucket = evidence_bucket(evidence, retention)
    open_engine(db, create=False, writable=True)  # the store must exist, and take the packet's record at the end
    result = build_packet(period=chosen, out=out_dir, signer=sign, db=db, catalog_path=catalog,
                          previous_dir=previous, workers=workers, notebooks=notebooks, by=by,
                          on_progress=lambda m: err.print(f"  {escape(m)}"))
    out.print(f"packet {escape(str(result.path))}: {result.criteria} criteria, {result.runs} runs, "
              f"{result.files} files, {result.bytes / 2**20:.1f} MB, built in {result.seconds:.1f} s")
    chained = (f" (chained to {result.previous_manifest_sha256})" if result.previous_manifest_sha256
               else " (first in its chain)")
    out.print(f"manifest SHA-256 {result.manifest_sha256}{chained}")
    for f in result.failed:
        err.print(f"[red]notebook failed[/red] {escape(f['criterion'])}: {escape(f['error'])}")
    if result.failed:
        raise typer.Exit(1)
    if bucket is not None:
        _upload(result, bucket)


def _upload(result, bucket) -> None:
    from auditbook.report.packet.upload import upload_packet
    from auditbook.store.evidence_objects import EvidenceObjectError
    try:
        sent = upload_packet(result.path, result.manifest_sha256, bucket)
    except EvidenceObjectError as exc:
        raise UserError(f"packet {result.path} is built and signed, but not kept in the bucket: {exc}") from None
    out.print(f"kept in the bucket: {sent.files} files, {sent.bytes / 2**20:.1f} MB; index "
              f"{escape(sent.index_url)} version {escape(sent.index_version)}", soft_wrap=True)


@app.command()
def keygen(out_prefix: str = typer.Option("auditbook", "--out", metavar="PREFIX",
                                          help="Writes PREFIX.key (private, mode 0600) and PREFIX.pub.")):
    """Make an Ed25519 key pair for signing packets."""
    from auditbook.report.packet.signing import keygen as make_key_pair
    private, public = make_key_pair(out_prefix)
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
