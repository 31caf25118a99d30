"""A packet's files beside its pages: evidence/ (every raw API response behind the period's
resources and findings), documents/ (manual evidence on file for the period) and data/ (runs,
overview, incidents, the catalog used). The store is read in one unit of work here, and through
history's services for the overview and the incidents."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import unicodedata
from pathlib import Path

from auditbook.history.incidents import incidents_in_period
from auditbook.history.period import Period, PeriodRuns
from auditbook.history.type2 import overview
from auditbook.store import evidence, manual_evidence, runs
from auditbook.store.session import reading


def document_filename(name: str) -> str:
    """A manual evidence file's name as written into a packet: one path part, no control or format
    characters (a newline, a bidi override), never empty, '.' or '..'."""
    base = "".join("_" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
                   for c in name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])[:200]
    return "document" if base.strip(".") == "" else base


def _json_default(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _copy_evidence(session, root: Path, pruns: PeriodRuns) -> int:
    target = root / "evidence"
    target.mkdir()
    hashes: set[str] = set()
    for first, last, found in evidence.interval_evidence(session, pruns.ids[0], pruns.ids[-1]):
        if pruns.in_period(first, last):
            hashes.update(found)
    for sha, body in evidence.raw_bodies(session, hashes):
        (target / f"{sha}.json").write_bytes(body)
    return len(hashes)


def _copy_documents(session, root: Path, period: Period) -> int:
    on_file = sorted({(r.sha256, r.filename) for r in manual_evidence.records(session, effective_by=period.end)})
    for sha, filename in on_file:
        folder = root / "documents" / sha
        folder.mkdir(parents=True, exist_ok=True)
        (folder / document_filename(filename)).write_bytes(manual_evidence.document(session, sha))
    return len(on_file)


def _runs_data(session, run_ids: list[int]) -> list[dict]:
    return [{"id": r.id, "started_at": r.started_at.isoformat(), "finished_at": r.finished_at.isoformat(),
             "tool_version": r.tool_version, "catalog_sha256": r.catalog_sha256, "api_calls": r.api_calls,
             "counts": r.counts, "parameters": r.parameters, "identities": r.identities}
            for r in runs.all_runs(session, run_ids)]


def write_data(engine, catalog, root: Path, period: Period, pruns: PeriodRuns, today: dt.date) -> dict:
    """evidence/, documents/ and data/ of the packet being built in `root`; their counts."""
    with reading(engine) as session:
        counts = {"evidence_files": _copy_evidence(session, root, pruns) if pruns.runs else 0,
                  "documents": _copy_documents(session, root, period)}
        run_rows = _runs_data(session, pruns.ids)
    for name, data in (("runs.json", run_rows), ("overview.json", overview(engine, catalog, pruns, today=today)),
                       ("incidents.json", incidents_in_period(engine, period))):
        (root / "data" / name).write_text(json.dumps(data, indent=1, sort_keys=True, default=_json_default))
    if catalog.path and Path(catalog.path).is_file():
        shutil.copyfile(catalog.path, root / "data" / "catalog.yaml")
    return counts
