"""Sign-offs of a period's evidence (issue 14 §6, docs/signoff.md): for each criterion, for the packet
and for the management assertion, a preparer signs that the evidence is ready and a reviewer — a
second person — decides: approved, changes-requested or rejected. Each sign-off is an append-only
audit-trail entry (store.signoffs); a subject's state is derived from its entries:

  unsigned            no preparation yet
  prepared            prepared, waiting for review (`needs_review_again` when a review was
                      invalidated by a newer preparation)
  reviewed            the latest preparation was approved by its reviewer
  changes requested   the reviewer asked the preparer to change something (prepare again)
  rejected            the reviewer does not accept the evidence as presented (prepare again)

Rules, checked in the same unit of work as the entry is written: a review needs a preparation; the
reviewer is never the preparer (two-person rule; names compared as for manual evidence); each
preparation is reviewed once (a new preparation is needed for another review); a new preparation
after a review invalidates it."""
from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from string import Template
from typing import Iterable, Optional

from auditbook.auth import Actor, authorize, person
from auditbook.catalog.model import Catalog
from auditbook.errors import UserError, checked_text, shown
from auditbook.history.period import Period, quarter
from auditbook.store import settings as stored_settings
from auditbook.store import signoffs as stored
from auditbook.store.session import reading, writing

PACKET, ASSERTION = "packet", "assertion"
DECISIONS = ("approved", "changes-requested", "rejected")
STATE_OF_DECISION = {"approved": "reviewed", "changes-requested": "changes requested", "rejected": "rejected"}
STATES = ("unsigned", "prepared", "reviewed", "changes requested", "rejected")
COMMENT_CHARS = 2000
ASSERTION_KEY = "management_assertion"
ASSERTION_TEXT_CHARS = 20000
ASSERTION_NAME_CHARS = 200
ASSERTION_FIELDS = ("$organisation", "$system", "$period", "$period_start", "$period_end")
DEFAULT_ASSERTION = {
    "organisation": "the company",
    "system": "its AWS environment as scanned by auditbook",
    "text": ("Management of $organisation asserts that, for the period $period_start to $period_end "
             "($period), the controls over $system described in this packet were suitably designed and "
             "operated effectively throughout the period to provide reasonable assurance that the service "
             "commitments and system requirements were achieved based on the applicable trust services "
             "criteria, except for the deviations listed in this packet with management's responses. "
             "The evidence in this packet was produced by the system named above and is complete for "
             "the accounts and regions stated in its scope."),
}


# --- input ------------------------------------------------------------------------------------------

def checked_subject(catalog: Catalog, subject: str) -> str:
    """A sign-off's subject: a criterion of the catalog, `packet` or `assertion`."""
    text = (subject or "").strip()
    if text in (PACKET, ASSERTION) or text in {c.id for c in catalog.controls}:
        return text
    raise UserError(f"SUBJECT: {shown(subject)} is not a criterion of the catalog, {PACKET} or {ASSERTION}")


def checked_comment(comment: Optional[str], required: bool = False) -> Optional[str]:
    """A comment: at most COMMENT_CHARS characters, stored as typed (stripped); None when empty."""
    if required and not (comment or "").strip():
        raise UserError("--comment: give the reason for the decision")
    return checked_text(comment, "--comment", COMMENT_CHARS)


def checked_decision(decision: str) -> str:
    if decision not in DECISIONS:
        raise UserError(f"--decision: {shown(decision)} is not one of {', '.join(DECISIONS)}")
    return decision


# --- state ------------------------------------------------------------------------------------------

def _iso(value) -> Optional[str]:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def state_of(entries: list[dict]) -> dict:
    """A subject's sign-off state from its entries (oldest first): the latest preparation and the
    review of it, if any; every entry in `history`."""
    last_prep = max((n for n, e in enumerate(entries) if e["stage"] == "prepare"), default=None)
    prep = entries[last_prep] if last_prep is not None else None
    after = [e for e in entries[(last_prep or 0) + 1:] if e["stage"] == "review"] if prep else []
    review = after[-1] if after else None
    earlier_review = prep is not None and any(e["stage"] == "review" for e in entries[:last_prep])
    decision = review and review.get("decision")
    state = ("unsigned" if prep is None else "prepared" if review is None
             else STATE_OF_DECISION.get(decision, f"unknown decision {decision!r}"))  # a trail from a later version
    return {"state": state,
            "preparer": prep and prep["by"], "prepared_at": prep and _iso(prep["at"]),
            "preparation_comment": prep and prep.get("comment"),
            "reviewer": review and review["by"], "reviewed_at": review and _iso(review["at"]),
            "decision": decision, "review_comment": review and review.get("comment"),
            "needs_review_again": bool(prep and not review and earlier_review),
            "history": [{"stage": e["stage"], "by": e["by"], "role": e["role"], "at": _iso(e["at"]),
                         "decision": e.get("decision"), "comment": e.get("comment")} for e in entries]}


