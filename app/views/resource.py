"""Resource timeline (CC8.1, the change behind a finding): every stored state of one resource, each
change between two runs with the fields it changed beside the CloudTrail write events in that interval
(who, when, from where, which call, session name, ticket), or the gap where no CloudTrail log covers it;
and the difference between any two states. Opened with `?arn=…` (app/links.py resource_link)."""
import datetime as dt

import pandas as pd
import streamlit as st
import ui

from auditbook.errors import UserError
from auditbook.evaluate.tickets import TICKET_ENV, ticket_pattern
from auditbook.history.record_diff import shown_value
from auditbook.history.resource_timeline import diff_states, resource_types, timeline

PAGE_SIZE = 20  # changes shown at a time, newest first
MAX_ARN = 2048  # characters of the resource named in the address (store.changes.MAX_RESOURCE: 1024)
KIND = {"created": "created", "first_seen": "first seen", "modified": "changed", "deleted": "no longer seen"}

ctx = ui.require("view_evidence")
st.title("Resource timeline")


@st.cache_data(max_entries=64, ttl=60, show_spinner=False)
def read_timeline(_engine, db: str, arn: str, rtype, since, until, pattern: str, run_id, page: int):
    """One page of timeline(), cached per store, resource, window, latest run and page (a new run or
    new CloudTrail reads show within a minute)."""
    return timeline(_engine, arn, rtype, since, until, ticket_pattern(pattern), page=page, page_size=PAGE_SIZE)


@st.cache_data(max_entries=64, ttl=600, show_spinner=False)
def compare_states(db: str, old_sha256: str, new_sha256: str, _old, _new) -> list[dict]:
    """diff_states of two stored records, cached per store and the two records' SHA-256 (a stored
    record never changes under its hash)."""
    return diff_states(_old, _new)


def pick_resource() -> None:
    """No ARN in the URL: search the latest run's resources by name, id or ARN."""
    from links import resource_link

    from auditbook.history.posture import resources
    latest = ui.latest_run(ctx.db)
    text = st.text_input("Find a resource (name, id or ARN contains)")
    if not text or latest is None:
        st.caption("Or open the timeline from a finding, an alert or the evidence explorer.")
        st.stop()
    rows, total = resources(ctx.engine, latest["id"], text=text)
    st.caption(f"{total} resources in run {latest['id']}" + (f" (first {len(rows)} shown)" if total > len(rows) else ""))
    if rows:
        frame = pd.DataFrame([{"timeline": resource_link(r["resource"], r["resource_type"]), "name": r["name"],
                               "type": r["resource_type"], "account": ui.account_label(r["account"], ui.account_names(ctx.db)), "region": r["region"],
                               "resource": r["resource"]} for r in rows])
        st.dataframe(frame, hide_index=True, width="stretch",
                     column_config={"timeline": st.column_config.LinkColumn("timeline", display_text="open")})
    st.stop()


def when(value) -> str:
    return ui.when(value) if value else "—"


def events_frame(events: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"when": when(e["at"]), "who": e["principal"], "API call": e["event_name"],
                          "source IP": e["source_ip"], "session": e["session_name"], "ticket": e["ticket"] or "",
                          "result": f"failed: {e['error_code']}" if e["error_code"] else "succeeded",
                          "request (redacted)": shown_value(e["request"]) if e["request"] else "",
                          "user agent": e["user_agent"], "account": ui.account_label(e["account"], ui.account_names(ctx.db)), "region": e["region"],
                          "SIMULATED": "SIMULATED" if e["simulated"] else ""} for e in events])


def diff_frame(changes: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"field": c["path"], "change": c["change"],
                          "old": "" if c["change"] == "added" else shown_value(c["old"]),
                          "new": "" if c["change"] == "removed" else shown_value(c["new"])} for c in changes])


def show_events(events: list[dict]) -> None:
    for e in events:  # one sentence each, as plain text
        ticket = f", ticket {e['ticket']} ({e['ticket_from']})" if e["ticket"] else ", no ticket reference"
        failed = f" — FAILED ({e['error_code']})" if e["error_code"] else ""
        st.text(f"{e['event_name']} by {e['principal']} at {when(e['at'])} from {e['source_ip'] or '?'}"
                f"{ticket}{failed}" + (" [SIMULATED]" if e["simulated"] else ""))
    st.dataframe(events_frame(events), hide_index=True, width="stretch")


def show_coverage(cover) -> None:
    if cover is None:
        st.caption("No earlier run read this scope: the store's history of the resource starts here.")
        return
    for gap in cover["gaps"]:
        ui.say("warning", f"Evidence gap: no CloudTrail log read covers account "
                          f"{ui.account_label(cover['account'], ui.account_names(ctx.db))} in "
                          f"{cover['region']} from {when(gap['from'])} to {when(gap['to'])} — who made a change "
                          "in that time cannot be shown.")
    if cover["unread_records"]:
        ui.say("warning", f"{cover['unread_records']} records of the CloudTrail logs of this interval could "
                          "not be read (evidence gaps of the watch).")


