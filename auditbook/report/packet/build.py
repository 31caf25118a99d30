"""`auditbook packet`: the signed, offline audit packet for a period.

Layout:
  index.html                  the packet index (all criteria)
  criteria/<ID>.html          one page per criterion (code hidden)
  notebooks/<ID>.ipynb        the executed notebooks behind the pages
  evidence/<sha256>.json      every raw API response behind the period's resources and findings
  documents/<sha256>/<file>   manual evidence on file for the period
  data/                       runs, overview, populations and the catalog used
  assets/                     the one shared plotly.js and stylesheet
  manifest.json, manifest.sig every file with SHA-256 and size; the signature over its exact bytes

The packet is assembled in a hidden sibling folder and renamed into place only when complete."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook import __version__
from auditbook.catalog.model import load_catalog
from auditbook.errors import UserError
from auditbook.history.type2 import PeriodRuns, overview, period_runs
from auditbook.report.packet.manifest import FORMAT, MANIFEST, SIGNATURE, canonical_bytes, file_entries, manifest_sha256
from auditbook.report.packet.partial import PartialFolder
from auditbook.report.packet.signing import dumps_signature
from auditbook.report.packet.tree import NotRegular, TooLarge
from auditbook.report.packet.workers import run_batch, run_in_workers
from auditbook.history.period import Period
from auditbook.store.db import absolute_url, open_engine, redacted, resolve_url
from auditbook.store.models import (Document, Evidence, FindingState, ManualEvidence, Packet, ResourceState,
                                    Run)

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


def _previous(engine, period: Period, previous_dir: Optional[Path]) -> Optional[str]:
    """The manifest hash this packet chains to: --previous DIR, else the newest packet in the store
    for a period that ended before this one starts."""
    if previous_dir is not None:
        try:
            return manifest_sha256(Path(previous_dir))
        except FileNotFoundError:
            raise UserError(f"--previous: {previous_dir} has no {MANIFEST}")
        except NotRegular as why:
            raise UserError(f"--previous: {Path(previous_dir) / MANIFEST}: not a regular file ({why})")
        except TooLarge as why:
            raise UserError(f"--previous: {Path(previous_dir) / MANIFEST}: {why}")
        except OSError as exc:
            raise UserError(f"--previous: {Path(previous_dir) / MANIFEST}: cannot read: {exc.strerror}")
    with Session(engine) as session:
        row = session.scalars(select(Packet).where(Packet.period_end < period.start)
                              .order_by(Packet.period_end.desc(), Packet.id.desc()).limit(1)).first()
        return row.manifest_sha256 if row else None


def _run_criteria(jobs: list[tuple[str, dict]], root: Path, notebook: Path, workers: int, db_url: str,
                  on_progress: Optional[Callable[[str], None]]) -> list[dict]:
    done: list[dict] = []

    def progress(outcome: dict) -> None:
        done.append(outcome)
        if on_progress:
            on_progress(f"{len(done)}/{len(jobs)} criterion notebooks")
    if workers <= 1 or len(jobs) < 2:
        return run_batch(jobs, str(root), str(notebook), db_url, on_done=progress)
    batches = [jobs[i::workers] for i in range(workers)]
    return run_in_workers(batches, str(root), str(notebook), db_url, on_done=progress)


def _run_notebooks(jobs: list[tuple[str, dict]], index_params: dict, root: Path, folder: Path, workers: int,
                   db_url: str, on_progress, timings: dict):
    """The criterion notebooks (in workers), then the index, whose kernel starts and imports
    meanwhile. Returns the outcomes, the failures and the executed index notebook."""
    from auditbook.report.packet.execute import NotebookRunner
    t = time.perf_counter()
    index_runner = NotebookRunner(cwd=root, env={"AUDITBOOK_DB": db_url}).launch()  # from this thread: see lifeline
    warm_errors: list[BaseException] = []

    def warm() -> None:
        try:
            index_runner.connect().warm()
        except BaseException as exc:  # re-raised below, in this thread
            warm_errors.append(exc)
    warming = threading.Thread(target=warm, daemon=True)
    warming.start()
    try:
        outcomes = _run_criteria(jobs, root, folder / "control.ipynb", workers, db_url, on_progress)
        warming.join()
        if warm_errors:
            raise warm_errors[0]
        timings["criterion notebooks"] = time.perf_counter() - t
        failed = sorted(({"criterion": o["criterion"], "error": o["error"]} for o in outcomes if o["error"]),
                        key=lambda f: f["criterion"])
        t = time.perf_counter()
        index = index_runner.run(folder / "packet_index.ipynb", {**index_params, "failed": failed})
    finally:
        warming.join()
        index_runner.stop()
    if index.error:
        failed.append({"criterion": "index", "error": index.error})
    timings["index notebook"] = time.perf_counter() - t
    return outcomes, failed, index.nb


def _evidence_hashes(session: Session, pruns: PeriodRuns) -> set[str]:
    """The evidence behind every resource and finding interval that a run of the period observed."""
    lo, hi = pruns.ids[0], pruns.ids[-1]
    hashes: set[str] = set()
    for model in (ResourceState, FindingState):
        q = select(model.first_run, model.last_run, model.evidence).where(model.last_run >= lo, model.first_run <= hi)
        for first, last, evidence in session.execute(q):
            if pruns.in_period(first, last):
                hashes.update(evidence or [])
    return hashes


def _copy_evidence(engine, root: Path, pruns: PeriodRuns) -> int:
    if not pruns.runs:
        return 0
    target = root / "evidence"
    target.mkdir()
    with Session(engine) as session:
        hashes = sorted(_evidence_hashes(session, pruns))
        for i in range(0, len(hashes), 500):
            for sha, body in session.execute(select(Evidence.sha256, Evidence.body)
                                             .where(Evidence.sha256.in_(hashes[i:i + 500]))):
                (target / f"{sha}.json").write_bytes(zlib.decompress(body))
    return len(hashes)


def document_filename(name: str) -> str:
    """A manual evidence file's name as written into a packet: one path part, no control or format
    characters (a newline, a bidi override), never empty, '.' or '..'."""
    import unicodedata
    base = "".join("_" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
                   for c in name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])[:200]
    return "document" if base.strip(".") == "" else base


def _copy_documents(engine, root: Path, period: Period) -> int:
    count = 0
    with Session(engine) as session:
        rows = session.execute(select(ManualEvidence.sha256, ManualEvidence.filename)
                               .where(ManualEvidence.effective_date <= period.end)).all()
        for sha, filename in sorted(set(rows)):
            doc = session.get(Document, sha)
            folder = root / "documents" / sha
            folder.mkdir(parents=True, exist_ok=True)
            (folder / document_filename(filename)).write_bytes(zlib.decompress(doc.content))
            count += 1
    return count


def _runs_data(engine, run_ids: list[int]) -> list[dict]:
    with Session(engine) as session:
        rows = session.scalars(select(Run).where(Run.id.in_(run_ids)).order_by(Run.id)).all() if run_ids else []
        return [{"id": r.id, "started_at": r.started_at.isoformat(), "finished_at": r.finished_at.isoformat(),
                 "tool_version": r.tool_version, "catalog_sha256": r.catalog_sha256, "api_calls": r.api_calls,
                 "counts": r.counts, "parameters": r.parameters, "identities": r.identities} for r in rows]


def _json_default(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _write_data(engine, catalog, root: Path, period: Period, pruns: PeriodRuns, today: dt.date) -> dict:
    """Evidence, documents and data/; their counts."""
    from auditbook.history.type2 import incidents_in_period
    counts = {"evidence_files": _copy_evidence(engine, root, pruns), "documents": _copy_documents(engine, root, period)}
    for name, data in (("runs.json", _runs_data(engine, pruns.ids)),
                       ("overview.json", overview(engine, catalog, pruns, today=today)),
                       ("incidents.json", incidents_in_period(engine, period))):
        (root / "data" / name).write_text(json.dumps(data, indent=1, sort_keys=True, default=_json_default))
    if catalog.path and Path(catalog.path).is_file():
        shutil.copyfile(catalog.path, root / "data" / "catalog.yaml")
    return counts


def _manifest(root: Path, catalog, period: Period, pruns: PeriodRuns, db: Optional[str], today: dt.date,
              failed: list[dict], counts: dict, previous: Optional[str], signer) -> dict:
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


def build_packet(*, period: Period, out: Path, signer, db: Optional[str] = None,
                 catalog_path: Optional[Path] = None, previous_dir: Optional[Path] = None,
                 workers: int = 2, today: Optional[dt.date] = None, notebooks: Optional[Path] = None,
                 on_progress: Optional[Callable[[str], None]] = None) -> PacketResult:
    """`notebooks`: a folder with your own control.ipynb and packet_index.ipynb (default: the bundled).
    Bad input is a UserError before any notebook runs, with nothing written; on any failure or
    interrupt the partial folder is removed after every worker and kernel has ended."""
    t0 = time.perf_counter()
    out = Path(out).resolve()
    _check_out(out)
    folder = Path(notebooks).resolve() if notebooks else NOTEBOOKS
    for name in ("control.ipynb", "packet_index.ipynb"):
        if not (folder / name).is_file():
            raise UserError(f"--notebooks: {folder} has no {name}")
    catalog = load_catalog(catalog_path)
    engine = open_engine(db, create=False, writable=True)  # records the packet it builds
    pruns = period_runs(engine, period)
    if not pruns.runs:
        raise UserError(f"--period: no runs in the store between {period.start} and {period.end} "
                        f"({redacted(resolve_url(db))}): run `auditbook scan` first")
    previous = _previous(engine, period, previous_dir)
    today = today or dt.datetime.now(dt.timezone.utc).date()
    partial = PartialFolder(out)
    tmp = partial.create()
    timings: dict = {}
    try:
        for sub in ("criteria", "notebooks", "data", "assets"):
            (tmp / sub).mkdir()
        from auditbook.report.packet.render import notebook_html, write_assets
        write_assets(tmp / "assets")
        common = _parameters(period, catalog, today)
        jobs = [(c.id, {**common, "criterion": c.id, "collect": False}) for c in catalog.controls]
        _, failed, index_nb = _run_notebooks(jobs, common, tmp, folder, workers, absolute_url(resolve_url(db)),
                                             on_progress, timings)
        import nbformat
        nbformat.write(index_nb, str(tmp / "notebooks" / "packet_index.ipynb"))
        (tmp / "index.html").write_text(notebook_html(index_nb, "", f"Audit packet {period.label}"), encoding="utf-8")
        t = time.perf_counter()
        counts = _write_data(engine, catalog, tmp, period, pruns, today)
        timings["evidence and data"] = time.perf_counter() - t
        t = time.perf_counter()
        manifest = _manifest(tmp, catalog, period, pruns, db, today, failed, counts, previous, signer)
        raw = canonical_bytes(manifest)
        (tmp / MANIFEST).write_bytes(raw)
        sig = signer.sign(raw)
        (tmp / SIGNATURE).write_bytes(dumps_signature(sig))
        timings["manifest and signature"] = time.perf_counter() - t
        partial.commit()
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt) and on_progress:
            on_progress(f"interrupted: workers and kernels stopped, removing {partial.path.name}")
        partial.discard()
        raise
    digest = hashlib.sha256(raw).hexdigest()
    with Session(engine) as session, session.begin():
        session.add(Packet(period_label=period.label, period_start=period.start, period_end=period.end,
                           path=str(out), manifest_sha256=digest, previous_manifest_sha256=previous,
                           signer_algorithm=sig["algorithm"], key_id=sig["key_id"],
                           built_at=dt.datetime.now(dt.timezone.utc), run_ids=pruns.ids, failed=failed))
    entries = manifest["files"]
    return PacketResult(out, digest, previous, len(jobs), failed, len(entries) + 2, sum(e["size"] for e in entries),
                        time.perf_counter() - t0, len(pruns.ids), timings)