def _check_review(subject: str, reviewer: Actor, current: dict) -> None:
    if current["state"] == "unsigned":
        raise UserError(f"{subject}: not prepared yet; a review needs a preparation first "
                        f"(auditbook signoff prepare {subject} …)")
    if current["reviewer"] is not None:
        raise UserError(f"{subject}: the preparation of {current['prepared_at']} was already reviewed "
                        f"({current['decision']} by {shown(current['reviewer'])}); prepare it again for another review")
    if person(reviewer.name) == person(current["preparer"]):
        raise UserError(f"{subject}: {shown(reviewer.name)} prepared it, so a second person must review it "
                        "(two-person rule)")


# --- writes -----------------------------------------------------------------------------------------

def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _now(at: Optional[dt.datetime]) -> dt.datetime:
    return at or dt.datetime.now(dt.timezone.utc)


def prepare(engine, catalog: Catalog, actor: Actor, period: Period, subject: str,
            comment: Optional[str] = None, at: Optional[dt.datetime] = None) -> dict:
    """Sign a subject as prepared for the period; a review of an earlier preparation no longer counts.
    The assertion's preparation records the text it signs (and its SHA-256). -> the subject's state."""
    authorize(actor, "prepare_signoff")
    subject, comment = checked_subject(catalog, subject), checked_comment(comment)
    entry = {"comment": comment, "period": period.as_dict()}
    with writing(engine) as session:
        if subject == ASSERTION:
            text = _assertion_text(session, period)
            entry |= {"text": text, "text_sha256": _text_sha(text)}
        stored.record_signoff(session, actor, period.start, period.end, subject, "prepare", entry, at=_now(at))
        return state_of(stored.signoffs(session, period.start, period.end, [subject])[subject])


def review(engine, catalog: Catalog, actor: Actor, period: Period, subject: str, decision: str,
           comment: Optional[str] = None, at: Optional[dt.datetime] = None) -> dict:
    """Review the latest preparation of a subject: approved, changes-requested or rejected (a comment
    is required unless approved). -> the subject's state."""
    authorize(actor, "review_signoff")
    subject, decision = checked_subject(catalog, subject), checked_decision(decision)
    comment = checked_comment(comment, required=decision != "approved")
    with writing(engine) as session:
        entries = stored.signoffs(session, period.start, period.end, [subject])[subject]
        current = state_of(entries)
        _check_review(subject, actor, current)
        signed = entries[-1]  # the preparation under review: nothing came after it
        if subject == ASSERTION and _text_sha(_assertion_text(session, period)) != signed.get("text_sha256"):
            raise UserError("assertion: its text changed since it was prepared; prepare it again before review")
        entry = {"decision": decision, "comment": comment, "period": period.as_dict(),
                 "preparation": {"by": current["preparer"], "at": current["prepared_at"]}}
        stored.record_signoff(session, actor, period.start, period.end, subject, "review", entry, at=_now(at))
        return state_of(stored.signoffs(session, period.start, period.end, [subject])[subject])


# --- the management assertion ----------------------------------------------------------------------

def valid_assertion(value) -> dict:
    """The management_assertion setting: {text, organisation, system}; the text a template whose only
    placeholders are ASSERTION_FIELDS. A UserError naming the first bad field."""
    if not isinstance(value, dict):
        raise UserError(f"management_assertion: {type(value).__name__} is not a mapping of text, organisation, system")
    unknown = sorted(set(value) - set(DEFAULT_ASSERTION), key=str)
    if unknown:
        raise UserError(f"management_assertion.{shown(unknown[0])}: not a field (text, organisation, system)")
    out = {}
    for key, default in DEFAULT_ASSERTION.items():
        text = value.get(key, default)
        limit = ASSERTION_TEXT_CHARS if key == "text" else ASSERTION_NAME_CHARS
        if not isinstance(text, str) or not text.strip() or len(text) > limit:
            raise UserError(f"management_assertion.{key}: {shown(text)} is not text of 1 to {limit} characters")
        control = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")
                        and not (key == "text" and c in "\n\t")), None)
        if control is not None:
            raise UserError(f"management_assertion.{key}: contains the control character {shown(control)}")
        out[key] = text.strip()
    template = Template(out["text"])
    bad = [f"${n}" for n in template.get_identifiers() if f"${n}" not in ASSERTION_FIELDS]
    if not template.is_valid() or bad:
        raise UserError(f"management_assertion.text: {shown(bad[0] if bad else out['text'][:60])}: placeholders "
                        f"are {', '.join(ASSERTION_FIELDS)} (write $$ for a dollar sign)")
    return out


