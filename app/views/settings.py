"""Settings (admins): SLA targets per severity, the wall screen, and the exception register."""
import datetime as dt
import os
from pathlib import Path

import pandas as pd
import streamlit as st
import ui

from auditbook.auth import PermissionDenied
from auditbook.errors import UserError
from auditbook.evaluate.risk_register import (
    add_exception,
    load_register,
    remove_exception,
)
from auditbook.history.sla import SEVERITIES
from auditbook.monitor import settings
from auditbook.scan import register_trail

ctx = ui.require("manage_settings")
st.title("Settings")

st.subheader("SLA targets (minutes)")
sla = settings.get(ctx.engine, "sla")
with st.form("sla"):
    edited = {}
    for severity in SEVERITIES:
        a, b = st.columns(2)
        edited[severity] = {
            "acknowledge": a.number_input(f"{severity}: acknowledge within", min_value=1, value=int(sla[severity]["acknowledge"]), step=5),
            "resolve": b.number_input(f"{severity}: resolve within", min_value=1, value=int(sla[severity]["resolve"]), step=30)}
    if st.form_submit_button("Save SLA targets"):
        try:
            settings.put(ctx.engine, ctx.actor, "sla", {k: {kk: int(vv) for kk, vv in v.items()} for k, v in edited.items()})
            st.success("Saved.")
        except (PermissionDenied, UserError) as exc:
            ui.say("error", exc)

st.subheader("Wall screen")
wall = settings.get(ctx.engine, "wall")
with st.form("wall"):
    hours = st.number_input("Warn when the latest scan is older than (hours)", min_value=1, value=int(wall["stale_after_hours"]))
    refresh = st.number_input("Refresh every (seconds)", min_value=5, max_value=3600, value=int(wall["refresh_seconds"]))
    if st.form_submit_button("Save wall settings"):
        try:
            settings.put(ctx.engine, ctx.actor, "wall", {"stale_after_hours": int(hours), "refresh_seconds": int(refresh)})
            st.success("Saved.")
        except (PermissionDenied, UserError) as exc:
            ui.say("error", exc)

st.subheader("Exceptions")
path = Path(os.environ.get("AUDITBOOK_EXCEPTIONS", "exceptions.yaml"))
st.caption(f"Register: {ui.md(path)}")
try:
    register = load_register(path)
    if register.exceptions:
        st.dataframe(pd.DataFrame([e.model_dump(mode="json") for e in register.exceptions]), hide_index=True,
                     width="stretch")
except UserError as exc:
    ui.say("error", exc)
    register = None
with st.form("exception", clear_on_submit=True):
    c1, c2 = st.columns(2)
    fields = {"id": c1.text_input("Id"), "check": c2.selectbox("Check", [c.id for c in ctx.catalog.checks]),
              "account": c1.text_input("Account (12 digits or *)", value="*"),
              "resource": c2.text_input("Resource pattern", value="*"),
              "owner": c1.text_input("Owner"), "approver": c2.text_input("Approver"),
              "expires": st.date_input("Expires", value=dt.date.today() + dt.timedelta(days=90)),
              "justification": st.text_area("Justification")}
    if st.form_submit_button("Add exception"):
        try:
            add_exception(fields, {c.id for c in ctx.catalog.checks}, path, actor=ctx.actor,
                          trail=register_trail(ctx.engine))
            ui.say("success", f"Exception {fields['id']} added.")
        except (PermissionDenied, UserError) as exc:
            ui.say("error", exc)
if register and register.exceptions:
    gone = st.selectbox("Remove exception", [""] + [e.id for e in register.exceptions])
    if gone and st.button("Remove"):
        try:
            remove_exception(gone, path, actor=ctx.actor, trail=register_trail(ctx.engine))
            ui.say("success", f"Exception {gone} removed.")
        except (PermissionDenied, UserError) as exc:
            ui.say("error", exc)
