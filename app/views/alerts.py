"""Alerts (CC7.3): filters kept in the URL (state, severity, rule, account, region, time range,
assignee, triage, suppressed), sorted by severity then age, counted and paged in SQL; triage for one
alert or a selection (assignee, note, a decision with its reason — a true positive opens a linked
incident — acknowledge, resolve, suppress); an alert's detail (the CloudTrail records behind it, the
resources and findings it concerns, its history); the suppressions in force; the triage targets."""
import datetime as dt

import links
import pandas as pd
import streamlit as st
import ui

from auditbook.auth import PermissionDenied
from auditbook.errors import UserError
from auditbook.monitor import alert_views, alerts, settings, suppressions, triage

ctx = ui.require("view_alerts")
DEFAULT_STATES = ["firing", "acknowledged"]
MULTI = {"state": "State", "severity": "Severity", "rule": "Rule", "account": "Account", "region": "Region"}
ANYONE, UNASSIGNED, ANY = "(anyone)", "(unassigned)", "(any)"
ACTIONS = ("Assign", "Acknowledge", "Triage", "Resolve", "Suppress")


@st.cache_data(ttl=10, max_entries=64, show_spinner=False)
def read_page(db: str, key: tuple, number: int, size: int, _engine=None) -> dict:
    query, order = alert_views.parse_filters(dict(key), _engine)
    return alert_views.page(_engine, query, order, number, size)


@st.cache_data(ttl=30, max_entries=4, show_spinner=False)
def read_facets(db: str, _engine=None) -> dict:
    return alert_views.facets(_engine)


def url_filters() -> dict:
    """The filters in the URL as {name: [values]}; the default states when the URL names none."""
    found = {name: st.query_params.get_all(name) for name in st.query_params if name not in ("alert", "page")}
    if "state" not in found:
        found["state"] = list(DEFAULT_STATES)
    return found


def load_widgets(found: dict, facets: dict) -> None:
    """Put the URL's filters into the widgets' state — once, and again whenever the URL changes
    under the page (a shared link)."""
    if st.session_state.get("al_url") == found:
        return
    for name in MULTI:
        st.session_state[f"al_{name}"] = [v for v in found.get(name, []) if v]
    assignee = (found.get("assignee") or [""])[0]
    st.session_state["al_assignee"] = UNASSIGNED if assignee == "-" else (assignee or ANYONE)
    st.session_state["al_triage"] = (found.get("triage") or [ANY])[0]
    st.session_state["al_suppressed"] = (found.get("suppressed") or ["any"])[0]
    st.session_state["al_sort"] = (found.get("sort") or [alert_views.DEFAULT_ORDER])[0]
    for name in ("since", "until"):
        try:
            st.session_state[f"al_{name}"] = dt.date.fromisoformat(found[name][0]) if found.get(name) else None
        except ValueError:
            ui.say("warning", f"{name}: {found[name][0]!r} is not a date (YYYY-MM-DD); left out")
            st.session_state[f"al_{name}"] = None
    st.session_state["al_url"] = found


def options(values: list, chosen) -> list:
    """A widget's options: what the store holds, plus what the URL asked for (kept visible)."""
    chosen = chosen if isinstance(chosen, list) else [chosen]
    return list(dict.fromkeys([*values, *[c for c in chosen if c is not None]]))


def filter_widgets(facets: dict) -> dict:
    """The filter widgets; their values as URL parameters."""
    cols = st.columns(5)
    names = ui.account_names(ctx.db)
    known = {"state": list(alerts.STATES), "severity": facets["severities"], "rule": facets["rules"],
             "account": facets["accounts"], "region": facets["regions"]}
    params = {}
    for col, (name, label) in zip(cols, MULTI.items()):
        shown = {"format_func": lambda a: ui.account_label(a, names)} if name == "account" else {}
        picked = col.multiselect(label, options(known[name], st.session_state.get(f"al_{name}", [])), key=f"al_{name}",
                                 **shown)
        params[name] = picked or ([""] if name == "state" else [])
    cols = st.columns(6)
    assignee = cols[0].selectbox("Assignee", options([ANYONE, UNASSIGNED, *facets["assignees"]],
                                                     st.session_state.get("al_assignee")), key="al_assignee")
    choice = cols[1].selectbox("Triage", options([ANY, *alert_views.TRIAGE_FILTERS], st.session_state.get("al_triage")),
                               key="al_triage")
    hidden = cols[2].selectbox("Suppressed", options(list(alert_views.SUPPRESSED_FILTERS),
                                                     st.session_state.get("al_suppressed")), key="al_suppressed")
    since = cols[3].date_input("Seen from", key="al_since", format="YYYY-MM-DD")
    until = cols[4].date_input("First seen up to", key="al_until", format="YYYY-MM-DD")
    order = cols[5].selectbox("Sort", options(list(alert_views.ORDERS), st.session_state.get("al_sort")), key="al_sort")
    params.update(assignee=[] if assignee == ANYONE else ["-" if assignee == UNASSIGNED else assignee],
                  triage=[] if choice == ANY else [choice], suppressed=[] if hidden == "any" else [hidden],
                  since=[since.isoformat()] if since else [], until=[until.isoformat()] if until else [],
                  sort=[] if order == alert_views.DEFAULT_ORDER else [order])
    return {k: v for k, v in params.items() if v}


