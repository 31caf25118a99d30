"""`auditbook packet`: the signed, offline audit packet for a period.

Layout:
  index.html                  the packet index (all criteria)
  criteria/<ID>.html          one page per criterion (code hidden)
  company/<ID>.html           with by="company": one page per company control
  notebooks/<ID>.ipynb        the executed notebooks behind the pages (without the outputs the pages show)
  evidence/<sha256>.json      every raw API response behind the period's resources and findings
  documents/<sha256>/<file>   manual evidence on file for the period
  data/                       runs, overview, failure stretches, deviations, populations, the catalog used
  assets/                     the one shared plotly.js, its deferred loader and the stylesheet
  manifest.json, manifest.sig every file with SHA-256 and size; the signature over its exact bytes

The packet is assembled in a hidden sibling folder and renamed into place only when complete."""
from __future__ import annotations

import datetime as dt
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from auditbook import __version__
from auditbook.catalog.model import load_catalog
from auditbook.errors import UserError, one_line, shown
from auditbook.history import handed_reads
from auditbook.history.period import Period, PeriodRuns, period_runs
from auditbook.history.type2 import handed_latest_findings
from auditbook.report.packet.company_pages import BY, write_company_pages
from auditbook.report.packet.data import write_data
from auditbook.report.packet.declared_pages import write_declared
from auditbook.report.packet.manifest import (
    FORMAT,
    MANIFEST,
    SIGNATURE,
    canonical_bytes,
    file_entries,
)
from auditbook.report.packet.notebook_runs import (
    Background,
    longest_first,
    run_notebooks,
    timed,
)
from auditbook.report.packet.partial import PartialFolder
from auditbook.report.packet.records import previous_manifest, record_build
from auditbook.report.packet.signing import dumps_signature
from auditbook.report.packet.workers import BuildAborted, Workers
from auditbook.store.db import open_engine, redacted, resolve_url
from auditbook.store.sqlite_urls import absolute_url

NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"


@dataclass
class PacketResult:
    path: Path
    manifest_sha256: str
    previous_manifest_sha256: Optional[str]
    criteria: int
    failed: list[dict]
    files: int
    bytes: int
    seconds: float
    runs: int
    timings: dict = field(default_factory=dict)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"--out: {out} already exists and is not empty (a packet is never overwritten)")
    if not out.parent.is_dir():
        raise UserError(f"--out: folder {out.parent} does not exist")


def _manifest(root: Path, catalog, period: Period, pruns: PeriodRuns, db: Optional[str], today: dt.date,
              failed: list[dict], counts: dict, previous: Optional[str], signer, by: str,
              company_pages: list[dict]) -> dict:
    return {
        "format": FORMAT, "tool": "auditbook", "tool_version": __version__,
        "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "period": period.as_dict(), "catalog_sha256": catalog.sha256, "framework": catalog.framework,
        "runs": pruns.ids, "simulated_runs": [r.id for r in pruns.runs if r.simulated],
        "parameters": {"db": redacted(resolve_url(db)), "catalog": catalog.path, "today": today.isoformat(),
                       "criteria": len(catalog.controls)},
        "criteria": [{"criterion": c.id, "page": f"criteria/{c.id}.html", "notebook": f"notebooks/{c.id}.ipynb",
                      "error": next((f["error"] for f in failed if f["criterion"] == c.id), None)}
                     for c in catalog.controls],
        "organised_by": by, "company_controls": company_pages,
        "failed": failed, **counts, "previous_manifest_sha256": previous, "signer": {"algorithm": signer.algorithm},
        "files": file_entries(root),
    }


def _parameters(period: Period, catalog, today: dt.date) -> dict:
    """The notebook parameters every notebook of the packet gets."""
    return {"period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
            # the store reaches the kernels through their environment, never as a parameter: the
            # executed notebooks go into the packet, and a URL may carry a password
            "db": None,
            "catalog": str(Path(catalog.path).resolve()) if catalog.path else None,
            "packet_dir": ".", "today": today.isoformat()}  # kernels run in the packet folder


@dataclass
class _Build:
    """What a build works from, every input checked before anything is written."""
    period: Period
    catalog: object
    engine: object
    pruns: PeriodRuns
    previous: Optional[str]
    today: dt.date
    notebooks: Path
    db: Optional[str]
    by: str


