"""Posture: per category and criterion, the latest run's counts and status, the trend over runs, and
a drill-down to the failing resources and the evidence behind each finding."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import ui

from auditbook.auth import PermissionDenied

ctx = ui.require("view_posture")
st.title("Posture")
run = ui.latest_run(ctx.db)
if run is None:
    st.warning("No runs in the store yet: run `auditbook scan` first.")
    st.stop()
stale = (pd.Timestamp.now(tz="UTC") - run["started_at"]).total_seconds() / 3600 > ui.staleness_hours(ctx.engine)
st.caption(f"Latest run {run['id']} at {ui.when(run['started_at'])} ({ui.ago(run['started_at'])})"
           + (" · SIMULATED (demo)" if run["simulated"] else ""))
if stale:
    st.warning(f"The latest scan is {ui.ago(run['started_at'])}: posture may be stale.")

rows = ui.criteria(ctx.db, ui.catalog_path(), run["id"])
from auditbook.history.posture import tiles  # noqa: E402

cols = st.columns(5)
for col, tile in zip(cols, tiles(rows)):
    with col:
        st.markdown(
            f'<div style="border-left:8px solid {ui.TILE_COLOUR[tile["colour"]]};padding:6px 12px;'
            f'background:rgba(127,127,127,0.08)"><b>{ui.h(tile["category"])}</b><br>'
            f'<span style="font-size:1.6em">{tile["PASS"]} / {tile["criteria"]}</span> passing<br>'
            f'fail {tile["FAIL"]} · error {tile["ERROR"]} · evidence needed {tile["NEEDS_EVIDENCE"]}</div>',
            unsafe_allow_html=True)

trend = pd.DataFrame(ui.trend(ctx.db, ui.catalog_path(), run["id"]))
if not trend.empty:
    fig = go.Figure()
    for category, part in trend.groupby("category"):
        fig.add_trace(go.Scatter(x=part["at"], y=part["failing_findings"], name=category, mode="lines"))
    fig.update_layout(title="Failing findings per category, run by run", height=280, margin=dict(l=10, r=10, t=40, b=10))
    st.plotly_chart(fig, width="stretch")

table = pd.DataFrame(rows)
status_filter = st.multiselect("Status", ["FAIL", "ERROR", "NEEDS_EVIDENCE", "EXCEPTED", "PASS", "NO_DATA"],
                               default=[], placeholder="all statuses")
shown = table[table["status"].isin(status_filter)] if status_filter else table
st.dataframe(shown[["criterion", "category", "title", "status", "checks", "pass", "fail", "error", "excepted"]],
             hide_index=True, width="stretch")

st.subheader("Drill down")
failing_ids = [r["criterion"] for r in rows if r["fail"] or r["error"] or r["excepted"]]
criterion = st.selectbox("Criterion", failing_ids or [r["criterion"] for r in rows],
                         format_func=lambda c: f"{c} — {next(r['title'] for r in rows if r['criterion'] == c)}")
findings = ui.failing(ctx.db, ui.catalog_path(), run["id"], criterion)
if not findings:
    st.success(f"No failing, erroring or excepted findings for {criterion} in run {run['id']}.")
    st.stop()
frame = pd.DataFrame(findings)
st.dataframe(frame[["status", "check", "severity", "account", "region", "resource_name", "resource", "message"]],
             hide_index=True, width="stretch")
labels = [f"{f['status']} · {f['check']} · {f['resource_name'] or f['resource']}" for f in findings]
pick = st.selectbox("Finding", range(len(findings)), format_func=lambda i: labels[i])
finding = findings[pick]
st.text(f"{finding['check']} on {finding['resource']} ({finding['account']}, {finding['region']}): {finding['message']}")
from auditbook.history.findings import evidence_body  # noqa: E402

for sha in finding["evidence"][:5]:
    with st.expander(f"Evidence {sha}"):
        st.json(evidence_body(ctx.engine, sha) or {})
if ctx.actor.can("create_incident") and finding["status"] in ("FAIL", "ERROR"):
    if st.button("Open an incident for this finding"):
        from auditbook.monitor import incidents
        try:
            made = incidents.from_finding(ctx.engine, ctx.actor, finding)
            st.success(f"Incident {made['id']} opened.")
        except PermissionDenied as exc:
            ui.denied(exc)
