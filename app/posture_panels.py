"""Parts of the posture page (app/views/posture.py): the filters (kept in the page's address, so a
view can be shared), what changed since the previous run or a chosen date, and starting a scan."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Optional

import pandas as pd
import streamlit as st
import ui

from auditbook.auth import PermissionDenied
from auditbook.errors import UserError
from auditbook.history.posture_filters import Filters
from auditbook.monitor import scan_requests

CHANGE_KINDS = (("new", "New failures"), ("regressed", "Regressions"), ("fixed", "Fixed"))


@st.cache_data(max_entries=64, show_spinner=False)
def failing_page(db: str, catalog_path: Optional[str], run_id: int, criterion: str) -> tuple[list, int]:
    """The criterion's failing findings in the run, worst first: the first FAILING_SHOWN (500) and how
    many there are."""
    from auditbook.history import posture
    return posture.failing_page(ui._engine(db), ui._catalog(catalog_path), run_id, criterion,
                                limit=posture.FAILING_SHOWN)


def filters(ctx, run: dict) -> Filters:
    """The filter bar, started from the page's address and written back into it."""
    values = ui.filter_values(ctx.db, run["id"])
    names = ui.account_names(ctx.db)
    tags = [f"{k}={v}" for k, v, _n in values["tag"]]
    c1, c2, c3, c4, c5 = st.columns(5)
    account = c1.selectbox("Account", [""] + values["account"], key="f_account",
                           index=_index(ui.url_value("account", values["account"]), values["account"]),
                           format_func=lambda a: ui.account_label(a, names) if a else "all accounts")
    region = c2.selectbox("Region", [""] + values["region"], key="f_region",
                          index=_index(ui.url_value("region", values["region"]), values["region"]),
                          format_func=lambda r: r or "all regions")
    tag = c3.selectbox("Environment / owner tag", [""] + tags, key="f_tag",
                       index=_index(ui.url_value("tag", tags), tags), format_func=lambda t: t or "any tag",
                       help="Tags " + ", ".join(f"`{k}`" for k in ("environment", "env", "stage", "owner", "team"))
                            + " of the resources (any letter case)")
    severities = c4.multiselect("Severity", values["severity"], key="f_severity",
                                default=ui.url_values("severity", values["severity"]), placeholder="all severities")
    check = c5.selectbox("Check", [""] + values["check"], key="f_check",
                         index=_index(ui.url_value("check", values["check"]), values["check"]),
                         format_func=lambda c: c or "all checks")
    for name, value in (("account", account), ("region", region), ("tag", tag), ("severity", severities),
                        ("check", check)):
        ui.keep_in_url(name, value)
    key, _, value = tag.partition("=")
    return Filters(account or None, region or None, tuple(severities), check or None, (key, value) if tag else None)


def _index(value: Optional[str], options: list) -> int:
    return options.index(value) + 1 if value in options else 0


def _since_from_url(latest: dt.date) -> Optional[dt.date]:
    """?since=YYYY-MM-DD, a date no later than the latest run's (anything else is named and dropped)."""
    text = st.query_params.get("since")
    if not text:
        return None
    try:
        since = dt.date.fromisoformat(text)
    except ValueError:
        since, why = None, "which is not a date (YYYY-MM-DD)"
    else:
        why = f"after the latest run ({latest.isoformat()})"
    if since is not None and since <= latest:
        return since
    ui.say("warning", f"The address asks for changes since {text!r}, {why}: ignored.")
    del st.query_params["since"]
    return None


