"""What `streamlit run` starts (it finds `app = st.App(...)` here): the control room's page script,
control_room.py, behind auditbook's guard on every HTTP and WebSocket request (host, origin, and the
local token; see auditbook/app_server.py). Start it with `auditbook app`."""
import streamlit as st

from auditbook.web.server import guard_middleware

app = st.App("control_room.py", middleware=guard_middleware())
