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
import json
import os
import shutil
import threading
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook import __version__
from auditbook.catalog import load_catalog
from auditbook.errors import UserError
from auditbook.history import PeriodRuns, overview, period_runs
from auditbook.packet.manifest import FORMAT, MANIFEST, SIGNATURE, canonical_bytes, file_entries, manifest_sha256
from auditbook.packet.signing import dumps_signature
from auditbook.period import Period
from auditbook.store.db import absolute_url, open_engine, redacted, resolve_url
from auditbook.store.models import (Document, Evidence, FindingState, ManualEvidence, Packet, ResourceState,
                                    Run)

NOTEBOOKS = Path(__file__).resolve().parent.parent.parent / "notebooks"


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
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out: {out} already exists and is not empty (a packet is never overwritten)")
    if not out.parent.is_dir():
        raise UserError(f"--out: folder {out.parent} does not exist")


def _previous(engine, period: Period, previous_dir: Optional[Path]) -> Optional[str]:
    """The manifest hash this packet chains to: --previous DIR, else the newest packet in the store
    for a period that ended before this one starts."""
    if previous_dir is not None:
        if not (Path(previous_dir) / MANIFEST).is_file():
            raise UserError(f"--previous: {previous_dir} has no {MANIFEST}")
        return manifest_sha256(Path(previous_dir))
    with Session(engine) as session:
        row = session.scalars(select(Packet).where(Packet.period_end < period.start)
                              .order_by(Packet.period_end.desc(), Packet.id.desc()).limit(1)).first()
        return row.manifest_sha256 if row else None


def _criterion_batch(jobs: list[tuple[str, dict]], root: str, notebook: str, db_url: str) -> list[dict]:
    """Worker: run a batch of criterion notebooks on one kernel, write their pages; returns outcomes."""
    import nbformat

    from auditbook.packet.execute import NotebookRunner
    from auditbook.packet.render import notebook_html
    root_path = Path(root)
    out = []
    with NotebookRunner(cwd=root_path, env={"AUDITBOOK_DB": db_url}) as runner:
        for criterion, params in jobs:
            t0 = time.perf_counter()
            done = runner.run(Path(notebook), params)
            nbformat.write(done.nb, str(root_path / "notebooks" / f"{criterion}.ipynb"))
            page = notebook_html(done.nb, "../", f"{criterion} — auditbook packet")
            (root_path / "criteria" / f"{criterion}.html").write_text(page, encoding="utf-8")
            out.append({"criterion": criterion, "error": done.error, "seconds": time.perf_counter() - t0})
    return out


def _run_notebooks(jobs: list[tuple[str, dict]], root: Path, notebook: Path, workers: int, db_url: str,
                   on_progress: Optional[Callable[[str], None]]) -> list[dict]:
    if workers <= 1 or len(jobs) < 2:
        return _criterion_batch(jobs, str(root), str(notebook), db_url)
    batches = [jobs[i::workers] for i in range(workers)]
    results: list[dict] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        for outcome in pool.map(_criterion_batch, batches, [str(root)] * workers, [str(notebook)] * workers,
                                [db_url] * workers):
            results += outcome
            if on_progress:
                on_progress(f"{len(results)}/{len(jobs)} criterion notebooks")
    return results


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


def _copy_documents(engine, root: Path, period: Period) -> int:
    count = 0
    with Session(engine) as session:
        rows = session.execute(select(ManualEvidence.sha256, ManualEvidence.filename)
                               .where(ManualEvidence.effective_date <= period.end)).all()
        for sha, filename in sorted(set(rows)):
            doc = session.get(Document, sha)
            folder = root / "documents" / sha
            folder.mkdir(parents=True, exist_ok=True)
            safe = Path(filename).name or "document"
            (folder / safe).write_bytes(zlib.decompress(doc.content))
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


