"""Manual evidence: documents uploaded against a criterion's required items, with an owner and an
effective date. Expiry follows the item's cadence. A criterion whose required evidence is missing or
expired on a date is NEEDS_EVIDENCE on that date — never PASS.

The rules only, over plain values: checking a new document (prepare_evidence) and the state of each
required item on a date (item_states). Only a document approved by a second person counts
(evaluate.evidence_review has the review's rules); a pending or rejected one is as good as missing.
A flagged document (late upload, backdated) counts only with an explanation approved with it. Items
matched to a population (`per:` in the catalog) are current only when each member is evidenced:
every incident its own approved record, every change (and access change) a ticket — parsed from the
event or named by an approved document — and every account in scope its own approved review. Storing and reading them is store.manual_evidence's; the
services that combine the two (add_evidence, evidence_status) are in auditbook.scan, and those that
read the per-event populations and keep a submitter's explanation or link in
auditbook.history.evidence_events."""
from __future__ import annotations

import calendar
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from auditbook import auth
from auditbook.catalog.model import Catalog
from auditbook.errors import UserError, shown
from auditbook.evaluate.evidence_review import uncovered, upload_flags
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
    subject: Optional[str] = None  # the change (event id or ticket) or account a per-event document evidences
    explanation: Optional[str] = None  # why a flagged document came late (its submitter's, approved with it)
    explained_at: Optional[dt.datetime] = None

    @property
    def submitted_by(self) -> str:
        return self.uploaded_by

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    @property
    def timeline_flags(self) -> list[str]:
        """Late upload / backdated (evidence_review.upload_flags)."""
        return upload_flags(self.effective_date, self.uploaded_at)

    @property
    def flags(self) -> list[str]:
        """The timeline flags, then for a flagged document its explanation or that it has none: shown,
        never a refusal."""
        found = self.timeline_flags
        if not found:
            return found
        if self.explanation:
            return [*found, f"explanation: {self.explanation}"]
        return [*found, "no explanation: it covers its period only with an explanation approved with it "
                        f"(auditbook evidence explain {self.id})"]

    @property
    def uncovered(self) -> Optional[str]:
        """Why this document does not count (None: approved, and explained if flagged)."""
        return uncovered(self.status, self.timeline_flags, self.explanation)

    @property
    def counts(self) -> bool:
        return self.uncovered is None


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
    if required.per != "incident" and incident is not None:
        raise UserError(f"--incident: {criterion} / {required.name} is not one document per incident")
    if incident is not None and not 1 <= incident <= 2**63 - 1:
        raise UserError(f"--incident: {incident} is not an incident id")
    if not owner or not owner.strip():
        raise UserError("--owner: give the person or role who owns this evidence")
    owner = bounded(owner.strip(), "--owner", PERSON_CHARS)
    uploaded_by = bounded((uploaded_by or "").strip() or auth.login_name(), "--uploaded-by (default: the login name)",
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
    waiting: list[EvidenceRecord] = field(default_factory=list)  # not counted: pending, rejected, unexplained
    per: Optional[str] = None  # incident, change, access-change, account: matched to that population
    events: list = field(default_factory=list)  # the members it had to evidence (incident ids, event ids, accounts)
    missing_events: list = field(default_factory=list)  # those not evidenced
    population_known: bool = True  # False: a per-event item whose population nothing read (no log, no run)

    @property
    def reasons(self) -> list[str]:
        """Why it is not current: the members not evidenced, and each document on file that does not count."""
        out = []
        if not self.population_known:
            out.append(f"the {self.per} population of the period is not known (nothing read covers it"
                       f"{': no CloudTrail log read' if self.per in ('change', 'access-change') else ''})")
        if self.missing_events:
            shown_ids = ", ".join(str(m) for m in self.missing_events[:20])
            more = f" and {len(self.missing_events) - 20} more" if len(self.missing_events) > 20 else ""
            out.append(f"{MISSING_WHAT.get(self.per, 'not evidenced')}: {shown_ids}{more}")
        out.extend(f"evidence {w.id}: {w.uncovered}" for w in self.waiting)
        return out


MISSING_WHAT = {"incident": "no approved record for incident", "change": "changes linked to no ticket",
                "access-change": "access changes linked to no ticket", "account": "no current approved review for account"}


@dataclass(frozen=True)
class Populations:
    """The members per-event items are matched to, on the day judged (None: not known, and those
    items are missing rather than passed on a document alone)."""
    incidents: Optional[list[tuple[int, dt.date]]] = None  # (id, day opened)
    changes: Optional[list[tuple[str, dt.date, Optional[str]]]] = None  # (event id, day, ticket parsed or None)
    access_changes: Optional[list[tuple[str, dt.date, Optional[str]]]] = None  # the IAM write events among them
    accounts: Optional[list[str]] = None  # the accounts in scope an access review covers


def _members(required, pops: Populations, on: dt.date) -> Optional[list]:
    if required.per == "incident":
        found = pops.incidents
    elif required.per == "account":
        return None if pops.accounts is None else sorted(set(pops.accounts))
    else:
        found = pops.changes if required.per == "change" else pops.access_changes
    return None if found is None else sorted(e[0] for e in found if e[1] <= on)


def _evidenced(required, mine: list[EvidenceRecord], pops: Populations, on: dt.date) -> dict:
    """member -> the approved document evidencing it (a change's ticket parsed from the event: None)."""
    if required.per == "incident":
        return {r.incident_id: r for r in mine}
    if required.per == "account":
        return {r.subject: r for r in mine if r.expires_on is None or on < r.expires_on}
    named = {r.subject: r for r in mine}
    found = pops.changes if required.per == "change" else pops.access_changes
    out = {}
    for event_id, _day, ticket in found or []:
        if ticket is not None or event_id in named:
            out[event_id] = named.get(event_id) or named.get(ticket)
    return out


def _per_event(control, required, mine: list[EvidenceRecord], waiting: list[EvidenceRecord],
               pops: Populations, on: dt.date) -> ItemStatus:
    """Current when each member of its population (by `on`) is evidenced; with the population not
    given the item is missing. An account review lapses with its cadence (expired when every account
    missing one had one that lapsed)."""
    members = _members(required, pops, on)
    if members is None:
        return ItemStatus(control.id, required.name, required.cadence, "missing", None, None, waiting, required.per,
                          population_known=False)
    covered = _evidenced(required, mine, pops, on)
    missing = [m for m in members if m not in covered]
    docs = [covered[m] for m in members if covered.get(m) is not None]
    latest = max(docs, key=lambda r: r.effective_date, default=None)
    state = "current" if not missing else "missing"
    if missing and required.per == "account" and all(any(r.subject == m for r in mine) for m in missing):
        state = "expired"
    due = min((r.expires_on for r in docs if r.expires_on), default=None) if not missing else None
    return ItemStatus(control.id, required.name, required.cadence, state, latest, due, waiting, required.per,
                      members, missing)


def item_states(catalog: Catalog, records: list[EvidenceRecord], on: dt.date, *,
                incidents: Optional[list[tuple[int, dt.date]]] = None,
                changes: Optional[list[tuple[str, dt.date, Optional[str]]]] = None,
                access_changes: Optional[list[tuple[str, dt.date, Optional[str]]]] = None,
                accounts: Optional[list[str]] = None) -> list[ItemStatus]:
    """Each required item on a date: current (a document that counts — approved, and explained if
    flagged — effective on or before it, not lapsed), expired (the latest such one lapsed before it),
    or missing. Effective dates decide, not upload times; documents that do not count are listed in
    `waiting` (with why: ItemStatus.reasons). The populations of the per-event items: `incidents`
    (id, day opened), `changes` / `access_changes` (event id, day, ticket parsed from it or None) and
    `accounts` (in scope) of the period; None: not known, and those items are missing."""
    pops = Populations(incidents, changes, access_changes, accounts)
    by_item: dict[tuple, list[EvidenceRecord]] = {}
    waiting: dict[tuple, list[EvidenceRecord]] = {}
    for r in sorted(records, key=lambda r: r.effective_date):
        if r.effective_date <= on:
            (by_item if r.counts else waiting).setdefault((r.criterion, r.item), []).append(r)
    out = []
    for control in catalog.controls:
        for required in control.manual_evidence:
            key = (control.id, required.name)
            mine, idle = by_item.get(key, []), waiting.get(key, [])
            if required.per is not None:
                out.append(_per_event(control, required, mine, idle, pops, on))
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
