"""Sign-offs: for a period, each criterion's, the packet's and the management assertion's preparer and
reviewer (names, times, decision, comments); analysts and admins sign a subject as prepared, approvers
and admins review the latest preparation — through auditbook.history.signoffs, which enforces the
two-person rule, the order and the invalidation of an earlier review (docs/signoff.md)."""
import datetime as dt

import pandas as pd
import streamlit as st
import ui

from auditbook.auth import PermissionDenied
from auditbook.errors import UserError
from auditbook.history import signoffs as service
from auditbook.history.period import previous_quarter
from auditbook.history.sampling import parse_audit_period

ctx = ui.require("view_evidence")
st.title("Sign-offs")
st.caption("Who prepared the evidence of each criterion, of the packet and of the management assertion, "
           "who reviewed it, when and with what decision. The reviewer is always a second person.")
typed = st.text_input("Period", value=previous_quarter(dt.datetime.now(dt.timezone.utc).date()).label,
                      help="2026Q3, 2026 (a year) or 2026-07-01..2026-09-30")
try:
    period = parse_audit_period(typed)
    found = service.signoffs_for(ctx.engine, period, [c.id for c in ctx.catalog.controls])
except UserError as exc:
    ui.say("error", exc)
    st.stop()


def at(value) -> str:
    return value[:16].replace("T", " ") + " UTC" if value else ""


def row(subject: str, state: dict) -> dict:
    """One subject's sign-off as a table row (every value plain text: st.dataframe shows it as text)."""
    return {"subject": subject, "state": state["state"] + (" (needs review again)" if state["needs_review_again"] else ""),
            "preparer": state["preparer"] or "", "prepared at": at(state["prepared_at"]),
            "preparation comment": state["preparation_comment"] or "", "reviewer": state["reviewer"] or "",
            "reviewed at": at(state["reviewed_at"]), "decision": state["decision"] or "",
            "review comment": state["review_comment"] or ""}


states = {**found["criteria"], service.PACKET: found["packet"], service.ASSERTION: found["assertion"]["signoff"]}
counted = {s: sum(1 for x in found["criteria"].values() if x["state"] == s) for s in service.STATES}
st.caption(f"{ui.md(period.label)} ({period.start} to {period.end}): " + ", ".join(
    f"{n} {ui.md(s)}" for s, n in counted.items() if n) + f" of {len(found['criteria'])} criteria.")
for subject in (service.PACKET, service.ASSERTION):
    st.markdown(f"**{subject.capitalize()}**: {ui.md(service.signoff_line(states[subject]))}")
st.dataframe(pd.DataFrame([row(s, x) for s, x in states.items()]), hide_index=True, width="stretch")
with st.expander("Every sign-off of a subject (its history)"):
    shown_subject = st.selectbox("Subject", list(states), key="history_subject")
    history = states[shown_subject]["history"]
    if history:
        st.dataframe(pd.DataFrame([{"stage": e["stage"], "by": e["by"], "role": e["role"], "at": at(e["at"]),
                                    "decision": e["decision"] or "", "comment": e["comment"] or ""}
                                   for e in history]), hide_index=True, width="stretch")
    else:
        st.caption("Never signed.")
with st.expander("The management assertion's text"):
    st.text(found["assertion"]["text"])
    if found["assertion"]["text_changed"]:
        ui.say("warning", "The text changed since it was prepared: prepare it again before review.")


def subject_label(subject: str) -> str:
    return f"{subject} · {states[subject]['state']}"


def saved(kind: str, state: dict, subject: str) -> None:
    st.session_state["signoff_saved"] = f"{subject}: {kind} — now {state['state']}."
    st.rerun()


def prepare_form() -> None:
    """Sign a subject as prepared (the analyst's and the admin's part)."""
    with st.form("prepare"):
        st.subheader("Sign as prepared")
        subject = st.selectbox("Subject to prepare", list(states), format_func=subject_label)
        comment = st.text_area("Preparation comment (optional)")
        if st.form_submit_button("Sign as prepared"):
            try:
                saved("prepared", service.prepare(ctx.engine, ctx.catalog, ctx.actor, period, subject, comment), subject)
            except (PermissionDenied, UserError) as exc:
                ui.say("error", exc)


def review_form(seen: dict) -> None:
    """Review the latest preparation of a subject waiting for review (the approver's and the admin's
    part); the preparation decided on must be the one this page showed (`seen`: subject -> the time of
    the preparation the previous run of the page showed; this run has read the store again)."""
    waiting = [s for s, x in states.items() if x["state"] == "prepared"]
    if not waiting:
        st.info("Nothing is waiting for review in this period.")
        return
    with st.form("review"):
        st.subheader("Review")
        subject = st.selectbox("Subject to review", waiting, format_func=subject_label)
        decision = st.selectbox("Decision", list(service.DECISIONS))
        comment = st.text_area("Review comment (required unless approved)")
        if st.form_submit_button("Save review"):
            try:
                if seen.get(subject, states[subject]["prepared_at"]) != states[subject]["prepared_at"]:
                    raise UserError(f"{subject}: prepared again since this page was read; read it again")
                saved(decision, service.review(ctx.engine, ctx.catalog, ctx.actor, period, subject, decision,
                                               comment), subject)
            except (PermissionDenied, UserError) as exc:
                ui.say("error", exc)


done = st.session_state.pop("signoff_saved", None)
if done:
    ui.say("success", done)
if ctx.actor.can("prepare_signoff"):
    prepare_form()
shown = st.session_state.get("signoff_shown") or {}
if ctx.actor.can("review_signoff"):
    review_form(shown.get("prepared", {}) if shown.get("period") == period.as_dict() else {})
st.session_state["signoff_shown"] = {"period": period.as_dict(),
                                     "prepared": {s: x["prepared_at"] for s, x in states.items()}}
