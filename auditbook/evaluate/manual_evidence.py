"""Manual evidence: documents uploaded against a criterion's required items, with an owner and an
effective date. Expiry follows the item's cadence. A criterion whose required evidence is missing or
expired on a date is NEEDS_EVIDENCE on that date — never PASS."""
from __future__ import annotations

import calendar
import datetime as dt
import getpass
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from auditbook.catalog.model import Catalog
from auditbook.errors import UserError, shown
from auditbook.store.models import Document, ManualEvidence
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


def add_evidence(engine, catalog: Catalog, criterion: str, path: Path, *, effective: dt.date, owner: str,
                 item: Optional[str] = None, uploaded_by: Optional[str] = None,
                 today: Optional[dt.date] = None) -> ManualEvidence:
    """Store the file and its record; every input is checked before anything is written."""
    control = next((c for c in catalog.controls if c.id == criterion), None)
    if control is None:
        raise UserError(f"CRITERION: {shown(criterion)} is not a criterion in the catalog")
    if not control.manual_evidence:
        raise UserError(f"CRITERION: {criterion} requires no manual evidence")
    if item:
        found = [m for m in control.manual_evidence if m.name.lower() == item.strip().lower()]
        if not found:
            names = "; ".join(m.name for m in control.manual_evidence)
            raise UserError(f"--item: {shown(item)} is not required by {criterion} (it requires: {names})")
        required = found[0]
    elif len(control.manual_evidence) == 1:
        required = control.manual_evidence[0]
    else:
        names = "; ".join(m.name for m in control.manual_evidence)
        raise UserError(f"--item: {criterion} requires several items, name one of: {names}")
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
    sha = hashlib.sha256(data).hexdigest()
    with Session(engine) as session, session.begin():
        if session.get(Document, sha) is None:
            session.add(Document(sha256=sha, size=len(data), content=zlib.compress(data, 6)))
        row = ManualEvidence(criterion=criterion, item=required.name, filename=path.name, sha256=sha,
                             owner=owner, uploaded_by=uploaded_by,
                             uploaded_at=dt.datetime.now(dt.timezone.utc), effective_date=effective,
                             expires_on=expiry(effective, required.cadence))
        session.add(row)
        session.flush()
        session.expunge(row)
    return row


@dataclass
class ItemStatus:
    criterion: str
    item: str
    cadence: str
    state: str  # current, expired, missing
    evidence: Optional[ManualEvidence]
    due: Optional[dt.date]  # when the current evidence lapses (None: missing, or per-event)


def evidence_status(engine, catalog: Catalog, on: Optional[dt.date] = None) -> list[ItemStatus]:
    """Each required item on a date: current (effective on or before it, not lapsed), expired (the
    latest lapsed before it), or missing. Effective dates decide, not upload times."""
    on = on or dt.date.today()
    with Session(engine) as session:
        rows = session.scalars(select(ManualEvidence).order_by(ManualEvidence.effective_date)).all()
        for row in rows:
            session.expunge(row)
    out = []
    for control in catalog.controls:
        for required in control.manual_evidence:
            mine = [r for r in rows if r.criterion == control.id and r.item == required.name and r.effective_date <= on]
            current = [r for r in mine if r.expires_on is None or on < r.expires_on]
            if current:
                best = max(current, key=lambda r: r.effective_date)
                out.append(ItemStatus(control.id, required.name, required.cadence, "current", best, best.expires_on))
            elif mine:
                out.append(ItemStatus(control.id, required.name, required.cadence, "expired", mine[-1], None))
            else:
                out.append(ItemStatus(control.id, required.name, required.cadence, "missing", None, None))
    return out


def criteria_needing_evidence(engine, catalog: Catalog, on: Optional[dt.date] = None) -> set[str]:
    return {s.criterion for s in evidence_status(engine, catalog, on) if s.state != "current"}


def document_bytes(engine, sha256: str) -> bytes:
    with Session(engine) as session:
        doc = session.get(Document, sha256)
        if doc is None:
            raise UserError(f"no document {sha256}")
        return zlib.decompress(doc.content)
