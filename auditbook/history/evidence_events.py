"""Manual evidence matched to the period's events (issue 14 §2): the submitter's annotations of a
pending document. (The populations per-event items are judged against: store.item_populations; every
item's state on a day with them: scan.evidence_status.)

- annotate_evidence: the submitter links a pending document to the change (event id or ticket) or
  account it evidences, and/or explains why a flagged one came late; the second person then approves
  the document with its explanation. Versioned, authorised, in the audit trail."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from auditbook.auth import Actor, authorize
from auditbook.catalog.model import Catalog
from auditbook.errors import UserError
from auditbook.evaluate.evidence_review import (
    StaleEvidence,
    check_annotation,
    checked_explanation,
    checked_subject,
)
from auditbook.evaluate.manual_evidence import EvidenceRecord
from auditbook.store import audit_log
from auditbook.store import manual_evidence as documents
from auditbook.store.session import writing


def _per_of(catalog: Catalog, row: EvidenceRecord) -> Optional[str]:
    control = next((c for c in catalog.controls if c.id == row.criterion), None)
    required = next((m for m in (control.manual_evidence if control else []) if m.name == row.item), None)
    return required.per if required else None


def annotate_evidence(engine, catalog: Catalog, actor: Actor, evidence_id: int, version: int, *,
                      change: Optional[str] = None, account: Optional[str] = None,
                      explanation: Optional[str] = None) -> EvidenceRecord:
    """The submitter links their pending document to a change or an account (per-change / per-account
    items) and/or gives the explanation a flagged document needs; only at the version they read."""
    if change is None and account is None and explanation is None:
        raise UserError("give --change, --account or --explanation")
    if change is not None and account is not None:
        raise UserError("--change and --account: a document evidences one change or one account, not both")
    authorize(actor, "submit_evidence")
    text = None if explanation is None else checked_explanation(explanation)
    with writing(engine) as session:
        seen = documents.record(session, evidence_id)
        if seen is None:
            raise UserError(f"evidence: there is no document {evidence_id}")
        subject = None
        if change is not None or account is not None:
            option, value = ("--change", change) if change is not None else ("--account", account)
            subject = checked_subject(_per_of(catalog, seen), option, value, seen.criterion, seen.item)
        check_annotation(actor.name, seen.submitted_by, seen.status, evidence_id)
        at = dt.datetime.now(dt.timezone.utc)
        if seen.version != version or not documents.annotate_if_version(
                session, evidence_id, version, subject=subject, explanation=text, at=at):
            raise StaleEvidence(f"evidence {evidence_id} changed since it was read (version {version}, now "
                                f"{seen.version}, {seen.status}): read it again")
        after = {"version": version + 1, **({"subject": subject} if subject else {}),
                 **({"explanation": text} if text else {})}
        audit_log.record(session, actor, "annotate_evidence", "manual_evidence", evidence_id,
                         before={"version": version, "subject": seen.subject, "explanation": seen.explanation},
                         after=after, at=at)
        return documents.record(session, evidence_id)