def triage_cell(a: dict, limits: dict, now: dt.datetime) -> str:
    if a["triage_decision"]:
        return a["triage_decision"]
    if a["suppressed_until"]:
        return f"suppressed until {ui.when(a['suppressed_until'])}"
    t = triage.time_to_triage(a, limits, now)
    if a["state"] not in alerts.OPEN_STATES:
        return "not triaged"
    return f"OVERDUE since {ui.when(t['due'])}" if t["breached"] else f"due {ui.when(t['due'])}"


def labels_text(labels: dict, names: dict) -> str:
    """An alert's labels as text, its account with the account's name."""
    return ", ".join(f"{k}={ui.account_label(v, names) if k == 'account' else v}" for k, v in labels.items())


def table(rows: list[dict], limits: dict) -> pd.DataFrame:
    now = dt.datetime.now(dt.timezone.utc)
    names = ui.account_names(ctx.db)
    return pd.DataFrame([{"id": a["id"], "severity": a["severity"], "state": a["state"], "rule": a["rule"],
                          "summary": a["summary"], "labels": labels_text(a["labels"], names),
                          "first seen": ui.when(a["first_seen"]), "age": ui.ago(a["first_seen"], now),
                          "count": a["count"], "assignee": a["assignee"] or "",
                          "triage": triage_cell(a, limits, now),
                          "incident": str(a["incident_id"]) if a["incident_id"] else ""} for a in rows])


def done(message: str) -> None:
    read_page.clear()
    read_facets.clear()
    st.session_state["al_done"] = message
    st.rerun()


def act(call, message: str) -> None:
    """Run one core call; on success report and refresh, else say why (nothing was saved). A call
    that returns False changed nothing: said so, never "saved"."""
    try:
        if call() is False:
            ui.say("info", "Nothing changed: the alerts already are as asked.")
            return
    except alerts.StaleAlert as exc:
        read_page.clear()  # the next view reads the alerts as they are now
        ui.say("warning", exc)
        return
    except (PermissionDenied, UserError) as exc:
        ui.say("error", exc)
        return
    done(message)


def apply_triage(versions: dict, change: triage.Change):
    """triage.apply against the versions the analyst saw; False when it changed nothing."""
    after = triage.apply(ctx.engine, ctx.actor, versions, change)
    return any(a["version"] != versions[a["id"]] for a in after) or bool((change.note or "").strip())


def bulk_form(rows: list[dict], selected: list, seen: dict) -> None:
    """One action for every selected alert (all saved, or none), checked against the versions shown
    (`seen`: {id: version} of the rows on the page the analyst acted on)."""
    chosen = [a for a in rows if a["id"] in selected]
    with st.form("bulk"):
        action = st.radio("Action", ACTIONS, horizontal=True)
        c1, c2, c3 = st.columns(3)
        assignee = c1.text_input("Assignee (empty: unassign)", max_chars=200)
        decision = c2.selectbox("Decision", triage.DECISIONS)
        until = c3.date_input("Suppress until", value=dt.date.today() + dt.timedelta(days=7),
                              min_value=dt.date.today() + dt.timedelta(days=1),
                              max_value=dt.date.today() + dt.timedelta(days=suppressions.MAX_DAYS))
        reason = st.text_area("Reason (a decision or a suppression needs one)", max_chars=2000)
        if not st.form_submit_button(f"Apply to {len(chosen)} selected"):
            return
    versions = {a["id"]: seen.get(a["id"], a["version"]) for a in chosen}
    change = {"Assign": triage.Change(assignee=assignee), "Acknowledge": triage.Change(acknowledge=True),
              "Triage": triage.Change(decision=decision, reason=reason), "Resolve": triage.Change(resolve=True)}
    if action == "Suppress":
        until_at = dt.datetime.combine(until, dt.time(), dt.timezone.utc)
        act(lambda: suppressions.suppress_selection(ctx.engine, ctx.actor, chosen, until_at, reason),
            f"{len(chosen)} alerts suppressed until {until}.")
    else:
        act(lambda: apply_triage(versions, change[action]), f"{action}: {len(chosen)} alerts saved.")


