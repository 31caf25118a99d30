"""Posture: per category and criterion, the latest run's counts and status — narrowed by account,
region, environment/owner tag, severity and check, the filters kept in the address so a view can be
shared — the trend over runs, what changed since the previous run or a chosen date, a drill-down to
the failing resources and the evidence behind each finding, and (admins) starting a scan."""
import dataclasses

import pandas as pd
import plotly.graph_objects as go
import posture_panels
import streamlit as st
import ui

from auditbook.auth import PermissionDenied
from auditbook.errors import UserError
from auditbook.history.posture import tiles


@st.cache_resource(max_entries=4, show_spinner=False)
def trend_figure(db: str, catalog_path, run_id: int) -> go.Figure:
    """The trend chart of the store up to the run, built once per run (never changed after)."""
    trend = pd.DataFrame(ui.trend(db, catalog_path, run_id))
    fig = go.Figure()
    for category, part in trend.groupby("category") if not trend.empty else ():
        fig.add_trace(go.Scatter(x=part["at"], y=part["failing_findings"], name=category, mode="lines"))
    fig.update_layout(title="Failing findings per category, run by run", height=280,
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig


ctx = ui.require("view_posture")
st.title("Posture")
run = ui.latest_run(ctx.db)
if run is None:
    st.warning("No runs in the store yet: run `auditbook scan` first.")
    posture_panels.scan_panel(ctx)
    st.stop()
stale = (pd.Timestamp.now(tz="UTC") - run["started_at"]).total_seconds() / 3600 > ui.staleness_hours(ctx.engine)
st.caption(f"Latest run {run['id']} at {ui.when(run['started_at'])} ({ui.ago(run['started_at'])})"
           + (f" · SIMULATED ({ui.md(run['simulated_label'] or 'demo')})" if run["simulated"] else ""))
if stale:
    st.warning(f"The latest scan is {ui.ago(run['started_at'])}: posture may be stale.")
for left in run.get("out_of_scope", []):
    st.caption(f"Out of scope by entry {left['entry']} ({left['kind']} {ui.md(left['value'])}: {ui.md(left['reason'])}): "
               f"{left['records']} resources, {len(left['accounts_not_read'])} accounts and "
               f"{len(left['regions_not_read'])} regions not read — excluded from every count.")

flt = posture_panels.filters(ctx, run)
flt_key = dataclasses.astuple(flt)
if flt.any():
    rows = ui.filtered_criteria(ctx.db, ui.catalog_path(), run["id"], flt_key, tuple(run["needs_evidence"]))
    st.caption("Counts of the findings that match the filters (NO_DATA: none does); the trend below is "
               "the whole estate's.")
else:
    rows = ui.criteria(ctx.db, ui.catalog_path(), run["id"])

cols = st.columns(5)
for col, tile in zip(cols, tiles(rows, filtered=flt.any())):
    glyph, word = ui.GLYPH[tile["colour"]]
    with col:
        st.markdown(
            f'<div data-tile="{ui.h(tile["category"])}" style="border-left:8px solid {ui.TILE_COLOUR[tile["colour"]]};'
            f'padding:6px 12px;background:rgba(127,127,127,0.08)"><b>{ui.h(tile["category"])}</b> '
            f'<span>{glyph} {word}</span><br>'
            f'<span style="font-size:1.6em">{tile["PASS"]} / {tile["criteria"]}</span> passing<br>'
            f'fail {tile["FAIL"]} · error {tile["ERROR"]} · evidence needed {tile["NEEDS_EVIDENCE"]}</div>',
            unsafe_allow_html=True)

st.plotly_chart(trend_figure(ctx.db, ui.catalog_path(), run["id"]), width="stretch")

table = pd.DataFrame(rows)
status_filter = st.multiselect("Status", ["FAIL", "ERROR", "NEEDS_EVIDENCE", "EXCEPTED", "PASS", "NO_DATA"],
                               default=[], placeholder="all statuses")
shown = table[table["status"].isin(status_filter)] if status_filter else table
st.dataframe(shown[["criterion", "category", "title", "status", "checks", "pass", "fail", "error", "excepted"]],
             hide_index=True, width="stretch")

posture_panels.changes(ctx, run, flt)

st.subheader("Drill down")
failing_ids = [r["criterion"] for r in rows if r["fail"] or r["error"] or r["excepted"]]
criterion = st.selectbox("Criterion", failing_ids or [r["criterion"] for r in rows],
                         format_func=lambda c: f"{c} — {next(r['title'] for r in rows if r['criterion'] == c)}")
if flt.any():
    findings = ui.filtered_failing(ctx.db, ui.catalog_path(), run["id"], criterion, flt_key)
    total = len(findings)
else:  # the first 500, worst first, and how many there are (an organisation's criterion fails thousands)
    findings, total = posture_panels.failing_page(ctx.db, ui.catalog_path(), run["id"], criterion)
if not findings:
    st.success(f"No failing, erroring or excepted findings for {criterion} in run {run['id']}"
               + (" that match the filters." if flt.any() else "."))
else:
    names = ui.account_names(ctx.db)
    frame = pd.DataFrame(findings)
    frame["account"] = [ui.account_label(a, names) for a in frame["account"]]
    links = ui.timeline_links(frame)
    st.dataframe(frame[["status", "check", "severity", "account", "region", "resource_name", "resource", "timeline",
                        "message"]], hide_index=True, width="stretch", column_config=links)
    if total > len(findings):
        st.caption(f"First {len(findings)} of {total} shown, worst first. All of them: "
                   f"`auditbook findings --run {run['id']} --format csv` (the `controls` column names each "
                   "finding's criteria).")
    labels = [f"{f['status']} · {f['check']} · {f['resource_name'] or f['resource']}" for f in findings]
    pick = st.selectbox("Finding", range(len(findings)), format_func=lambda i: labels[i])
    finding = findings[pick]
    st.text(f"{finding['check']} on {finding['resource']} ({ui.account_label(finding['account'], names)}, "
            f"{finding['region']}): {finding['message']}")
    from auditbook.history.findings import evidence_body

    for sha in finding["evidence"][:5]:
        with st.expander(f"Evidence {sha}"):
            try:  # evidence in an S3 bucket: an object missing, unreadable or altered is one line, named
                st.json(evidence_body(ctx.engine, sha) or {})
            except UserError as exc:
                st.error(str(exc))
    if ctx.actor.can("create_incident") and finding["status"] in ("FAIL", "ERROR"):
        if st.button("Open an incident for this finding"):
            from auditbook.monitor import incidents
            try:
                made = incidents.from_finding(ctx.engine, ctx.actor, finding)
                st.success(f"Incident {made['id']} opened.")
            except PermissionDenied as exc:
                ui.denied(exc)

posture_panels.scan_panel(ctx)
