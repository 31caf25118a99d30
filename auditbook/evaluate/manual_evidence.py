"""Manual evidence: documents uploaded against a criterion's required items, with an owner and an
effective date. Expiry follows the item's cadence. A criterion whose required evidence is missing or
expired on a date is NEEDS_EVIDENCE on that date — never PASS.

The rules only, over plain values: checking a new document (prepare_evidence) and the state of each
required item on a date (item_states). Storing and reading them is store.manual_evidence's; the
services that combine the two (add_evidence, evidence_status) are in auditbook.scan."""
from __future__ import annotations

import calendar
import datetime as dt
import getpass
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from auditbook.catalog.model import Catalog
from auditbook.errors import UserError, shown
from auditbook.yamlfile import read_bytes

CADENCE_MONTHS = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12, "per-event": None}
MAX_BYTES = 50 * 2**20
PERSON_CHARS = 200  # ManualEvidence.owner and .uploaded_by: String(200)
FILENAME_CHARS = 255  # ManualEvidence.filename: String(255)


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day `months` later, clamped to the month's end (31 January + 1 = 28/29 February)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def expiry(effective: dt.date, cadence: str) -> Optional[dt.date]:
    months = CADENCE_MONTHS[cadence]
    return None if months is None else add_months(effective, months)


def bounded(value: str, option: str, limit: int) -> str:
    """A free-text value that goes into a column of `limit` characters, checked before anything is
    written (PostgreSQL refuses a longer one mid-transaction)."""
    if len(value) > limit:
        raise UserError(f"{option}: {len(value)} characters, more than the {limit} allowed: {shown(value[:40])}…")
    return value


def parse_date(text: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option}: {shown(text)} is not a date (YYYY-MM-DD)")


@dataclass(frozen=True)
class EvidenceRecord:
    """One piece of manual evidence on file (store.manual_evidence gives these back)."""
    id: int
    criterion: str
    item: str
    filename: str
    sha256: str
    owner: str
    uploaded_by: str
    uploaded_at: dt.datetime
    effective_date: dt.date
    expires_on: Optional[dt.date]  # None: per-event, no lapse


@dataclass(frozen=True)
class NewEvidence:
    """A document checked and ready to be stored (every input verified, nothing written yet)."""
    criterion: str
    item: str
    filename: str
    content: bytes
    sha256: str
    owner: str
    uploaded_by: str
    effective_date: dt.date
    expires_on: Optional[dt.date]


def _required_item(catalog: Catalog, criterion: str, item: Optional[str]):
    control = next((c for c in catalog.controls if c.id == criterion), None)
    if control is None:
        raise UserError(f"CRITERION: {shown(criterion)} is not a criterion in the catalog")
    if not control.manual_evidence:
        raise UserError(f"CRITERION: {criterion} requires no manual evidence")
    names = "; ".join(m.name for m in control.manual_evidence)
    if item:
        found = [m for m in control.manual_evidence if m.name.lower() == item.strip().lower()]
        if not found:
            raise UserError(f"--item: {shown(item)} is not required by {criterion} (it requires: {names})")
        return found[0]
    if len(control.manual_evidence) == 1:
        return control.manual_evidence[0]
    raise UserError(f"--item: {criterion} requires several items, name one of: {names}")


def prepare_evidence(catalog: Catalog, criterion: str, path: Path, *, effective: dt.date, owner: str,
                     item: Optional[str] = None, uploaded_by: Optional[str] = None,
                     today: Optional[dt.date] = None) -> NewEvidence:
    """The document at `path` as manual evidence for a criterion's required item, every input checked
    (a UserError naming the option otherwise); the file is read (a regular file, up to MAX_BYTES)."""
    required = _required_item(catalog, criterion, item)
    if not owner or not owner.strip():
        raise UserError("--owner: give the person or role who owns this evidence")
    owner = bounded(owner.strip(), "--owner", PERSON_CHARS)
    uploaded_by = bounded((uploaded_by or "").strip() or getpass.getuser(), "--uploaded-by (default: the login name)",
                          PERSON_CHARS)
    if effective > (today or dt.date.today()):
        raise UserError(f"--effective-date: {effective} is in the future")
    path = Path(path)
    try:
        data = read_bytes(path, max_bytes=MAX_BYTES)  # a regular file (a FIFO would block), read up to the limit
    except UserError as exc:
        raise UserError(f"FILE: {exc}") from None
    if not data:
        raise UserError(f"FILE: {path}: is empty")
    bounded(path.name, "FILE: the file name", FILENAME_CHARS)
    return NewEvidence(criterion, required.name, path.name, data, hashlib.sha256(data).hexdigest(), owner,
                       uploaded_by, effective, expiry(effective, required.cadence))


@dataclass
class ItemStatus:
    criterion: str
    item: str
    cadence: str
    state: str  # current, expired, missing
    evidence: Optional[EvidenceRecord]
    due: Optional[dt.date]  # when the current evidence lapses (None: missing, or per-event)


def item_states(catalog: Catalog, records: list[EvidenceRecord], on: dt.date) -> list[ItemStatus]:
    """Each required item on a date: current (effective on or before it, not lapsed), expired (the
    latest lapsed before it), or missing. Effective dates decide, not upload times."""
    by_item: dict[tuple, list[EvidenceRecord]] = {}
    for r in sorted(records, key=lambda r: r.effective_date):
        if r.effective_date <= on:
            by_item.setdefault((r.criterion, r.item), []).append(r)
    out = []
    for control in catalog.controls:
        for required in control.manual_evidence:
            mine = by_item.get((control.id, required.name), [])
            current = [r for r in mine if r.expires_on is None or on < r.expires_on]
            if current:
                best = max(current, key=lambda r: r.effective_date)
                out.append(ItemStatus(control.id, required.name, required.cadence, "current", best, best.expires_on))
            elif mine:
                out.append(ItemStatus(control.id, required.name, required.cadence, "expired", mine[-1], None))
            else:
                out.append(ItemStatus(control.id, required.name, required.cadence, "missing", None, None))
    return out


def criteria_needing(states: list[ItemStatus]) -> set[str]:
    """The criteria with an item that is not current: NEEDS_EVIDENCE, never PASS."""
    return {s.criterion for s in states if s.state != "current"}
