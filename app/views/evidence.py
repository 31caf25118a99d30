"""Evidence: the manual evidence documents with their review (submitted by, approved or rejected by a
second person with a reason, late-upload and backdated flags; an approver decides here), then the
explorer of a run's resources by account (with its name), region, type or text, the findings of a
check, and the hashed raw JSON behind them; a run from the demo is labelled SIMULATED."""
import pandas as pd
import streamlit as st
import ui

from auditbook.auth import PermissionDenied, person
from auditbook.catalog.model import load_catalog
from auditbook.collect.evidence import canonical, digest
from auditbook.errors import UserError
from auditbook.evaluate.evidence_review import BACKDATE_DAYS, EXPLANATION_CHARS
from auditbook.history.evidence_events import annotate_evidence
from auditbook.history.findings import evidence_body, findings_for_run, resolve_run
from auditbook.history.posture import resources, scope_values
from auditbook.scan import decide_evidence, evidence_documents, evidence_status

ctx = ui.require("view_evidence")
st.title("Evidence")


def document_rows(docs) -> pd.DataFrame:
    return pd.DataFrame([{"id": d.id, "criterion": d.criterion, "item": d.item, "file": d.filename,
                          "incident": d.incident_id, "evidences": d.subject or "", "submitted by": d.submitted_by,
                          "uploaded": ui.when(d.uploaded_at), "effective": str(d.effective_date), "status": d.status,
                          "decided by": d.decided_by or "", "reason": d.reason or "", "flags": "; ".join(d.flags),
                          "counts": "yes" if d.counts else d.uncovered, "note": d.note or ""} for d in docs])


def annotation_form(mine, seen: dict) -> None:
    """The submitter explains a flagged pending document and/or names the change or account it
    evidences, at the version they saw; the approver then approves it with its explanation."""
    labels = {d.id: f"#{d.id} {d.criterion} / {d.item}: {d.filename}" for d in mine}
    with st.form("evidence-annotation", clear_on_submit=True):
        st.caption("Your pending documents: explain a flagged one (it covers its period only with an explanation "
                   "approved with it), or name the change (event id or ticket) or account a per-event one evidences.")
        chosen = st.selectbox("Your document", list(labels), format_func=labels.get)
        explanation = st.text_area("Explanation (why it came late or is dated back)", max_chars=EXPLANATION_CHARS)
        subject = st.text_input("Change (event id or ticket) or account it evidences", max_chars=200)
        if not st.form_submit_button("Save"):
            return
    current = next(d for d in mine if d.id == chosen)
    per = next((m.per for c in catalog.controls if c.id == current.criterion for m in c.manual_evidence
                if m.name == current.item), None)
    fields = {"explanation": explanation.strip() or None}
    if subject.strip():  # the service checks it fits the item (per: account -> an account, else a change)
        fields["account" if per == "account" else "change"] = subject.strip()
    try:
        done = annotate_evidence(ctx.engine, catalog, ctx.actor, chosen, seen.get(chosen, current.version), **fields)
        st.session_state["evidence-decided"] = f"Document {done.id}: saved, pending approval."
        st.session_state.pop("evidence-seen", None)
        st.rerun()
    except (PermissionDenied, UserError) as exc:
        st.session_state.pop("evidence-seen", None)
        ui.say("error", exc)


def items_not_current() -> None:
    """Today's required items that are not current, with why (members not evidenced, documents that
    do not count)."""
    rows = [{"criterion": s.criterion, "item": s.item, "state": s.state, "matched to": s.per or "",
             "why": "; ".join(s.reasons)} for s in evidence_status(ctx.engine, catalog) if s.state != "current"]
    st.subheader("Required items that need evidence today")
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    else:
        st.caption("Every required item is current.")


def decision_form(pending, seen: dict) -> None:
    """Approve or reject one pending document with a reason, at the version this user saw."""
    labels = {d.id: f"#{d.id} {d.criterion} / {d.item}: {d.filename} (submitted by {d.submitted_by})" for d in pending}
    with st.form("evidence-decision", clear_on_submit=True):
        chosen = st.selectbox("Document", list(labels), format_func=labels.get)
        reason = st.text_area("Reason (required)", max_chars=2000)
        approve, reject = st.columns(2)
        decision = ("approve" if approve.form_submit_button("Approve") else
                    "reject" if reject.form_submit_button("Reject") else None)
    if decision is None or chosen is None:
        return
    current = next(d for d in pending if d.id == chosen)
    try:
        done = decide_evidence(ctx.engine, ctx.actor, chosen, seen.get(chosen, current.version), decision, reason)
        st.session_state["evidence-decided"] = f"Document {done.id}: {done.status}."
        st.session_state.pop("evidence-seen", None)
        st.rerun()
    except (PermissionDenied, UserError) as exc:
        st.session_state.pop("evidence-seen", None)  # the page now shows the review as it is
        ui.say("error", exc)


