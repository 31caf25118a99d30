"""Deviations: every failure stretch of a check, every stretch of missing or expired manual evidence
and every account the organisation listed that no run read, in a period, each with management's
response; analysts and admins record a response (root cause, ticket, compensating control,
remediation and its date, the response, whether it existed at the period's start when that differs
from the computed answer). A save is checked against the version this user saw (docs/deviations.md)."""
import datetime as dt

import pandas as pd
import streamlit as st
import ui

from auditbook.auth import PermissionDenied
from auditbook.errors import UserError
from auditbook.history import deviations as service
from auditbook.history.period import previous_quarter
from auditbook.history.sampling import parse_audit_period

ctx = ui.require("view_evidence")
st.title("Deviations")
st.caption("A failure stretch of a check, missing or expired manual evidence, an account not scanned, days "
           "without a scan, an alert not triaged in time, or an interval no CloudTrail log covered: each needs "
           "management's response for the auditor.")
left, right = st.columns([1, 2])
typed = left.text_input("Period", value=previous_quarter(dt.datetime.now(dt.timezone.utc).date()).label,
                        help="2026Q3, 2026 (a year) or 2026-07-01..2026-09-30")
criteria = [c.id for c in ctx.catalog.controls]
criterion = right.selectbox("Criterion", ["(all)"] + criteria)
try:
    period = parse_audit_period(typed)
    found = service.deviations(ctx.engine, ctx.catalog, period, None if criterion == "(all)" else criterion)
except UserError as exc:
    ui.say("error", exc)
    st.stop()


def row(d: dict) -> dict:
    answer = d["response"] or {}
    return {"id": d["id"], "kind": d["kind"], "criteria": ", ".join(d["criteria"]) or "scope",
            "check or item": d["check"] or d["item"] or "", "account": d["account"] or "",
            "resource": d["resource_name"] or d["resource"] or "", "what": d["what"], "from": d["from"],
            "until": d["until"] or "", "state": d["state"],
            "existed at start": ("yes" if d["existed_at_start"] else "no")
            + (" (set)" if d["existed_at_start_overridden"] else ""),
            "response": d["response_text"], "by": answer.get("responded_by", ""),
            "version": answer.get("version", 0)}


st.caption(f"{len(found)} deviations in {ui.md(period.label)} ({period.start} to {period.end}).")
if not found:
    st.info("No deviations in this period.")
    st.stop()
st.dataframe(pd.DataFrame([row(d) for d in found]), hide_index=True, width="stretch")

conflict = st.session_state.pop("deviation_conflict", None)
if conflict:
    ui.say("error", conflict)
if not ctx.actor.can("respond_deviation"):
    st.stop()

by_id = {d["id"]: d for d in found}


def label(ident: str) -> str:
    d = by_id[ident]
    return f"{ident} · {d['kind']} · {(d['check'] or d['item'] or d['account'] or '')[:60]}"


chosen = st.selectbox("Respond to", list(by_id), format_func=label)
dev = by_id[chosen]
current = dev["response"] or {}
# the version this user last saw: a save is checked against it, not against what the rerun that
# handles the click reads, so a response recorded by someone else in between is never overwritten
seen_key = f"deviation-seen-{chosen}"
seen_version = st.session_state.get(seen_key, current.get("version", 0))
AT_START = {"as computed": None, "yes": True, "no": False}
with st.form(f"respond-{chosen}"):
    st.caption(f"Computed: {'existed' if dev['existed_at_start_computed'] else 'did not exist'} at the period's "
               f"start · response version {current.get('version', 0)}")
    root_cause = st.text_area("Root cause", value=current.get("root_cause") or "")
    response = st.text_area("Management response", value=current.get("response") or "")
    ticket = st.text_input("Ticket", value=current.get("ticket") or "")
    compensating = st.text_area("Compensating control", value=current.get("compensating") or "")
    remediation = st.text_area("Remediation", value=current.get("remediation") or "")
    remediated_on = st.text_input("Remediated on (YYYY-MM-DD)", value=current.get("remediated_on") or "")
    overridden = {True: "yes", False: "no"}.get(current.get("existed_at_start"), "as computed")
    at_start = st.selectbox("Existed at the period's start", list(AT_START), index=list(AT_START).index(overridden))
    reason = st.text_area("Why (when not as computed)", value=current.get("existed_reason") or "")
    if st.form_submit_button("Save response"):
        try:
            service.respond(ctx.engine, ctx.actor, chosen, seen_version, catalog=ctx.catalog, period=period,
                            root_cause=root_cause, response=response, ticket=ticket, compensating=compensating,
                            remediation=remediation, remediated_on=remediated_on,
                            existed_at_start=AT_START[at_start], existed_reason=reason)
            st.session_state.pop(seen_key, None)
            st.rerun()
        except service.StaleResponse as exc:
            st.session_state["deviation_conflict"] = str(exc)
            st.session_state.pop(seen_key, None)  # the page shows the response as it is now
            st.rerun()
        except (PermissionDenied, UserError) as exc:
            ui.say("error", exc)
st.session_state[seen_key] = current.get("version", 0)