def period_name(period: Period) -> str:
    """The period's name from its days alone (however it was given): `2026Q3` for a calendar
    quarter, `2026` for a calendar year, else `2026-07-01 to 2026-08-15`."""
    start, end = period.start, period.end
    if start.day == 1 and start.month % 3 == 1:
        q = quarter(start.year, (start.month - 1) // 3 + 1)
        if q.end == end:
            return q.label
    if (start.month, start.day, end.month, end.day) == (1, 1, 12, 31) and start.year == end.year:
        return str(start.year)
    return f"{start.isoformat()} to {end.isoformat()}"


def render_assertion(setting: dict, period: Period) -> str:
    """The assertion's text for the period: the template with the organisation, system and period
    (named from its days, so the text is the same however the period was given)."""
    return Template(setting["text"]).safe_substitute(
        organisation=setting["organisation"], system=setting["system"], period=period_name(period),
        period_start=period.start.isoformat(), period_end=period.end.isoformat())


def _assertion_text(session, period: Period) -> str:
    return render_assertion({**DEFAULT_ASSERTION, **(stored_settings.read(session, ASSERTION_KEY) or {})}, period)


def assertion(engine, period: Period) -> dict:
    """The management assertion for the period: its text now, its sign-off state, and whether the
    text signed differs from the text now (`text_changed`: the setting changed since; prepare again)."""
    with reading(engine) as session:
        text = _assertion_text(session, period)
        entries = stored.signoffs(session, period.start, period.end, [ASSERTION])[ASSERTION]
    preps = [e for e in entries if e["stage"] == "prepare"]
    sha = _text_sha(text)
    signed = preps[-1] if preps else None
    return {"text": text, "text_sha256": sha, "signoff": state_of(entries),
            "signed_text": signed and signed.get("text"),
            "text_changed": bool(signed and signed.get("text_sha256") != sha)}


# --- the period's sign-offs ------------------------------------------------------------------------

def signoffs_for(engine, period: Period, criteria: Iterable[str] = ()) -> dict:
    """Every sign-off of the period (data/signoffs.json): the state of each criterion (those given, in
    their order — unsigned when never signed — then any other signed), of the packet and of the
    assertion (with its text)."""
    criteria = list(criteria)
    with reading(engine) as session:
        signed = stored.subjects_signed(session, period.start, period.end)
        subjects = criteria + [s for s in signed if s not in criteria and s not in (PACKET, ASSERTION)]
        found = stored.signoffs(session, period.start, period.end, subjects + [PACKET])
    return {"period": period.as_dict(), "decisions": list(DECISIONS), "states": list(STATES),
            "criteria": {s: state_of(found[s]) for s in subjects}, "packet": state_of(found[PACKET]),
            "assertion": assertion(engine, period)}


def signoff_of(engine, period: Period, subject: str) -> dict:
    """One subject's sign-off state for the period (a criterion page's line)."""
    with reading(engine) as session:
        return state_of(stored.signoffs(session, period.start, period.end, [subject])[subject])


def signoff_line(state: dict) -> str:
    """A sign-off state in words, plain text (escape it for where it goes): 'reviewed · prepared by A
    at T · approved by B at T: comment'."""
    if state["state"] == "unsigned":
        return "unsigned: not prepared for review yet"
    line = f"{state['state']} · prepared by {state['preparer']} at {state['prepared_at'][:16].replace('T', ' ')} UTC"
    if state["reviewer"]:
        line += (f" · {state['decision']} by {state['reviewer']} at "
                 f"{state['reviewed_at'][:16].replace('T', ' ')} UTC")
        line += f": {state['review_comment']}" if state["review_comment"] else ""
    elif state["needs_review_again"]:
        line += " · needs review again (prepared after the last review)"
    else:
        line += " · waiting for review"
    return line
