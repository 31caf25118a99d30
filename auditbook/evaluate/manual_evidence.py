"""Manual evidence: documents uploaded against a criterion's required items, with an owner and an
effective date. Expiry follows the item's cadence. A criterion whose required evidence is missing or
expired on a date is NEEDS_EVIDENCE on that date — never PASS.

The rules only, over plain values: checking a new document (prepare_evidence) and the state of each
required item on a date (item_states). Only a document approved by a second person counts
(evaluate.evidence_review has the review's rules); a pending or rejected one is as good as missing.
A per-incident item (`per: incident` in the catalog) is current only when every incident given has
its own approved document. Storing and reading them is store.manual_evidence's; the
services that combine the two (add_evidence, evidence_status) are in auditbook.scan."""
from __future__ import annotations

import calendar
import datetime as dt
import getpass
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from auditbook.catalog.model import Catalog
from auditbook.errors import UserError, shown
from auditbook.evaluate.evidence_review import upload_flags
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
    status: str = "pending"  # pending, approved, rejected: only an approved one counts
    decided_by: Optional[str] = None
    decided_at: Optional[dt.datetime] = None
    reason: Optional[str] = None
    incident_id: Optional[int] = None  # the incident a per-incident document evidences
    version: int = 1
    note: Optional[str] = None

    @property
    def submitted_by(self) -> str:
        return self.uploaded_by

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def flags(self) -> list[str]:
        """Late upload / backdated (evidence_review.upload_flags): shown, never a refusal."""
        return upload_flags(self.effective_date, self.uploaded_at)


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
    incident_id: Optional[int] = None


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
                     today: Optional[dt.date] = None, incident: Optional[int] = None) -> NewEvidence:
    """The document at `path` as manual evidence for a criterion's required item, every input checked
    (a UserError naming the option otherwise); the file is read (a regular file, up to MAX_BYTES).
    `incident`: the incident a per-incident item's document evidences (required for those, refused
    for the others; that it exists is the service's to check)."""
    required = _required_item(catalog, criterion, item)
    if required.per == "incident" and incident is None:
        raise UserError(f"--incident: {criterion} / {required.name} is one document per incident: name the incident")
    if required.per is None and incident is not None:
        raise UserError(f"--incident: {criterion} / {required.name} is not one document per incident")
    if incident is not None and not 1 <= incident <= 2**63 - 1:
        raise UserError(f"--incident: {incident} is not an incident id")
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
                       uploaded_by, effective, expiry(effective, required.cadence), incident)


@dataclass
class ItemStatus:
    criterion: str
    item: str
    cadence: str
    state: str  # current, expired, missing
    evidence: Optional[EvidenceRecord]  # the approved document that makes it current (or the lapsed one)
    due: Optional[dt.date]  # when the current evidence lapses (None: missing, or per-event)
    waiting: list[EvidenceRecord] = field(default_factory=list)  # pending or rejected: counted for nothing
    per: Optional[str] = None  # "incident": one approved document per incident
    events: list[int] = field(default_factory=list)  # the incidents it had to evidence
    missing_events: list[int] = field(default_factory=list)  # those with no approved document


def _per_incident(control, required, mine: list[EvidenceRecord], waiting: list[EvidenceRecord],
                  incidents: Optional[list[tuple[int, dt.date]]], on: dt.date) -> ItemStatus:
    """Current when each incident opened by `on` has its own approved document; with none given
    (None) the population is unknown, so the item is missing rather than passed on a document alone."""
    if incidents is None:
        return ItemStatus(control.id, required.name, required.cadence, "missing", None, None, waiting, "incident")
    events = sorted(i for i, opened in incidents if opened <= on)
    covered = {r.incident_id: r for r in mine}
    missing = [i for i in events if i not in covered]
    latest = max((covered[i] for i in events if i in covered), key=lambda r: r.effective_date, default=None)
    return ItemStatus(control.id, required.name, required.cadence, "missing" if missing else "current", latest, None,
                      waiting, "incident", events, missing)


def item_states(catalog: Catalog, records: list[EvidenceRecord], on: dt.date, *,
                incidents: Optional[list[tuple[int, dt.date]]] = None) -> list[ItemStatus]:
    """Each required item on a date: current (an approved document effective on or before it, not
    lapsed), expired (the latest approved one lapsed before it), or missing. Effective dates decide,
    not upload times; pending and rejected documents never count (they are listed in `waiting`).
    `incidents`: (id, day opened) of the period's incidents, for the per-incident items (None: not
    known, and those items are missing)."""
    by_item: dict[tuple, list[EvidenceRecord]] = {}
    waiting: dict[tuple, list[EvidenceRecord]] = {}
    for r in sorted(records, key=lambda r: r.effective_date):
        if r.effective_date <= on:
            (by_item if r.approved else waiting).setdefault((r.criterion, r.item), []).append(r)
    out = []
    for control in catalog.controls:
        for required in control.manual_evidence:
            key = (control.id, required.name)
            mine, idle = by_item.get(key, []), waiting.get(key, [])
            if required.per == "incident":
                out.append(_per_incident(control, required, mine, idle, incidents, on))
                continue
            current = [r for r in mine if r.expires_on is None or on < r.expires_on]
            if current:
                best = max(current, key=lambda r: r.effective_date)
                out.append(ItemStatus(control.id, required.name, required.cadence, "current", best, best.expires_on, idle))
            elif mine:
                out.append(ItemStatus(control.id, required.name, required.cadence, "expired", mine[-1], None, idle))
            else:
                out.append(ItemStatus(control.id, required.name, required.cadence, "missing", None, None, idle))
    return out


def criteria_needing(states: list[ItemStatus]) -> set[str]:
    """The criteria with an item that is not current: NEEDS_EVIDENCE, never PASS."""
    return {s.criterion for s in states if s.state != "current"}
