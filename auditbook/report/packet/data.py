"""A packet's files beside its pages: evidence/ (every raw API response behind the period's
resources and findings), documents/ (manual evidence on file for the period) and data/ (runs,
overview, the company's controls, deviations and their management responses, incidents, the monitoring gaps with their reasons, the scope and boundary, the sign-offs and the management assertion, the catalog
used, the populations and the recorded sample draws). The store is
read in one unit of work here, and through history's services for the overview, the incidents, the
populations and the draws."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import unicodedata
from pathlib import Path
from typing import Optional

from auditbook.catalog.parameters import parameter_rows
from auditbook.history import app_events, shared_reads
from auditbook.history.company_controls import company_rows
from auditbook.history.deviations import deviations
from auditbook.history.gaps import monitoring_gaps
from auditbook.history.incidents import incidents_in_period
from auditbook.history.period import Period, PeriodRuns
from auditbook.history.populations import (
    CRITERION_KINDS,
    population,
    population_file,
    write_csv,
)
from auditbook.history.sampling import recorded_draws
from auditbook.history.scope import scope_document
from auditbook.history.signoffs import signoffs_for
from auditbook.history.type2 import overview
from auditbook.report.exports.company import mapping_csv
from auditbook.report.packet.deviation_files import (
    FAILURES_FILE,
    packet_deviations,
    write_failures,
)
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


def write_json(data, path: Path, sort_keys: bool = True) -> None:
    """A data file of the packet: compact JSON (no indent: a year's deviations run to megabytes), keys
    sorted unless `sort_keys` is False (a document whose tables the index shows in their own column order)."""
    path.write_text(json.dumps(data, separators=(",", ":"), sort_keys=sort_keys, default=_json_default),
                    encoding="utf-8")


def written_or(packet_dir: Optional[str], name: str, compute):
    """The packet's data/<name> when a notebook runs inside a packet build that wrote it already (the
    same values, computed once for the packet; parsed once per kernel, history.shared_reads: declared.json
    is ~4 MB at 1,000 accounts and every criterion page reads it), else compute()."""
    path = Path(packet_dir) / "data" / name if packet_dir else None
    if path is not None and path.is_file():
        st = path.stat()
        return shared_reads.once(("packet data file", str(path), st.st_size, st.st_mtime_ns),
                                 lambda: json.loads(path.read_text(encoding="utf-8")))
    return compute()


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


PERIOD_KINDS = ("alerts", "incidents", "changes", "access", "manual")  # one population each per period


def _population_files(catalog, draws: list[dict]) -> list[tuple[str, Optional[str], str]]:
    """(kind, criterion, file name) of the populations to write: each period kind's, a criterion's own
    for each criterion whose resources or manual evidence a recorded draw sampled, and the application
    audit events of each criterion they evidence (CC6.3, CC8.1: docs/app-audit.md)."""
    criteria = {c.id for c in catalog.controls}
    drawn = {(d.get("kind"), d.get("criterion")) for d in draws
             if d.get("kind") in CRITERION_KINDS and d.get("criterion") in criteria}
    # the application's audit events are evidence of their criteria whether or not a draw sampled them
    drawn |= {(app_events.KIND, cid) for cid in app_events.CRITERIA if cid in criteria}
    return ([(kind, None, population_file(kind)) for kind in PERIOD_KINDS]
            + [(kind, cid, population_file(kind, cid)) for kind, cid in sorted(drawn)])


def _write_populations(engine, catalog, root: Path, period: Period, pruns: PeriodRuns) -> int:
    """data/population-<kind>.csv for the period's populations, data/population-<kind>-<ID>.csv for
    each criterion a recorded draw sampled the resources or manual evidence of (the other criteria's
    resources are in data/<ID>-population.csv), and data/samples.json: the draws recorded for the
    period, each with the file its population is in and that file's hash (docs/samples.md). -> how
    many population files."""
    draws = recorded_draws(engine, period)
    written = _population_files(catalog, draws)
    hashes = {}
    for kind, cid, name in written:
        pop = population(engine, catalog, kind, period, criterion=cid, pruns=pruns)
        write_csv(pop, root / "data" / name)
        hashes[(kind, cid)] = (name, pop.sha256)
    for d in draws:
        cid = d.get("criterion") if d.get("kind") in CRITERION_KINDS else None
        name, sha = hashes.get((d.get("kind"), cid), (None, None))
        d["population_file"] = f"data/{name}" if name else None
        d["population_sha256_in_packet"] = sha
    write_json(draws, root / "data" / "samples.json")
    return len(written)


def write_data(engine, catalog, root: Path, period: Period, pruns: PeriodRuns, today: dt.date) -> tuple[dict, dict]:
    """evidence/, documents/ and data/ of the packet being built in `root`; their counts, and what the
    company pages are made from ({"overview": the criteria's rows, "deviations": the period's}). What
    every criterion repeats (the manual items' states…) is read once (history.shared_reads)."""
    with shared_reads.shared_in_this_thread():
        return _write_data(engine, catalog, root, period, pruns, today)


def _write_data(engine, catalog, root: Path, period: Period, pruns: PeriodRuns, today: dt.date) -> tuple[dict, dict]:
    with reading(engine) as session:
        counts = {"evidence_files": _copy_evidence(session, root, pruns) if pruns.runs else 0,
                  "documents": _copy_documents(session, root, period)}
        run_rows = _runs_data(session, pruns.ids)
    overview_rows = overview(engine, catalog, pruns, today=today)
    scope = scope_document(engine, catalog, period)
    found = deviations(engine, catalog, period, today=today, scope=scope)
    listed, failures = packet_deviations(found)
    write_failures(failures, root / "data" / FAILURES_FILE)
    for name, data in (("runs.json", run_rows), ("overview.json", overview_rows),
                       ("company-controls.json", company_rows(catalog, overview_rows)),
                       ("deviations.json", listed),
                       ("incidents.json", incidents_in_period(engine, period)),
                       ("gaps.json", monitoring_gaps(engine, pruns, today)),
                       ("scope.json", scope),
                       ("signoffs.json", signoffs_for(engine, period, [c.id for c in catalog.controls]))):
        write_json(data, root / "data" / name, sort_keys=name != "scope.json")  # the index reads scope.json
    counts["populations"] = _write_populations(engine, catalog, root, period, pruns)
    if catalog.path and Path(catalog.path).is_file():
        shutil.copyfile(catalog.path, root / "data" / "catalog.yaml")
    if catalog.company_controls:  # the company's library (its bytes are in the catalog's SHA-256) and its CSV
        (root / "data" / "company-controls.csv").write_text(mapping_csv(catalog), encoding="utf-8")
    if catalog.library_path and Path(catalog.library_path).is_file():
        shutil.copyfile(catalog.library_path, root / "data" / "company-controls.yaml")
    if catalog.parameters_path and Path(catalog.parameters_path).is_file():  # the company's thresholds
        shutil.copyfile(catalog.parameters_path, root / "data" / "company-parameters.yaml")
    write_json(parameter_rows(catalog.parameters, catalog.checks), root / "data" / "parameters.json")
    return counts, {"overview": overview_rows, "deviations": found}
