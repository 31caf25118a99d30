"""Incidents: create, work through open → investigating → contained → resolved → closed, SLA
targets and breaches, the post-mortem (category, impact, notifications, root cause, lessons learned,
action items, attachments — downloads, never rendered), the timeline (every change and note, from
the audit trail), links. Closing a high or critical incident needs its root cause and lessons
learned: the core refuses, and the page says why."""
import datetime as dt

import pandas as pd
import streamlit as st
import ui

from auditbook import plugins
from auditbook.auth import PermissionDenied
from auditbook.errors import UserError
from auditbook.monitor import incident_attachments, incidents, postmortem, runbooks

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


def to_close(inc: dict) -> str:
    """What a high or critical incident's post-mortem still lacks before it may be closed."""
    missing = postmortem.missing_to_close(inc) if inc["severity"] in postmortem.NEEDS_POSTMORTEM else []
    return "needs " + " and ".join(missing) if missing else ""


if rows:
    st.dataframe(pd.DataFrame([{"id": i["id"], "severity": i["severity"], "status": i["status"], "title": i["title"],
                                "assignee": i["assignee"] or "", "opened": ui.when(i["created_at"]),
                                "SLA": sla_text(i), "post-mortem": to_close(i)} for i in rows]),
                 hide_index=True, width="stretch")
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

everything = rows if show == "all" else incidents.list_incidents(ctx.engine)
if not everything:
    st.stop()
ids = [i["id"] for i in everything]
default = st.session_state.get("incident", ids[0])
chosen = st.selectbox("Incident", ids, index=ids.index(default) if default in ids else 0,
                      format_func=lambda i: next(f"#{x['id']} [{x['status']}] {x['title'][:80]}" for x in everything if x["id"] == i))
st.session_state["incident"] = chosen
inc = incidents.detail(ctx.engine, chosen)
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


def save_versioned(save) -> None:
    """A save checked against the version this user saw: on a conflict nothing is saved, and the
    page shows why with the incident as it is now."""
    try:
        save()
        st.session_state.pop(seen_key, None)
        st.rerun()
    except incidents.Conflict as exc:
        st.session_state["incident_conflict"] = str(exc)
        st.session_state[seen_key] = exc.current["version"]
        st.rerun()
    except (PermissionDenied, UserError) as exc:
        ui.say("error", exc)


if ctx.actor.can("update_incident"):
    with st.form(f"update-{inc['id']}"):
        next_states = list(incidents.TRANSITIONS[inc["status"]])
        status = st.selectbox("Move to", ["(unchanged)"] + next_states)
        if "closed" in next_states and to_close(inc):
            st.caption(f"Closing this {inc['severity']} incident {to_close(inc)} (the post-mortem below).")
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
            save_versioned(lambda: incidents.add_link(ctx.engine, ctx.actor, inc["id"], seen_version, kind, ref))

NOTICE_CHOICES = {"undecided": None, "yes": True, "no": False}


def notice_text(required, on) -> str:
    state = {True: "required", False: "not required", None: "undecided"}[required]
    return f"{state}, done {on}" if on else (f"{state}, NOT DONE" if required else state)


def postmortem_read(inc: dict) -> None:
    """The post-mortem as every role that sees incidents reads it (people's text shown as text)."""
    st.dataframe(pd.DataFrame([
        {"": "category", "value": inc["category"] or "—"},
        {"": "customers affected", "value": "not assessed" if inc["customers_affected"] is None
         else str(inc["customers_affected"])},
        {"": "customer notification", "value": notice_text(inc["customer_notice_required"], inc["customers_notified_on"])},
        {"": "regulator notification", "value": notice_text(inc["regulator_notice_required"], inc["regulator_notified_on"])},
    ]), hide_index=True)
    for field in ("impact_systems", "impact_data", "root_cause", "lessons_learned"):
        st.caption(postmortem.LABELS[field].capitalize())
        st.text(inc[field] or "—")


def postmortem_form(inc: dict) -> None:
    """The post-mortem's fields, saved in one versioned change (analyst, admin)."""
    today = dt.datetime.now(dt.timezone.utc).date()
    with st.form(f"postmortem-{inc['id']}"):
        c1, c2 = st.columns(2)
        choices = ["", *postmortem.CATEGORIES]
        category = c1.selectbox("Category", choices, index=choices.index(inc["category"] or ""))
        customers = c2.text_input("Customers affected", value="" if inc["customers_affected"] is None
                                  else str(inc["customers_affected"]), help="A number; empty: not assessed.")
        systems = c1.text_area("Systems affected", value=inc["impact_systems"] or "")
        data = c2.text_area("Data affected", value=inc["impact_data"] or "")
        notices = {}
        for column, who, required, on in ((c1, "Customer", "customer_notice_required", "customers_notified_on"),
                                          (c2, "Regulator", "regulator_notice_required", "regulator_notified_on")):
            picked = column.selectbox(f"{who} notification required", list(NOTICE_CHOICES),
                                      index=list(NOTICE_CHOICES.values()).index(inc[required]))
            notices[required] = NOTICE_CHOICES[picked]
            notices[on] = column.date_input(f"{who} notified on", value=inc[on], max_value=today)
        root_cause = st.text_area("Root cause", value=inc["root_cause"] or "", max_chars=postmortem.MAX_TEXT)
        lessons = st.text_area("Lessons learned", value=inc["lessons_learned"] or "", max_chars=postmortem.MAX_TEXT)
        if st.form_submit_button("Save post-mortem"):
            save_versioned(lambda: incidents.update(
                ctx.engine, ctx.actor, inc["id"], seen_version, category=category, customers_affected=customers,
                impact_systems=systems, impact_data=data, root_cause=root_cause, lessons_learned=lessons, **notices))


