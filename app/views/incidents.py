"""Incidents: create, work through open → investigating → contained → resolved → closed, SLA
targets and breaches, the timeline (every change and note, from the audit trail), links."""
import pandas as pd
import streamlit as st
import ui

from auditbook import plugins
from auditbook.auth import PermissionDenied
from auditbook.errors import UserError
from auditbook.monitor import incidents, runbooks

ctx = ui.require("view_incidents")
st.title("Incidents")
targets = incidents.sla_targets(ctx.engine)
show = st.radio("Show", ["active", "all"], horizontal=True)
rows = incidents.list_incidents(ctx.engine, incidents.ACTIVE if show == "active" else None)


def sla_text(inc: dict) -> str:
    state = incidents.sla_state(inc, targets)
    parts = []
    if state.acknowledge_breached:
        parts.append("ACK BREACHED")
    if state.resolve_breached:
        parts.append("RESOLVE BREACHED")
    return ", ".join(parts) or "within SLA"


if rows:
    st.dataframe(pd.DataFrame([{"id": i["id"], "severity": i["severity"], "status": i["status"], "title": i["title"],
                                "assignee": i["assignee"] or "", "opened": ui.when(i["created_at"]),
                                "SLA": sla_text(i)} for i in rows]), hide_index=True, width="stretch")
else:
    st.info("No incidents." if show == "all" else "No active incidents.")

if ctx.actor.can("create_incident"):
    with st.expander("New incident", expanded=not rows):
        with st.form("new-incident", clear_on_submit=True):
            title = st.text_input("Title")
            severity = st.selectbox("Severity", incidents.SEVERITIES, index=2)
            assignee = st.text_input("Assignee")
            description = st.text_area("Description")
            criterion = st.selectbox("Criterion (optional)", [""] + [c.id for c in ctx.catalog.controls])
            if st.form_submit_button("Create incident"):
                try:
                    links = [{"kind": "criterion", "ref": criterion, "label": criterion}] if criterion else []
                    made = incidents.create(ctx.engine, ctx.actor, title=title, severity=severity,
                                            description=description, assignee=assignee, links=links)
                    st.session_state["incident"] = made["id"]
                    st.success(f"Incident {made['id']} created.")
                    st.rerun()
                except (PermissionDenied, UserError) as exc:
                    ui.say("error", exc)

everything = incidents.list_incidents(ctx.engine)
if not everything:
    st.stop()
ids = [i["id"] for i in everything]
default = st.session_state.get("incident", ids[0])
chosen = st.selectbox("Incident", ids, index=ids.index(default) if default in ids else 0,
                      format_func=lambda i: next(f"#{x['id']} [{x['status']}] {x['title'][:80]}" for x in everything if x["id"] == i))
st.session_state["incident"] = chosen
inc = incidents.get(ctx.engine, chosen)
state = incidents.sla_state(inc, targets)
st.subheader(f"Incident {inc['id']}")
st.text(inc["title"])
a, b, c, d = st.columns(4)
a.metric("Status", inc["status"])
b.metric("Severity", inc["severity"])
c.metric("Time to acknowledge", str(state.time_to_acknowledge).split(".")[0] if state.time_to_acknowledge else "—",
         delta="breached" if state.acknowledge_breached else None, delta_color="inverse")
d.metric("Time to resolve", str(state.time_to_resolve).split(".")[0] if state.time_to_resolve else "—",
         delta="breached" if state.resolve_breached else None, delta_color="inverse")
st.caption(f"Assignee: {ui.md(inc['assignee'] or 'nobody')} · opened {ui.when(inc['created_at'])} by "
           f"{ui.md(inc['created_by'])} · acknowledge by {ui.when(state.acknowledge_due)} · resolve by "
           f"{ui.when(state.resolve_due)} · version {inc['version']}")
if inc["description"]:
    st.text(inc["description"])
if inc["links"]:
    st.dataframe(pd.DataFrame(inc["links"]), hide_index=True, width="stretch")

conflict = st.session_state.pop("incident_conflict", None)
if conflict:
    ui.say("error", conflict)