def list_section(key: tuple, limits: dict) -> list[dict]:
    """The page of alerts, with paging and the selection; returns its rows."""
    c1, c2 = st.columns([1, 5])
    size = c1.selectbox("Per page", alert_views.PAGE_SIZES, index=1, key="al_size")
    if st.session_state.get("al_key") != key:
        st.session_state["al_key"], st.session_state["al_page"] = key, 1
    number = int(st.session_state.get("al_page", 1))
    found = read_page(ctx.db, key, number, size, _engine=ctx.engine)
    counts = ", ".join(f"{n:,} {s}" for s, n in sorted(found["by_state"].items()))
    first = (found["number"] - 1) * size + 1 if found["total"] else 0
    c2.caption(ui.md(f"{first:,}–{first + len(found['rows']) - 1:,} of {found['total']:,} alerts "
                     f"(page {found['number']} of {found['pages']}; by state, any state: {counts or 'none'})"))
    if found["pages"] > 1:
        st.session_state["al_page"] = found["number"]
        c1.number_input("Page", min_value=1, max_value=found["pages"], key="al_page")
    if not found["rows"]:
        st.info("No alerts through these filters.")
        return []
    st.dataframe(table(found["rows"], limits), hide_index=True, width="stretch")
    return found["rows"]


def picker(rows: list[dict]):
    """The alert whose detail is shown: the URL's (?alert=ID), else the first on the page."""
    wanted = st.query_params.get("alert", "")
    wanted_id = int(wanted) if wanted.isascii() and wanted.isdecimal() and len(wanted) <= 18 else None
    choices = options([a["id"] for a in rows], wanted_id)
    if not choices:
        return None
    if st.session_state.get("al_open") not in choices:
        st.session_state["al_open"] = wanted_id if wanted_id in choices else choices[0]
    names = {a["id"]: f"#{a['id']} {a['severity']} · {a['rule']} · {a['summary'][:80]}" for a in rows}
    return st.selectbox("Alert", choices, key="al_open", format_func=lambda i: names.get(i, f"#{i}"))


def sync_url(params: dict, chosen) -> None:
    """The URL carries the filters and the open alert, so the view can be shared."""
    wanted = {**params, **({"alert": [str(chosen)]} if chosen is not None else {})}
    if {k: st.query_params.get_all(k) for k in st.query_params} != wanted:
        st.query_params.from_dict(wanted)
    st.session_state["al_url"] = {k: v for k, v in wanted.items() if k != "alert"}