def findings_or_resources(run, names: dict) -> list[str]:
    """The findings of a check, or the resources, of a run (filtered); the evidence SHA-256s behind them."""
    values = scope_values(ctx.engine, run.id)
    c1, c2, c3, c4 = st.columns(4)
    account = c1.selectbox("Account", [""] + values["account"],
                           format_func=lambda a: ui.account_label(a, names) if a else "")
    region = c2.selectbox("Region", [""] + values["region"])
    rtype = c3.selectbox("Resource type", [""] + values["resource_type"])
    text = c4.text_input("Name, id or ARN contains")
    check = st.selectbox("Check (findings)", [""] + [c.id for c in ctx.catalog.checks])
    if check:
        found = [f for f in findings_for_run(ctx.engine, run.id, [check])
                 if (not account or f["account"] == account) and (not region or f["region"] == region)]
        st.caption(f"{len(found)} findings of {check} in run {run.id}")
        if found:
            frame = pd.DataFrame(found)
            frame["account"] = [ui.account_label(a, names) for a in frame["account"]]
            links = ui.timeline_links(frame)
            st.dataframe(frame[["status", "account", "region", "resource_name", "resource", "timeline", "message"]],
                         hide_index=True, width="stretch", column_config=links)
        return sorted({h for f in found for h in f["evidence"]})
    rows, total = resources(ctx.engine, run.id, account=account or None, region=region or None,
                            resource_type=rtype or None, text=text or None)
    st.caption(f"{total} resources in run {run.id}" + (f" (first {len(rows)} shown)" if total > len(rows) else ""))
    if rows:
        frame = pd.DataFrame(rows)
        frame["account"] = [ui.account_label(a, names) for a in frame["account"]]
        links = ui.timeline_links(frame)
        st.dataframe(frame[["resource_type", "account", "region", "name", "resource", "timeline"]],
                     hide_index=True, width="stretch", column_config=links)
    return sorted({h for r in rows for h in r["evidence"]})


def run_explorer() -> None:
    st.header("Resources and findings of a run")
    latest = ui.latest_run(ctx.db)
    if latest is None:
        st.warning("No runs in the store yet.")
        return
    run_id = st.number_input("Run", min_value=1, max_value=latest["id"], value=latest["id"], step=1)
    run = resolve_run(ctx.engine, str(run_id))
    st.caption(f"Run {run.id} at {ui.when(run.started_at)}"
               + (f" · SIMULATED ({ui.md(run.parameters.get('simulated'))}): data from auditbook's demo"
                  if run.simulated else ""))
    shas = findings_or_resources(run, ui.account_names(ctx.db))
    if shas:
        sha = st.selectbox("Evidence (SHA-256 of the redacted API response)", shas[:1000])
        try:  # evidence in an S3 bucket: an object missing, unreadable or altered is one line, named
            body = evidence_body(ctx.engine, sha)
        except UserError as exc:
            st.error(str(exc))
            return
        st.caption("SHA-256 re-computed from the stored body: matches" if digest(canonical(body)) == sha
                   else "SHA-256 re-computed from the stored body: DOES NOT MATCH")
        st.code(sha)
        st.json(body)


run_explorer()

catalog = ctx.catalog or load_catalog()
st.header("Manual evidence documents")
st.caption("A document counts for its criterion only once a second person with the approver role approves it. "
           f"Flags: uploaded after the quarter of its effective date ended, or effective more than {BACKDATE_DAYS} "
           "days before its upload — shown, never refused; a flagged document covers its period only with its "
           "submitter's explanation, approved with it.")
decided = st.session_state.pop("evidence-decided", None)
if decided:
    ui.say("success", decided)
shown_status = st.selectbox("Review status", ["pending", "approved", "rejected", "all"])
docs = evidence_documents(ctx.engine, None if shown_status == "all" else shown_status)
flagged = sum(1 for d in docs if d.flags)
st.caption(f"{len(docs)} document(s) {shown_status if shown_status != 'all' else 'on file'}; {flagged} flagged")
if docs:
    st.dataframe(document_rows(docs), hide_index=True, width="stretch")
pending = [d for d in docs if d.status == "pending"] if shown_status in ("pending", "all") else []
seen_versions = st.session_state.get("evidence-seen", {})
if pending and ctx.actor.can("approve_evidence"):
    decision_form(pending, seen_versions)
own = [d for d in pending if person(d.submitted_by) == person(ctx.actor.name)]
if own and ctx.actor.can("submit_evidence"):
    annotation_form(own, seen_versions)
st.session_state["evidence-seen"] = {**{d.id: d.version for d in pending}, **seen_versions}
items_not_current()