# the version this user last saw: a save is checked against it, not against what the rerun that
# handles the click reads, so a change made by someone else in between is never overwritten
seen_key = f"incident-seen-{inc['id']}"
seen_version = st.session_state.get(seen_key, inc["version"])
if ctx.actor.can("update_incident"):
    with st.form(f"update-{inc['id']}"):
        next_states = list(incidents.TRANSITIONS[inc["status"]])
        status = st.selectbox("Move to", ["(unchanged)"] + next_states)
        severity = st.selectbox("Severity ", incidents.SEVERITIES, index=incidents.SEVERITIES.index(inc["severity"]))
        assignee = st.text_input("Assignee ", value=inc["assignee"] or "")
        if st.form_submit_button("Save changes"):
            changes = {"severity": severity, "assignee": assignee}
            if status != "(unchanged)":
                changes["status"] = status
            try:
                incidents.update(ctx.engine, ctx.actor, inc["id"], seen_version, **changes)
                st.session_state.pop(seen_key, None)
                st.rerun()
            except incidents.Conflict as exc:
                st.session_state["incident_conflict"] = str(exc)
                st.session_state[seen_key] = exc.current["version"]  # what the page shows after the rerun
                st.rerun()
            except (PermissionDenied, UserError) as exc:
                ui.say("error", exc)
st.session_state[seen_key] = inc["version"]
if ctx.actor.can("note_incident"):
    with st.form(f"note-{inc['id']}", clear_on_submit=True):
        note = st.text_area("Add a note to the timeline")
        if st.form_submit_button("Add note"):
            try:
                incidents.add_note(ctx.engine, ctx.actor, inc["id"], note)
                st.rerun()
            except (PermissionDenied, UserError) as exc:
                ui.say("error", exc)

if ctx.actor.can("update_incident"):
    with st.form(f"link-{inc['id']}", clear_on_submit=True):
        c1, c2 = st.columns([1, 3])
        kind = c1.selectbox("Link to", ["criterion", "finding", "alert"])
        ref = c2.text_input("Reference (criterion id, check|account|region|resource, or alert id)")
        if st.form_submit_button("Add link"):
            try:
                incidents.add_link(ctx.engine, ctx.actor, inc["id"], seen_version, kind, ref)
                st.session_state.pop(seen_key, None)
                st.rerun()
            except incidents.Conflict as exc:
                st.session_state["incident_conflict"] = str(exc)
                st.session_state[seen_key] = exc.current["version"]
                st.rerun()
            except (PermissionDenied, UserError) as exc:
                ui.say("error", exc)


def runbooks_panel(inc: dict) -> None:
    """The registered containment runbooks (plugins.runbooks()): a dry run lists the exact AWS calls,
    then "Confirm and run" makes them and records the outcome on the incident's timeline."""
    books = plugins.runbooks()
    with st.expander("Containment runbooks"):
        st.caption("A dry run lists the exact AWS calls; nothing changes until you confirm. The result goes on "
                   "this incident's timeline. Uses the AWS credentials of the control room's process.")
        name = st.selectbox("Runbook", sorted(books), format_func=lambda n: f"{n} — {books[n].title}")
        book = books[name]
        columns = st.columns(max(1, len(book.parameters)))
        params = {p.name: column.text_input(p.label, key=f"rb-{name}-{p.name}",
                                            help=None if p.required else "Optional.")
                  for column, p in zip(columns, book.parameters)}
        plan_key = f"runbook-plan-{inc['id']}"
        if st.button("Dry run"):
            try:
                st.session_state[plan_key] = runbooks.dry_run(ctx.engine, inc["id"], name, params)
            except UserError as exc:  # AWS errors and failed preconditions, in one line
                ui.say("error", exc)
        staged = st.session_state.get(plan_key)
        if staged:
            plan, clients = staged
            st.text(f"{plan.runbook} on {plan.target} will call:")
            st.code("\n".join(plan.lines()))
            if st.button("Confirm and run", type="primary"):
                try:
                    runbooks.execute(ctx.engine, ctx.actor, inc["id"], plan, clients, confirm=True)
                    st.session_state.pop(plan_key, None)
                    st.success(f"{plan.runbook} done; recorded on the timeline.")
                except (PermissionDenied, UserError) as exc:
                    st.session_state.pop(plan_key, None)
                    ui.say("error", exc)


if ctx.actor.can("run_runbook") and inc["status"] in incidents.ACTIVE:
    runbooks_panel(inc)

st.subheader("Timeline")
for entry in reversed(incidents.timeline(ctx.engine, inc["id"])):
    head = f"{ui.when(entry['at'])} · {entry['actor']} ({entry['role']}) · {entry['action']}"
    st.text(head)
    if entry["note"]:
        st.text("    " + entry["note"])
    if entry["action"] in ("update", "link") and (entry["before"] or entry["after"]):
        st.json({"before": entry["before"], "after": entry["after"]}, expanded=False)