def build_packet(*, period: Period, out: Path, signer, db: Optional[str] = None,
                 catalog_path: Optional[Path] = None, previous_dir: Optional[Path] = None,
                 workers: int = 2, today: Optional[dt.date] = None, notebooks: Optional[Path] = None,
                 on_progress: Optional[Callable[[str], None]] = None) -> PacketResult:
    """`notebooks`: a folder with your own control.ipynb and packet_index.ipynb (default: the bundled)."""
    t0 = time.perf_counter()
    out = Path(out).resolve()
    _check_out(out)
    folder = Path(notebooks).resolve() if notebooks else NOTEBOOKS
    for name in ("control.ipynb", "packet_index.ipynb"):
        if not (folder / name).is_file():
            raise UserError(f"--notebooks: {folder} has no {name}")
    catalog = load_catalog(catalog_path)
    engine = open_engine(db)
    pruns = period_runs(engine, period)
    if not pruns.runs:
        raise UserError(f"--period: no runs in the store between {period.start} and {period.end} "
                        f"({resolve_url(db)}): run `auditbook scan` first")
    previous = _previous(engine, period, previous_dir)
    today = today or dt.datetime.now(dt.timezone.utc).date()
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    timings = {}
    try:
        for sub in ("criteria", "notebooks", "data", "assets"):
            (tmp / sub).mkdir(parents=True)
        from auditbook.packet.render import notebook_html, write_assets
        write_assets(tmp / "assets")
        common = {"period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
                  # the store reaches the kernels through their environment, never as a parameter: the
                  # executed notebooks go into the packet, and a URL may carry a password
                  "db": None,
                  "catalog": str(Path(catalog.path).resolve()) if catalog.path else None,
                  "packet_dir": ".", "today": today.isoformat()}  # kernels run in the packet folder
        jobs = [(c.id, {**common, "criterion": c.id, "collect": False}) for c in catalog.controls]
        t = time.perf_counter()
        from auditbook.packet.execute import NotebookRunner
        import nbformat
        # the index's kernel starts and imports while the criterion notebooks run
        db_url = absolute_url(resolve_url(db))
        index_runner = NotebookRunner(cwd=tmp, env={"AUDITBOOK_DB": db_url})
        warming = threading.Thread(target=lambda: index_runner.start().warm(), daemon=True)
        warming.start()
        try:
            outcomes = _run_notebooks(jobs, tmp, folder / "control.ipynb", workers, db_url, on_progress)
        except BaseException:
            warming.join()
            index_runner.stop()
            raise
        warming.join()
        timings["criterion notebooks"] = time.perf_counter() - t
        failed = sorted(({"criterion": o["criterion"], "error": o["error"]} for o in outcomes if o["error"]),
                        key=lambda f: f["criterion"])
        t = time.perf_counter()
        with index_runner:
            index = index_runner.run(folder / "packet_index.ipynb", {**common, "failed": failed})
        if index.error:
            failed.append({"criterion": "index", "error": index.error})
        nbformat.write(index.nb, str(tmp / "notebooks" / "packet_index.ipynb"))
        (tmp / "index.html").write_text(notebook_html(index.nb, "", f"Audit packet {period.label}"), encoding="utf-8")
        timings["index notebook"] = time.perf_counter() - t
        t = time.perf_counter()
        evidence_files = _copy_evidence(engine, tmp, pruns)
        documents = _copy_documents(engine, tmp, period)
        runs = _runs_data(engine, pruns.ids)
        (tmp / "data" / "runs.json").write_text(json.dumps(runs, indent=1, sort_keys=True, default=_json_default))
        (tmp / "data" / "overview.json").write_text(json.dumps(
            overview(engine, catalog, pruns, today=today), indent=1, sort_keys=True, default=_json_default))
        if catalog.path and Path(catalog.path).is_file():
            shutil.copyfile(catalog.path, tmp / "data" / "catalog.yaml")
        from auditbook.history import incidents_in_period
        (tmp / "data" / "incidents.json").write_text(json.dumps(
            incidents_in_period(engine, period), indent=1, sort_keys=True, default=_json_default))
        timings["evidence and data"] = time.perf_counter() - t
        t = time.perf_counter()
        entries = file_entries(tmp)
        manifest = {
            "format": FORMAT, "tool": "auditbook", "tool_version": __version__,
            "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "period": period.as_dict(), "catalog_sha256": catalog.sha256, "framework": catalog.framework,
            "runs": pruns.ids, "simulated_runs": [r.id for r in pruns.runs if r.simulated],
            "parameters": {"db": redacted(resolve_url(db)), "catalog": catalog.path, "today": today.isoformat(),
                           "criteria": len(jobs)},
            "criteria": [{"criterion": c.id, "page": f"criteria/{c.id}.html",
                          "notebook": f"notebooks/{c.id}.ipynb",
                          "error": next((f["error"] for f in failed if f["criterion"] == c.id), None)}
                         for c in catalog.controls],
            "failed": failed, "evidence_files": evidence_files, "documents": documents,
            "previous_manifest_sha256": previous, "signer": {"algorithm": signer.algorithm},
            "files": entries,
        }
        raw = canonical_bytes(manifest)
        (tmp / MANIFEST).write_bytes(raw)
        sig = signer.sign(raw)
        (tmp / SIGNATURE).write_bytes(dumps_signature(sig))
        timings["manifest and signature"] = time.perf_counter() - t
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    digest = manifest_sha256(out)
    with Session(engine) as session, session.begin():
        session.add(Packet(period_label=period.label, period_start=period.start, period_end=period.end,
                           path=str(out), manifest_sha256=digest, previous_manifest_sha256=previous,
                           signer_algorithm=sig["algorithm"], key_id=sig["key_id"],
                           built_at=dt.datetime.now(dt.timezone.utc), run_ids=pruns.ids, failed=failed))
    total = sum(e["size"] for e in entries)
    return PacketResult(out, digest, previous, len(jobs), failed, len(entries) + 2, total,
                        time.perf_counter() - t0, len(pruns.ids), timings)