def changes(ctx, run: dict, flt: Filters) -> None:
    """New failures, regressions and fixes since the previous run, or since a chosen date."""
    st.subheader("What changed")
    since = _since_from_url(run["started_at"].date())
    mode = st.radio("Since", ["the previous run", "a date"], index=1 if since else 0, horizontal=True,
                    key="ch_mode")
    if mode == "a date":
        since = st.date_input("Date", value=since or run["started_at"].date() - dt.timedelta(days=7),
                              max_value=run["started_at"].date(), key="ch_since")
    else:
        since = None
    ui.keep_in_url("since", since.isoformat() if since else None)
    base = ui.baseline(ctx.db, run["id"], since)
    if base is None:
        st.info("No earlier run to compare with." if since is None else
                f"No run on or before {since.isoformat()} to compare with.")
        return
    st.caption(f"Run {base['id']} ({ui.when(base['started_at'])}"
               + (", SIMULATED" if base["simulated"] else "") + f") → run {run['id']} ({ui.when(run['started_at'])})"
               + (" · filtered" if flt.any() else ""))
    found = ui.changes(ctx.db, base["id"], run["id"], dataclasses.astuple(flt))
    names = ui.account_names(ctx.db)
    columns = st.columns(len(CHANGE_KINDS))
    for col, (kind, title) in zip(columns, CHANGE_KINDS):
        col.metric(title, found[kind]["total"])
    for tab, (kind, title) in zip(st.tabs([t for _, t in CHANGE_KINDS]), CHANGE_KINDS):
        with tab:
            rows = found[kind]["rows"]
            if not rows:
                st.caption(f"No {title.lower()}.")
                continue
            frame = pd.DataFrame(rows)
            frame["account"] = [ui.account_label(a, names) for a in frame["account"]]
            links = ui.timeline_links(frame)
            st.dataframe(frame[["severity", "check", "account", "region", "resource_name", "resource", "timeline",
                                "before", "after", "run"]], hide_index=True, width="stretch", column_config=links)
            if found[kind]["total"] > len(rows):
                st.caption(f"First {len(rows)} of {found[kind]['total']} shown, most severe first.")


def scan_panel(ctx) -> None:
    """Start a scan (admins), and the progress and outcome of the current or last one (everyone)."""
    st.subheader("Scans from the control room")
    active = scan_requests.current(ctx.engine)
    if active is not None:  # refreshed every 2 s until it ends, then the whole page (its new run)
        st.fragment(run_every=dt.timedelta(seconds=2))(_scan_progress)(ctx, polling=True)
    else:
        _scan_progress(ctx, polling=False)
    if not ctx.actor.can("start_scan"):
        return
    with st.form("scan_form"):
        st.caption("Scans the accounts of the latest run (its accounts file or organisation role) with the "
                   "control room's AWS credentials. One scan runs at a time.")
        regions = st.text_input("Regions", placeholder="the latest run's", max_chars=500)
        criterion = st.selectbox("Criterion", [""] + [c.id for c in ctx.catalog.controls],
                                 format_func=lambda c: c or "all criteria")
        if st.form_submit_button("Start scan", disabled=active is not None):
            _start(ctx, regions, criterion)


def _start(ctx, regions: str, criterion: str) -> None:
    try:
        options = scan_requests.scan_options(ctx.engine, ctx.catalog, regions=regions, criterion=criterion)
        made = scan_requests.request_scan(ctx.engine, ctx.actor, options)
    except (PermissionDenied, UserError) as exc:
        ui.say("error", exc)
        return
    scan_requests.start_in_background(ctx.engine, ctx.db, made["id"], catalog_path=ui.catalog_path(),
                                      exceptions_path=ui.exceptions_path())
    st.rerun()


def _scan_progress(ctx, polling: bool) -> None:
    """The current request's progress, or the last one's outcome (when it has just ended, while the
    page was polling: the whole page again, with the run it stored)."""
    last = scan_requests.recent(ctx.engine, 1)
    if not last:
        st.caption("No scan has been started from the control room yet.")
        return
    req = last[0]
    who = f"Scan {req['id']} requested by {req['requested_by']} at {ui.when(req['requested_at'])}"
    if req["active"]:
        planned, done = req["planned"] or 0, req["done"]
        st.progress(min(done / planned, 1.0) if planned else 0.0,
                    text=ui.md(f"{who}: {req['state']}, {done} of {planned or '?'} collection jobs"
                               + (f" (last: {req['current']})" if req["current"] else "")))
        return
    if polling:
        ui.latest_run.clear()
        st.rerun()
    if req["state"] == "done":
        ui.say("success", f"{who}: done, run {req['run_id']} stored at {ui.when(req['finished_at'])}.")
    else:
        ui.say("error", f"{who}: {req['state']} at {ui.when(req['finished_at'])}: {req['error']}")