def show_change(change: dict) -> None:
    kind = KIND.get(change["kind"], change["kind"])
    span = (f"between {when(change['from'])} (run {change['from_run']}) and {when(change['to'])} "
            f"(run {change['to_run']})" if change["from"] else f"in run {change['to_run']} ({when(change['to'])})")
    st.markdown(f"**{ui.md(kind.capitalize())}** {ui.md(span)}")
    left, right = st.columns(2)
    with left:
        st.caption("What changed")
        if change["diff"]:
            st.dataframe(diff_frame(change["diff"]), hide_index=True, width="stretch")
        elif change["kind"] == "first_seen":
            st.caption("The record as first seen is in the states below.")
        else:
            st.caption("No field changed.")
    with right:
        st.caption("CloudTrail write events on the resource in this interval")
        if change["events"]:
            show_events(change["events"])
        elif change["from"] and change["coverage"] and change["coverage"]["covered"]:
            st.caption("None: the CloudTrail logs read cover the whole interval and name no write on it.")
        show_coverage(change["coverage"])


arn = st.query_params.get("arn", "")
with st.form("resource"):
    typed = st.text_input("Resource ARN", value=arn, max_chars=2048)
    c1, c2 = st.columns(2)
    since = c1.date_input("From (optional)", value=None)
    until = c2.date_input("To (optional)", value=None)
    if st.form_submit_button("Show"):
        st.query_params["arn"] = typed.strip()
        st.query_params.pop("type", None)
        arn = typed.strip()
if not arn:
    pick_resource()
if len(arn) > MAX_ARN:
    ui.say("error", f"The address names a resource of {len(arn):,} characters: an ARN has at most {MAX_ARN}.")
    st.stop()
types = resource_types(ctx.engine, arn)
if not types:
    ui.say("info", f"The store holds no state of {arn}.")
    st.stop()
rtype = st.query_params.get("type") if st.query_params.get("type") in types else types[0]
if len(types) > 1:
    rtype = st.selectbox("Resource type (this ARN names several of the account's singletons)", types,
                         index=types.index(rtype))
start = dt.datetime.combine(since, dt.time(0), dt.timezone.utc) if since else None
end = dt.datetime.combine(until, dt.time(23, 59, 59), dt.timezone.utc) if until else None
latest = ui.latest_run(ctx.db)
page = max(1, int(st.session_state.get("ab_resource_page", 1)))
try:
    found = read_timeline(ctx.engine, ctx.db, arn, rtype, start, end, ticket_pattern().pattern,
                          latest["id"] if latest else None, page)
except UserError as exc:
    ui.say("error", exc)
    st.stop()

st.text(f"{found['name'] or arn}")
st.caption(f"{ui.md(found['resource_type'])} · account {ui.md(ui.account_label(found['account'], ui.account_names(ctx.db)))} · {ui.md(found['region'])} · "
           f"{len(found['states'])} of {found['states_total']} stored states · ticket pattern "
           f"{ui.md(found['ticket_pattern'])} ({ui.md(TICKET_ENV)})" + (" · SIMULATED (demo)" if found["simulated"] else ""))
st.subheader(f"Changes ({found['changes_total']})")
if page > found["pages"]:  # another resource or window than the page was chosen for
    st.session_state["ab_resource_page"] = 1
    st.rerun()
if found["pages"] > 1:
    st.number_input(f"Page of {PAGE_SIZE} (newest first)", min_value=1, max_value=found["pages"], key="ab_resource_page")
for change in reversed(found["changes"]):
    with st.container(border=True):
        show_change(change)
if found["other_events"]:
    st.subheader("Other write events (no change of the record seen across them)")
    show_events(found["other_events"])
if found["events_total"] > found["events_shown"]:
    st.caption(f"The newest {found['events_shown']} of {found['events_total']} write events are shown: "
               "narrow the dates to see older ones.")

st.subheader("States")
states = found["states"]
st.dataframe(pd.DataFrame([{"state": s["index"], "first seen in run": str(s["first_run"]),
                            "last seen in run": str(s["last_run"]), "replaced or gone in run": str(s["closed_run"] or ""),
                            "record SHA-256": s["record_sha256"]}
                           for s in states]), hide_index=True, width="stretch")
if len(states) > 1:
    st.subheader("Compare two states")
    a, b = st.columns(2)
    first = a.selectbox("From state", [s["index"] for s in states], index=len(states) - 2)
    second = b.selectbox("To state", [s["index"] for s in states], index=len(states) - 1)
    compared = compare_states(ctx.db, states[first]["record_sha256"], states[second]["record_sha256"],
                              states[first]["record"], states[second]["record"])
    if compared:
        st.dataframe(diff_frame(compared), hide_index=True, width="stretch")
    else:
        st.caption("The two states' records are the same.")
pick = st.selectbox("Record of state", [s["index"] for s in states], index=len(states) - 1)
st.json(states[pick]["record"] or {})