def facts(a: dict, t: dict) -> str:
    out = [f"state {a['state']}", f"severity {a['severity']}", f"SOC 2 {a['soc2_control']}",
           f"first seen {ui.when(a['first_seen'])}", f"last seen {ui.when(a['last_seen'])}", f"{a['count']} times",
           f"assigned to {a['assignee'] or 'nobody'}", f"triage due {ui.when(t['due'])}"]
    if a["triage_decision"]:
        minutes = int(t["elapsed"].total_seconds() // 60) if t["elapsed"] is not None else None
        out.append(f"{a['triage_decision']} by {a['triaged_by']} at {ui.when(a['triaged_at'])} "
                   f"(time to triage {minutes if minutes is not None else '—'} min, "
                   f"{'late' if t['breached'] else 'on time'})")
    if a["acknowledged_by"]:
        out.append(f"acknowledged by {a['acknowledged_by']}")
    if a["incident_id"]:
        out.append(f"incident {a['incident_id']}")
    return " · ".join(out)


def show_detail(alert_id: int):
    """The alert, what stands behind it and its history; the alert (None: not found)."""
    try:
        d = alert_views.detail(ctx.engine, alert_id)
    except UserError as exc:
        ui.say("warning", exc)
        return None
    a, t = d["alert"], d["triage"]
    st.subheader(f"Alert {a['id']}")
    st.text(f"{a['rule']}: {a['summary']}")
    st.caption(ui.md(facts(a, t)))
    if a["triage_reason"]:
        st.text(f"Reason: {a['triage_reason']}")
    if a["suppressed_until"] and d["suppression"]:
        ui.say("info", f"Suppressed until {ui.when(a['suppressed_until'])} by {d['suppression']['created_by']}: "
                       f"{d['suppression']['reason']} (kept and shown; not notified, not escalated)")
    elif t["breached"] and not t["triaged"] and a["state"] in alerts.OPEN_STATES:
        ui.say("warning", f"Triage overdue: it was due {ui.when(t['due'])}.")
    records, resources, history = st.tabs(["CloudTrail records", "Resources and findings", "History"])
    with records:
        if d["records"]:
            st.dataframe(pd.DataFrame(d["records"]), hide_index=True, width="stretch")
        elif d["evidence"]:
            st.caption("The API responses behind this regression (SHA-256, as stored):")
            st.dataframe(pd.DataFrame([{"sha256": e["sha256"]} for e in d["evidence"]]), hide_index=True)
        else:
            st.info("No CloudTrail records stand behind this alert.")
    with resources:
        timeline = {"timeline": st.column_config.LinkColumn("Timeline", display_text="resource timeline")}
        st.dataframe(pd.DataFrame({"resource": d["resources"],
                                   "timeline": [links.resource_link(r) for r in d["resources"]]}),
                     hide_index=True, width="stretch", column_config=timeline)
        if d["findings"]:
            found = pd.DataFrame(d["findings"]).drop(columns=["controls"])
            found["timeline"] = [links.resource_link(f["resource"]) for f in d["findings"]]
            st.dataframe(found, hide_index=True, width="stretch", column_config=timeline)
        else:
            st.caption("No open findings on these resources.")
    with history:
        st.dataframe(pd.DataFrame([{**e, "at": ui.when(e["at"]), "before": str(e["before"] or ""),
                                    "after": str(e["after"] or "")} for e in d["history"]]
                                  or [{"at": "", "actor": "", "action": "no changes yet"}]),
                     hide_index=True, width="stretch")
    return a


def triage_form(a: dict, seen: int) -> None:
    with st.form(f"triage-{a['id']}"):
        c1, c2 = st.columns(2)
        current = ["(none)", *triage.DECISIONS].index(a["triage_decision"] or "(none)")
        decision = c1.selectbox("Decision", ["(none)", *triage.DECISIONS], index=current,
                                help="true-positive opens an incident linked to the alert")
        assignee = c2.text_input("Assignee", value=a["assignee"] or "", max_chars=200)
        reason = st.text_area("Reason (required with a decision)", value=a["triage_reason"] or "", max_chars=2000)
        note = st.text_area("Note (added to the history)", max_chars=triage.MAX_NOTE)
        resolve = st.checkbox("Resolve it too", disabled=a["state"] == "resolved")
        if not st.form_submit_button("Save triage"):
            return
    decided = None if decision == "(none)" else decision
    change = triage.Change(decision=decided, reason=reason if decided else None, note=note, resolve=resolve,
                           assignee=triage.UNCHANGED if assignee.strip() == (a["assignee"] or "") else assignee)
    act(lambda: apply_triage({a["id"]: seen}, change), f"Alert {a['id']} saved.")


def suppress_form(a: dict) -> None:
    with st.form(f"suppress-{a['id']}"):
        pairs = [f"{k}={v}" for k, v in a["labels"].items()]
        kept = st.multiselect(f"Suppress {a['rule']} for alerts carrying", pairs, default=pairs)
        until = st.date_input("Until (00:00 UTC)", value=dt.date.today() + dt.timedelta(days=7),
                              min_value=dt.date.today() + dt.timedelta(days=1),
                              max_value=dt.date.today() + dt.timedelta(days=suppressions.MAX_DAYS))
        reason = st.text_area("Reason", max_chars=2000, key=f"sup-reason-{a['id']}")
        if not st.form_submit_button("Suppress"):
            return
    labels = dict(p.split("=", 1) for p in kept)
    until_at = dt.datetime.combine(until, dt.time(), dt.timezone.utc)
    act(lambda: suppressions.suppress(ctx.engine, ctx.actor, rule=a["rule"], labels=labels, until=until_at,
                                      reason=reason), f"{a['rule']} suppressed until {until}.")


def single_actions(a: dict) -> None:
    """Saved against the version shown when the analyst acted (the previous render's), not the one
    this rerun reads: a change made meanwhile is never overwritten (StaleAlert)."""
    seen = st.session_state.get(f"al_seen_{a['id']}", a["version"])
    st.session_state[f"al_seen_{a['id']}"] = a["version"]
    if ctx.actor.can("acknowledge_alert") and a["state"] == "firing":
        if st.button("Acknowledge", key=f"ack-{a['id']}"):
            act(lambda: alerts.acknowledge(ctx.engine, ctx.actor, a["id"], seen), f"Alert {a['id']} acknowledged.")
    if ctx.actor.can("triage_alert"):
        triage_form(a, seen)
    if ctx.actor.can("suppress_alerts") and a["labels"] and a["state"] != "resolved":
        with st.expander("Suppress alerts like this one"):
            suppress_form(a)


def suppressions_section() -> None:
    found = suppressions.list_suppressions(ctx.engine)
    with st.expander(f"Suppressions in force ({len(found)})"):
        if not found:
            st.caption("None.")
            return
        st.dataframe(pd.DataFrame([{"id": s["id"], "rule": s["rule"],
                                    "labels": ", ".join(f"{k}={v}" for k, v in s["labels"].items()),
                                    "until": ui.when(s["until"]), "by": s["created_by"], "reason": s["reason"],
                                    "alerts": len(s["alerts"])} for s in found]), hide_index=True, width="stretch")
        if not ctx.actor.can("suppress_alerts"):
            return
        with st.form("lift"):
            chosen = st.selectbox("Suppression", [s["id"] for s in found], format_func=lambda i: f"#{i}")
            reason = st.text_input("Why it ends now", max_chars=2000)
            if st.form_submit_button("Lift"):
                s = next(s for s in found if s["id"] == chosen)
                act(lambda: suppressions.lift(ctx.engine, ctx.actor, s["id"], s["version"], reason),
                    f"Suppression {s['id']} lifted.")


def targets_section(limits: dict) -> None:
    if not ctx.actor.can("manage_settings"):
        return
    with st.expander("Triage targets (minutes from first sighting to a decision)"):
        with st.form("triage-targets"):
            cols = st.columns(len(limits))
            edited = {sev: int(col.number_input(sev, min_value=1, max_value=settings.MAX_TRIAGE_MINUTES,
                                                value=int(minutes), step=5))
                      for col, (sev, minutes) in zip(cols, limits.items())}
            if st.form_submit_button("Save triage targets"):
                act(lambda: settings.put(ctx.engine, ctx.actor, "triage", edited), "Triage targets saved.")


st.title("Alerts")
if "al_done" in st.session_state:
    ui.say("success", st.session_state.pop("al_done"))
facets = read_facets(ctx.db, _engine=ctx.engine)
load_widgets(url_filters(), facets)
params = filter_widgets(facets)
try:
    alert_views.parse_filters(params, ctx.engine)
except UserError as exc:
    ui.say("error", exc)
    st.stop()
limits = triage.targets(ctx.engine)
seen_rows = st.session_state.get("al_seen", {})  # {id: version} of the rows the previous render showed
rows = list_section(tuple(sorted((k, tuple(v)) for k, v in params.items())), limits)
st.session_state["al_seen"] = {a["id"]: a["version"] for a in rows}
chosen = picker(rows)
sync_url(params, chosen)
if rows and (ctx.actor.can("triage_alert") or ctx.actor.can("suppress_alerts")):
    with st.expander("Bulk actions"):
        page_ids = [a["id"] for a in rows]
        st.session_state["al_selected"] = [i for i in st.session_state.get("al_selected", []) if i in page_ids]
        selected = st.multiselect("Selected alerts (this page)", page_ids, key="al_selected",
                                  format_func=lambda i: f"#{i}")
        if selected:
            bulk_form(rows, selected, seen_rows)
if chosen is not None:
    shown_alert = show_detail(chosen)
    if shown_alert is not None:
        single_actions(shown_alert)
suppressions_section()
targets_section(limits)
