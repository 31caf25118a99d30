"""Alerts: severity and state; acknowledge; open an incident from an alert."""
import pandas as pd
import streamlit as st
import ui

from auditbook.auth import PermissionDenied
from auditbook.errors import UserError
from auditbook.monitor import alerts, incidents

ctx = ui.require("view_alerts")
st.title("Alerts")
states = st.multiselect("State", list(alerts.STATES), default=["firing", "acknowledged"])
rows = alerts.list_alerts(ctx.engine, tuple(states) or None)
if not rows:
    st.info("No alerts in these states.")
    st.stop()
frame = pd.DataFrame([{"id": a["id"], "state": a["state"], "severity": a["severity"], "rule": a["rule"],
                       "soc2_control": a["soc2_control"], "summary": a["summary"], "count": a["count"],
                       "first_seen": ui.when(a["first_seen"]), "last_seen": ui.when(a["last_seen"]),
                       "acknowledged_by": a["acknowledged_by"] or ""} for a in rows])
st.dataframe(frame, hide_index=True, width="stretch")
chosen = st.selectbox("Alert", [a["id"] for a in rows],
                      format_func=lambda i: next(f"#{a['id']} {a['state']} · {a['rule']} · {a['summary'][:80]}"
                                                 for a in rows if a["id"] == i))
alert = next(a for a in rows if a["id"] == chosen)
st.text(alert["summary"])
st.json(alert["labels"])
left, right = st.columns(2)
if ctx.actor.can("acknowledge_alert") and alert["state"] == "firing":
    with left:
        if st.button("Acknowledge", key=f"ack-{alert['id']}"):
            try:
                alerts.acknowledge(ctx.engine, ctx.actor, alert["id"], alert["version"])
                st.success(f"Alert {alert['id']} acknowledged.")
                st.rerun()
            except alerts.StaleAlert as exc:
                ui.say("warning", exc)
            except (PermissionDenied, UserError) as exc:
                ui.say("error", exc)
if ctx.actor.can("create_incident"):
    with right:
        if st.button("Open an incident from this alert", key=f"inc-{alert['id']}"):
            try:
                made = incidents.from_alert(ctx.engine, ctx.actor, alert["id"])
                st.success(f"Incident {made['id']} opened.")
            except (PermissionDenied, UserError) as exc:
                ui.say("error", exc)
