"""The rules of a manual evidence document's review (issue 14 §2), over plain values:

- two-person rule: a document counts only once a second person approves it; the approver is never
  the submitter (names compared without case, spaces or the command line's " (cli)" suffix);
- a decision (approve or reject) carries a reason, and is taken on a pending document only;
- flags on the upload's timeline, shown beside the document and never a refusal: a document uploaded
  after the quarter of its effective date had ended (the evidence came after the period it speaks
  for), and one whose effective date is more than BACKDATE_DAYS before its upload (backdated);
- a flagged document covers its period only with an explanation: written by its submitter while it is
  pending (bounded free text) and approved with it by the second person. Approved without one, it
  counts for nothing (uncovered() says why) and a new submission with an explanation replaces it;
- the subject of a per-event document: the change (CloudTrail event id or ticket) or account it evidences."""
from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Optional

from auditbook.auth import person
from auditbook.errors import UserError, checked_text, shown

BACKDATE_DAYS = 30  # an effective date more than this many days before the upload is flagged "backdated"
REASON_CHARS = 2000  # EvidenceReview.reason: String(2000)
EXPLANATION_CHARS = 2000  # EvidenceReview.explanation: String(2000)
SUBJECT_CHARS = 200  # EvidenceReview.subject: String(200)
_CHANGE_SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")  # a CloudTrail event id or a ticket
_ACCOUNT_SUBJECT = re.compile(r"^[0-9]{12}$")
DECISIONS = {"approve": "approved", "reject": "rejected"}
STATUSES = ("pending", "approved", "rejected")


class TwoPersonRule(UserError):
    """The person deciding on a document is the one who submitted it."""


class StaleEvidence(UserError):
    """The document's review changed since the caller read it (another decision came first)."""


def checked_reason(reason: Optional[str]) -> str:
    """A decision's reason: required, at most REASON_CHARS characters, stored as typed (stripped)."""
    if not (reason or "").strip():
        raise UserError("--reason: give the reason for the decision")
    return checked_text(reason, "--reason", REASON_CHARS)


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


def checked_explanation(text: Optional[str]) -> str:
    """Why a flagged document is late or backdated: required, at most EXPLANATION_CHARS characters,
    stored as typed (stripped)."""
    if not (text or "").strip():
        raise UserError("--explanation: give the explanation (why the document came late or is dated back)")
    return checked_text(text, "--explanation", EXPLANATION_CHARS)


def checked_subject(per: Optional[str], option: str, value: str, criterion: str, item: str) -> str:
    """What a per-event document evidences, given with `option`: --change (a CloudTrail event id or a
    ticket) for `per: change` and `per: access-change`, --account (a 12-digit id) for `per: account`."""
    wanted = "--account" if per == "account" else "--change" if per in ("change", "access-change") else None
    if wanted is None:
        raise UserError(f"{option}: {criterion} / {item} is not evidenced per change or per account")
    if option != wanted:
        raise UserError(f"{option}: {criterion} / {item} is evidenced per {per}: give {wanted}")
    pattern = _ACCOUNT_SUBJECT if per == "account" else _CHANGE_SUBJECT
    text = (value or "").strip()
    if not pattern.match(text):
        what = "a 12-digit account id" if per == "account" else "a CloudTrail event id or a ticket (letters, digits, . _ : / -)"
        raise UserError(f"{option}: {shown(text[:60])} is not {what}")
    return text


def check_annotation(annotator: str, submitted_by: str, status: str, evidence_id: int) -> None:
    """Only the submitter explains or links their document, and only while it is pending: the
    approver then approves the document with its explanation (two people)."""
    if person(annotator) != person(submitted_by):
        raise TwoPersonRule(f"evidence {evidence_id}: only its submitter ({shown(submitted_by)}) explains or links it; "
                            "the second person approves it with its explanation")
    if status != "pending":
        raise UserError(f"evidence {evidence_id}: already {status}; only a pending document can be explained or "
                        "linked (submit a new one to replace it)")


def uncovered(status: str, timeline_flags: list[str], explanation: Optional[str]) -> Optional[str]:
    """Why a document does not cover its period (None: it does): not approved, or flagged with no
    explanation approved with it."""
    if status != "approved":
        return f"{status}: only an approved document counts"
    if timeline_flags and not explanation:
        return ("flagged (" + "; ".join(f.split(":")[0] for f in timeline_flags) + ") and approved without an "
                "explanation: it does not cover the period (submit it again with an explanation)")
    return None
