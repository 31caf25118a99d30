"""`auditbook bridge`: the bridge letter (issue 14 §9, docs/bridge.md) — management's statement about
the days since the last report's period ended: the days with a scan and those without (each with its
reason), each criterion's status at the window's latest scan (the one status, history.type2.overview),
the window's deviations with their responses and its incidents.

Layout (signed like a packet, checked by `auditbook verify`):
  index.html                  the letter: one self-contained page, every value HTML-escaped, no script
  data/bridge.json            what the letter states, as data
  manifest.json, manifest.sig every other file with SHA-256 and size; the signature over its bytes

Built in a hidden sibling folder and renamed into place when complete; nothing is half-written."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Optional

from auditbook import __version__
from auditbook.catalog.model import load_catalog
from auditbook.errors import UserError
from auditbook.history.deviations import deviations
from auditbook.history.gaps import checked_day, monitoring_gaps
from auditbook.history.incidents import incidents_in_period
from auditbook.history.period import (
    MAX_DAYS,
    Period,
    PeriodRuns,
    day_ranges,
    period_runs,
)
from auditbook.history.signoffs import ASSERTION_KEY, DEFAULT_ASSERTION, valid_assertion
from auditbook.history.type2 import overview
from auditbook.report.bridge_page import letter_html
from auditbook.report.packet.manifest import (
    FORMAT,
    MANIFEST,
    SIGNATURE,
    canonical_bytes,
    file_entries,
)
from auditbook.report.packet.partial import PartialFolder
from auditbook.report.packet.signing import dumps_signature
from auditbook.store import settings as stored_settings
from auditbook.store.db import open_engine, redacted, resolve_url
from auditbook.store.session import reading

DOCUMENT = "bridge-letter"
DATA_FORMAT = "auditbook-bridge/1"
STATEMENT = Template(
    "Management of $organisation states that from $start to $end, the days since the period of its last "
    "report ended on $since, the controls over $system continued to be monitored as this letter describes: "
    "$observed of those $days days had a scan, and each day without one is listed below with the reason "
    "recorded for it. The status of each criterion at the latest scan of these days, the $deviations "
    "deviations and the $incidents incidents of these days are listed below. Management is not aware of "
    "any other change to the system or its controls in these days that would alter the conclusions of "
    "the last report. This letter is management's statement; it is not an examination by a service auditor.")


@dataclass
class BridgeResult:
    path: Path
    manifest_sha256: str
    window: Period
    days: int
    observed: int
    gap_days: int
    unexplained_gap_days: int
    deviations: int
    incidents: int


def bridge_window(since: str, to: Optional[str], today: dt.date) -> Period:
    """The days after `since` (the last report's end) to `to` (default today), checked: one line
    naming the option otherwise."""
    last_end = checked_day(since, "--since")
    end = checked_day(to, "--to") if to is not None else today
    if end > today:
        raise UserError(f"--to: {end} is after today ({today})")
    if last_end >= end:
        raise UserError(f"--since: {last_end} is not before --to {end} (the letter covers the days after "
                        "the last report's end)")
    start = last_end + dt.timedelta(days=1)
    if (end - start).days + 1 > MAX_DAYS:
        raise UserError(f"--since: {start}..{end} is {(end - start).days + 1} days; a bridge covers at most {MAX_DAYS}")
    return Period(start, end, f"{start.isoformat()}..{end.isoformat()}")


def _json_default(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _statement(engine, window: Period, since: dt.date, coverage: dict, n_dev: int, n_inc: int) -> str:
    with reading(engine) as session:
        setting = valid_assertion({**DEFAULT_ASSERTION, **(stored_settings.read(session, ASSERTION_KEY) or {})})
    return STATEMENT.substitute(organisation=setting["organisation"], system=setting["system"],
                                start=window.start.isoformat(), end=window.end.isoformat(), since=since.isoformat(),
                                observed=coverage["observed"], days=coverage["days"], deviations=n_dev,
                                incidents=n_inc)


def _criteria(engine, catalog, pruns: PeriodRuns, today: dt.date) -> list[dict]:
    keep = ("criterion", "category", "title", "status", "checks", "failures", "open_failures",
            "manual_items", "manual_missing_or_expired")
    return [{k: row[k] for k in keep} for row in overview(engine, catalog, pruns, today=today)]


def bridge_data(engine, catalog, window: Period, today: dt.date) -> dict:
    """What the letter states (data/bridge.json). A UserError when no scan ran in the window."""
    pruns = period_runs(engine, window)
    if not pruns.runs:
        raise UserError(f"--since: no runs in the store between {window.start} and {window.end}: "
                        "a bridge letter states what was monitored, and nothing was")
    cov = pruns.coverage(today)
    since = window.start - dt.timedelta(days=1)
    found = deviations(engine, catalog, window, today=today)
    incidents = incidents_in_period(engine, window)
    gaps = monitoring_gaps(engine, pruns, today)
    scanned = sorted(pruns.observed_days() & set(pruns.horizon(today)))
    return {"format": DATA_FORMAT, "last_report_end": since.isoformat(), "window": window.as_dict(),
            "judged_on": today.isoformat(), "days": cov["days"], "days_with_scan": cov["observed"],
            "scanned": [{"from": a.isoformat(), "to": b.isoformat()} for a, b in day_ranges(scanned)],
            "gaps": gaps, "runs": pruns.ids, "simulated": any(r.simulated for r in pruns.runs),
            "criteria": _criteria(engine, catalog, pruns, today), "deviations": found, "incidents": incidents,
            "statement": _statement(engine, window, since, cov, len(found), len(incidents))}


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"--out: {out} already exists and is not empty (a letter is never overwritten)")
    if not out.parent.is_dir():
        raise UserError(f"--out: {out.parent} " + ("is not a folder" if out.parent.exists() else "does not exist"))


def _manifest(root: Path, data: dict, catalog, db: Optional[str], signer) -> dict:
    return {"format": FORMAT, "document": DOCUMENT, "tool": "auditbook", "tool_version": __version__,
            "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "period": data["window"], "last_report_end": data["last_report_end"],
            "catalog_sha256": catalog.sha256, "framework": catalog.framework, "runs": data["runs"],
            "simulated": data["simulated"],
            "parameters": {"db": redacted(resolve_url(db)), "catalog": catalog.path, "today": data["judged_on"]},
            "previous_manifest_sha256": None, "signer": {"algorithm": signer.algorithm},
            "files": file_entries(root)}


def _write(tmp: Path, data: dict, catalog, db: Optional[str], signer) -> bytes:
    (tmp / "data").mkdir()
    (tmp / "data" / "bridge.json").write_text(
        json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False, default=_json_default), encoding="utf-8")
    (tmp / "index.html").write_text(letter_html(json.loads(json.dumps(data, default=_json_default))),
                                    encoding="utf-8")
    raw = canonical_bytes(_manifest(tmp, data, catalog, db, signer))
    (tmp / MANIFEST).write_bytes(raw)
    (tmp / SIGNATURE).write_bytes(dumps_signature(signer.sign(raw)))
    return raw


def build_bridge(*, since: str, to: Optional[str], out: Path, signer, db: Optional[str] = None,
                 catalog_path: Optional[Path] = None, today: Optional[dt.date] = None) -> BridgeResult:
    """Write the signed bridge letter into `out` (a new or empty folder). Every input is checked
    before anything is written; on any failure the partial folder is removed."""
    import hashlib
    today = today or dt.datetime.now(dt.timezone.utc).date()
    window = bridge_window(since, to, today)
    out = Path(out).resolve()
    _check_out(out)
    catalog = load_catalog(catalog_path)
    engine = open_engine(db, create=False)
    data = bridge_data(engine, catalog, window, today)
    partial = PartialFolder(out)
    tmp = partial.create()
    try:
        raw = _write(tmp, data, catalog, db, signer)
        partial.commit()
    except BaseException:
        partial.discard()
        raise
    unexplained = sum(g["days"] for g in data["gaps"] if g["explained_by"] is None)
    return BridgeResult(out, hashlib.sha256(raw).hexdigest(), window, data["days"], data["days_with_scan"],
                        sum(g["days"] for g in data["gaps"]), unexplained, len(data["deviations"]),
                        len(data["incidents"]))