def actions_panel(inc: dict) -> None:
    """Action items: owner, due date, done; add one, mark done or reopen (analyst, admin)."""
    st.markdown("**Action items**")
    items = inc["actions"]
    late = {a["id"] for a in postmortem.overdue(items)}
    if items:
        st.dataframe(pd.DataFrame([{"id": a["id"], "owner": a["owner"], "due": str(a["due_on"]),
                                    "done": f"{ui.when(a['done_at'])} by {a['done_by']}" if a["done_at"]
                                    else ("OVERDUE" if a["id"] in late else "open"), "what": a["text"]}
                                   for a in items]), hide_index=True, width="stretch")
    else:
        st.caption("No action items yet.")
    if not ctx.actor.can("update_incident"):
        return
    seen_items = st.session_state.get(f"actions-seen-{inc['id']}", {a["id"]: a["version"] for a in items})
    label = {a["id"]: f"#{a['id']} {a['text'][:80]}" for a in items}
    if items:
        with st.form(f"actions-done-{inc['id']}"):
            c1, c2 = st.columns(2)
            finish = c1.multiselect("Mark done", [a["id"] for a in items if a["done_at"] is None], format_func=label.get)
            reopen = c2.multiselect("Reopen", [a["id"] for a in items if a["done_at"] is not None], format_func=label.get)
            if st.form_submit_button("Save action items"):
                try:
                    for action_id, done in [(i, True) for i in finish] + [(i, False) for i in reopen]:
                        postmortem.set_action_done(ctx.engine, ctx.actor, action_id, seen_items.get(action_id, 0), done)
                    st.session_state.pop(f"actions-seen-{inc['id']}", None)
                    st.rerun()
                except (postmortem.ActionConflict, PermissionDenied, UserError) as exc:
                    st.session_state.pop(f"actions-seen-{inc['id']}", None)
                    ui.say("error", exc)
    st.session_state[f"actions-seen-{inc['id']}"] = {a["id"]: a["version"] for a in items}
    with st.form(f"action-add-{inc['id']}", clear_on_submit=True):
        c1, c2 = st.columns(2)
        owner = c1.text_input("Action owner")
        due = c2.date_input("Due", value=dt.date.today() + dt.timedelta(days=14))
        what = st.text_input("What is to be done")
        if st.form_submit_button("Add action item"):
            try:
                postmortem.add_action(ctx.engine, ctx.actor, inc["id"], owner=owner, due=due, text=what)
                st.rerun()
            except (PermissionDenied, UserError) as exc:
                ui.say("error", exc)


def attachments_panel(inc: dict) -> None:
    """Files: listed with SHA-256, offered as downloads (application/octet-stream — the browser saves
    them, never shows them in the page), checked against their SHA-256 when read; attach one (analyst,
    admin)."""
    st.markdown("**Attachments**")
    files = {f["id"]: f for f in inc["attachments"]}
    if files:
        st.dataframe(pd.DataFrame([{"id": f["id"], "file": f["filename"], "bytes": f["size"], "sha256": f["sha256"],
                                    "added": f"{ui.when(f['uploaded_at'])} by {f['uploaded_by']}"}
                                   for f in files.values()]), hide_index=True, width="stretch")
        c1, c2 = st.columns([3, 1])
        pick = c1.selectbox("Attachment", list(files), format_func=lambda i: f"#{i} {files[i]['filename']}")
        c2.download_button("Download", data=lambda: incident_attachments.attachment_content(ctx.engine, pick)[1],
                           file_name=files[pick]["filename"], mime=incident_attachments.DOWNLOAD_MIME,
                           on_click="ignore", key=f"download-{pick}")
    else:
        st.caption("No attachments yet.")
    if ctx.actor.can("update_incident"):
        with st.form(f"attach-{inc['id']}", clear_on_submit=True):
            # the server's upload limit applies here (web/server.py); the CLI takes files up to MAX_BYTES
            upload = st.file_uploader("Attach a file", help="Larger files (up to "
                                      f"{incident_attachments.MAX_BYTES // 2**20} MiB): `auditbook incidents "
                                      "update ID --attach FILE`.")
            if st.form_submit_button("Attach"):
                try:
                    if upload is None:
                        raise UserError("attachment: choose a file first")
                    incident_attachments.attach(ctx.engine, ctx.actor, inc["id"], upload.name, upload.getvalue())
                    st.rerun()
                except (PermissionDenied, UserError) as exc:
                    ui.say("error", exc)


st.subheader("Post-mortem")
if to_close(inc) and inc["status"] != "closed":
    ui.say("warning", f"Closing this {inc['severity']} incident {to_close(inc)}.")
if postmortem.notices_outstanding(inc):
    ui.say("warning", "Notification required and not recorded as done: "
                      f"{', '.join(postmortem.notices_outstanding(inc))}.")
if ctx.actor.can("update_incident"):
    postmortem_form(inc)
else:
    postmortem_read(inc)
actions_panel(inc)
attachments_panel(inc)


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
    if entry["action"] in ("update", "link", "add action", "action done", "action reopened", "attach") \
            and (entry["before"] or entry["after"]):
        st.json({"before": entry["before"], "after": entry["after"]}, expanded=False)
