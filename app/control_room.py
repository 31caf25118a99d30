"""The auditbook control room (Streamlit). Start it with `auditbook app`; see docs/control-room.md."""
import streamlit as st
import ui

wall_view = st.query_params.get("view") == "wall"
st.set_page_config(page_title="auditbook control room", layout="wide",  # no remote favicon
                   initial_sidebar_state="collapsed" if wall_view else "auto")
ctx = ui.resolve()
st.session_state["ab_ctx"] = ctx

pages = {
    "posture": st.Page("views/posture.py", title="Posture", default=True),
    "declared": st.Page("views/declared.py", title="Declared controls", url_path="declared"),
    "alerts": st.Page("views/alerts.py", title="Alerts"),
    "incidents": st.Page("views/incidents.py", title="Incidents"),
    "evidence": st.Page("views/evidence.py", title="Evidence"),
    "deviations": st.Page("views/deviations.py", title="Deviations"),
    "signoffs": st.Page("views/signoffs.py", title="Sign-offs", url_path="signoffs"),
    "resource": st.Page("views/resource.py", title="Resource timeline", url_path="resource"),
    "packets": st.Page("views/packets.py", title="Packets"),
    "settings": st.Page("views/settings.py", title="Settings"),
    "wall": st.Page("views/wall.py", title="Wall screen", url_path="wall"),
}
needs = {"posture": "view_posture", "declared": "view_posture", "alerts": "view_alerts", "incidents": "view_incidents",
         "evidence": "view_evidence", "deviations": "view_evidence", "signoffs": "view_evidence",
         "resource": "view_evidence", "packets": "view_packets", "settings": "manage_settings", "wall": "view_wall"}
if wall_view or ctx.actor.role == "wall":
    # the security-room screen: the wall page alone, no navigation
    st.session_state["ab_pages"] = ["wall"]
    chosen = st.navigation([st.Page("views/wall.py", title="Wall screen", default=True)], position="hidden")
else:
    names = [name for name in pages if ctx.actor.can(needs[name])]
    st.session_state["ab_pages"] = names  # what this role can reach (each page checks again)
    chosen = st.navigation([pages[name] for name in names])
    with st.sidebar:
        st.caption(f"Signed in as {ui.md(ctx.actor.name)} · role **{ctx.actor.role}**")
        if ctx.mode == "local":
            st.caption("Local single-user mode: no identity provider is configured, so the control room "
                       "listens on 127.0.0.1 only and opens with the link (and its token) `auditbook app` printed.")
        elif ctx.mode == "oidc" and st.button("Sign out"):
            st.logout()
    if ctx.mode == "local":
        st.info("Local single-user mode (no identity provider configured) — bound to 127.0.0.1, "
                f"acting as {ctx.actor.role}.")
chosen.run()