def _checked(period: Period, out: Path, db: Optional[str], catalog_path: Optional[Path],
             previous_dir: Optional[Path], today: Optional[dt.date], notebooks: Optional[Path], by: str) -> _Build:
    if by not in BY:
        raise UserError(f"--by: {shown(by)} is not one of {', '.join(BY)}")
    _check_out(out)
    folder = Path(notebooks).resolve() if notebooks else NOTEBOOKS
    for name in ("control.ipynb", "packet_index.ipynb"):
        if not (folder / name).is_file():
            raise UserError(f"--notebooks: {folder} has no {name}")
    catalog = load_catalog(catalog_path)
    if by == "company" and not catalog.company_controls:
        raise UserError(f"--by company: the catalog {catalog.path} includes no company control library "
                        "(add `include: FILE` to it: docs/company-controls.md)")
    engine = open_engine(db, create=False, writable=True)  # the store is opened once; it records the packet
    pruns = period_runs(engine, period)
    if not pruns.runs:
        raise UserError(f"--period: no runs in the store between {period.start} and {period.end} "
                        f"({redacted(resolve_url(db))}): run `auditbook scan` first")
    return _Build(period, catalog, engine, pruns, previous_manifest(engine, period, previous_dir),
                  today or dt.datetime.now(dt.timezone.utc).date(), folder, db, by)


def _assemble(b: _Build, tmp: Path, signer, workers: int, on_progress, timings: dict) -> tuple[dict, dict, bytes]:
    """Pages, notebooks, evidence, documents and data, then the manifest and its signature, into
    `tmp`; (manifest, signature, the manifest's bytes). The last run's findings are read once, from the
    start, and handed to every criterion kernel (history.handed_reads)."""
    db_url = absolute_url(resolve_url(b.db))
    handoff = handed_reads.Handoff(tmp)  # locked before any kernel starts: they wait for what it hands them
    handing = Background(timed, timings, "handed reads", handoff.fill, lambda: _handed_values(db_url, b),
                          started=False)
    try:
        built = _assemble_handed(b, tmp, signer, workers, on_progress, timings, db_url, handoff, handing)
    finally:
        handing.wait()
        handoff.remove()
    if handoff.error and on_progress:
        on_progress(f"note: the last run's findings were not handed to the notebooks (each read them itself): "
                    f"{one_line(handoff.error)}")
    return built


def _handed_values(db_url: str, b: _Build) -> dict:
    engine = open_engine(db_url, create=False)  # the kernels' own URL: the values are keyed by it
    try:
        return handed_latest_findings(engine, b.catalog, b.pruns)
    finally:
        engine.dispose()


def _after(first: Callable[[], object], fn: Callable, *args):
    first()
    return fn(*args)


def _assemble_handed(b: _Build, tmp: Path, signer, workers: int, on_progress, timings: dict, db_url: str,
                     handoff: handed_reads.Handoff, handing: Background) -> tuple[dict, dict, bytes]:
    """The notebook workers are started first: their kernels start while the assets and
    data/declared.json are written, and get their first criterion once those are."""
    env = {"AUDITBOOK_DB": db_url, handed_reads.ENV: str(handoff.path)}
    n = min(workers, len(b.catalog.controls))
    pool = Workers(n, str(tmp), str(b.notebooks / "control.ipynb"), env) if n > 1 else None
    try:
        return _assemble_pages(b, tmp, signer, pool, env, on_progress, timings, handing, handoff)
    finally:
        if pool is not None:
            pool.close()


