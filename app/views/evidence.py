"""Evidence explorer: resources of a run by account (with its name), region, type or text, the
findings of a check, and the hashed raw JSON behind them; a run from the demo is labelled SIMULATED."""
import pandas as pd
import streamlit as st
import ui

from auditbook.collect.evidence import canonical, digest
from auditbook.history.findings import evidence_body, findings_for_run, resolve_run
from auditbook.history.posture import resources, scope_values

ctx = ui.require("view_evidence")
st.title("Evidence")
latest = ui.latest_run(ctx.db)
if latest is None:
    st.warning("No runs in the store yet.")
    st.stop()
run_id = st.number_input("Run", min_value=1, max_value=latest["id"], value=latest["id"], step=1)
run = resolve_run(ctx.engine, str(run_id))
st.caption(f"Run {run.id} at {ui.when(run.started_at)}"
           + (f" · SIMULATED ({ui.md(run.parameters.get('simulated'))}): data from auditbook's demo" if run.simulated else ""))
values = scope_values(ctx.engine, run.id)
names = ui.account_names(ctx.db)
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
        shas = sorted({h for f in found for h in f["evidence"]})
    else:
        shas = []
else:
    rows, total = resources(ctx.engine, run.id, account=account or None, region=region or None,
                            resource_type=rtype or None, text=text or None)
    st.caption(f"{total} resources in run {run.id}" + (f" (first {len(rows)} shown)" if total > len(rows) else ""))
    if rows:
        frame = pd.DataFrame(rows)
        frame["account"] = [ui.account_label(a, names) for a in frame["account"]]
        links = ui.timeline_links(frame)
        st.dataframe(frame[["resource_type", "account", "region", "name", "resource", "timeline"]],
                     hide_index=True, width="stretch", column_config=links)
    shas = sorted({h for r in rows for h in r["evidence"]})

if shas:
    sha = st.selectbox("Evidence (SHA-256 of the redacted API response)", shas[:1000])
    body = evidence_body(ctx.engine, sha)
    st.caption("SHA-256 re-computed from the stored body: matches" if digest(canonical(body)) == sha
               else "SHA-256 re-computed from the stored body: DOES NOT MATCH")
    st.code(sha)
    st.json(body)
