"""The rules of a manual evidence document's review (issue 14 §2), over plain values:

- two-person rule: a document counts only once a second person approves it; the approver is never
  the submitter (names compared without case, spaces or the command line's " (cli)" suffix);
- a decision (approve or reject) carries a reason, and is taken on a pending document only;
- flags on the upload's timeline, shown beside the document and never a refusal: a document uploaded
  after the quarter of its effective date had ended (the evidence came after the period it speaks
  for), and one whose effective date is more than BACKDATE_DAYS before its upload (backdated)."""
from __future__ import annotations

import calendar
import datetime as dt
from typing import Optional

from auditbook.errors import UserError, shown

BACKDATE_DAYS = 30  # an effective date more than this many days before the upload is flagged "backdated"
REASON_CHARS = 2000  # EvidenceReview.reason: String(2000)
DECISIONS = {"approve": "approved", "reject": "rejected"}
STATUSES = ("pending", "approved", "rejected")


class TwoPersonRule(UserError):
    """The person deciding on a document is the one who submitted it."""


class StaleEvidence(UserError):
    """The document's review changed since the caller read it (another decision came first)."""


def person(name: str) -> str:
    """A name as the two-person rule compares it: 'Alice (cli)' and ' alice ' are one person."""
    name = " ".join((name or "").split()).casefold()
    return name[:-len(" (cli)")] if name.endswith(" (cli)") else name


def checked_reason(reason: Optional[str]) -> str:
    """A decision's reason: required, at most REASON_CHARS characters, stored as typed (stripped)."""
    text = (reason or "").strip()
    if not text:
        raise UserError("--reason: give the reason for the decision")
    if len(text) > REASON_CHARS:
        raise UserError(f"--reason: {len(text)} characters, more than the {REASON_CHARS} allowed: {shown(text[:40])}…")
    return text


def check_decision(decision: str, decider: str, submitted_by: str, status: str, evidence_id: int) -> str:
    """The status a decision leads to; a UserError when the decision may not be taken by `decider`."""
    if decision not in DECISIONS:
        raise UserError(f"decision: {shown(decision)} is not approve or reject")
    if person(decider) == person(submitted_by):
        raise TwoPersonRule(f"evidence {evidence_id}: {shown(decider)} submitted it, so a second person must "
                            f"{decision} it (two-person rule)")
    if status != "pending":
        raise UserError(f"evidence {evidence_id}: already {status}; only a pending document can be decided "
                        "(submit a new one to replace it)")
    return DECISIONS[decision]


def quarter_end(day: dt.date) -> dt.date:
    """The last day of the calendar quarter holding `day`."""
    last_month = (day.month - 1) // 3 * 3 + 3
    return dt.date(day.year, last_month, calendar.monthrange(day.year, last_month)[1])


def quarter_label(day: dt.date) -> str:
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def upload_flags(effective: dt.date, uploaded_at: dt.datetime, backdate_days: int = BACKDATE_DAYS) -> list[str]:
    """The flags on a document's timeline (empty: uploaded in time); each a line for the page."""
    uploaded = uploaded_at.astimezone(dt.timezone.utc).date() if uploaded_at.tzinfo else uploaded_at.date()
    flags = []
    ended = quarter_end(effective)
    if uploaded > ended:
        flags.append(f"late upload: uploaded {uploaded}, {(uploaded - ended).days} days after the quarter of its "
                     f"effective date ({quarter_label(effective)}) ended")
    if (uploaded - effective).days > backdate_days:
        flags.append(f"backdated: effective {(uploaded - effective).days} days before its upload "
                     f"(more than {backdate_days})")
    return flags