def _assemble_pages(b: _Build, tmp: Path, signer, pool: Optional[Workers], env: dict, on_progress, timings: dict,
                    handing: Background, handoff: handed_reads.Handoff) -> tuple[dict, dict, bytes]:
    from auditbook.report.packet.render import (
        notebook_html,
        page_outputs_removed,
        write_assets,
    )
    for sub in ("criteria", "notebooks", "data", "assets"):
        (tmp / sub).mkdir()
    write_assets(tmp / "assets")
    write_declared(b.engine, b.catalog, tmp, b.pruns)  # data/declared.json: the pages read it (docs/declared-controls.md)
    # then the findings to hand over: a thread of this process, which shares its interpreter lock (started
    # beside write_declared, it slowed it 0.7 → 3.7 s at 1,000 accounts while the kernels sat ready)
    handing.start()
    common = _parameters(b.period, b.catalog, b.today)
    jobs = [(c.id, {**common, "criterion": c.id, "collect": False}) for c in longest_first(b.catalog)]
    # the data files, while the criterion notebooks run (the index reads some of them at the end), once the
    # handed reads are written: the threads share the interpreter lock, and the kernels wait for the handed
    # reads (at 1,000 accounts the handoff took 10.8 s beside the data thread, 3.6 s alone)
    data = Background(_after, handing.wait, timed, timings, "evidence and data", write_data, b.engine, b.catalog,
                       tmp, b.period, b.pruns, b.today)

    needs_findings = {c.id for c in b.catalog.controls if b.catalog.checks_for(c.id)}

    def held(job: tuple) -> bool:  # while the handed findings are read, criteria that need none go first
        return not handing.done() and job[0] in needs_findings
    try:
        _, failed, index_nb = run_notebooks(jobs, {**common, "by": b.by}, tmp, b.notebooks, pool, env,
                                             on_progress, timings, data.result, held)
    except BaseException:
        if pool is not None:
            pool.close()  # the workers and kernels stop now, not after the data thread
        data.wait()  # it writes into the partial folder, which is removed only after every writer has ended
        raise
    handing.wait()
    handoff.remove()  # every kernel has ended; it is not part of the packet
    if handoff.folder.exists():  # it would be hashed into the manifest: never
        raise BuildAborted(f"packet: could not remove {handoff.folder} (the findings handed to the notebooks); "
                           "nothing was written")
    import nbformat
    index_html = notebook_html(index_nb, "", f"Audit packet {b.period.label}")
    (tmp / "index.html").write_text(index_html, encoding="utf-8")
    nbformat.write(page_outputs_removed(index_nb, "index.html", index_html), str(tmp / "notebooks" / "packet_index.ipynb"))
    t = time.perf_counter()
    counts, facts = data.result()
    company_pages = (write_company_pages(b.engine, b.catalog, tmp, b.period, b.pruns, b.today, facts["overview"],
                                         facts["deviations"]) if b.by == "company" else [])
    timings["company pages"] = time.perf_counter() - t
    t = time.perf_counter()
    manifest = _manifest(tmp, b.catalog, b.period, b.pruns, b.db, b.today, failed, counts, b.previous, signer,
                         b.by, company_pages)
    raw = canonical_bytes(manifest)
    (tmp / MANIFEST).write_bytes(raw)
    sig = signer.sign(raw)
    (tmp / SIGNATURE).write_bytes(dumps_signature(sig))
    timings["manifest and signature"] = time.perf_counter() - t
    return manifest, sig, raw


def build_packet(*, period: Period, out: Path, signer, db: Optional[str] = None,
                 catalog_path: Optional[Path] = None, previous_dir: Optional[Path] = None,
                 workers: int = 2, today: Optional[dt.date] = None, notebooks: Optional[Path] = None,
                 on_progress: Optional[Callable[[str], None]] = None, by: str = "criteria") -> PacketResult:
    """`notebooks`: a folder with your own control.ipynb and packet_index.ipynb (default: the bundled).
    `by`: "criteria" (the index lists the criteria first) or "company" (the index lists the company's
    controls, each with its criteria, and each has its own page company/<ID>.html; the catalog must
    include a company control library).
    Bad input is a UserError before any notebook runs, with nothing written; on any failure or
    interrupt the partial folder is removed after every worker and kernel has ended."""
    t0 = time.perf_counter()
    out = Path(out).resolve()
    b = _checked(period, out, db, catalog_path, previous_dir, today, notebooks, by)
    partial = PartialFolder(out)
    tmp = partial.create()
    timings: dict = {}
    try:
        manifest, sig, raw = _assemble(b, tmp, signer, workers, on_progress, timings)
        partial.commit()
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt) and on_progress:
            on_progress(f"interrupted: workers and kernels stopped, removing {partial.path.name}")
        partial.discard()
        raise
    digest = hashlib.sha256(raw).hexdigest()
    failed = manifest["failed"]
    record_build(b.engine, period=period, out=out, digest=digest, previous=b.previous, signature=sig, pruns=b.pruns,
                 failed=failed)
    entries = manifest["files"]
    return PacketResult(out, digest, b.previous, len(b.catalog.controls), failed, len(entries) + 2,
                        sum(e["size"] for e in entries), time.perf_counter() - t0, len(b.pruns.ids), timings)
