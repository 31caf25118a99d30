"""The wall screen, read at three metres by someone glancing at it: a red banner while a critical alert
is unacknowledged; the SIMULATED label for the demo's data; the last scan (STALE when old); a tile per
category with its status by glyph and word as well as colour, criteria passing, failing findings with
the change since yesterday, and the critical and high ones; the active incidents (age, assignee, SLA
countdown, a breach standing out) and the open alerts, most severe then oldest first, the count in
the heading matching the list and "+N more" when it is cut. Dark, no navigation, refreshed on its own."""
import datetime as dt

import streamlit as st
import ui
import wall_parts as parts

from auditbook.monitor import settings
from auditbook.monitor import wall as board

ALERT_ROWS, INCIDENT_ROWS = 7, 4

ctx = ui.require("view_wall")
wall = settings.get(ctx.engine, "wall")
st.markdown(parts.CSS, unsafe_allow_html=True)


def html(markup: str) -> None:
    st.markdown(markup, unsafe_allow_html=True)


@st.fragment(run_every=dt.timedelta(seconds=int(wall["refresh_seconds"])))
def screen():
    run = ui.latest_run(ctx.db)
    now = dt.datetime.now(dt.timezone.utc)
    shown = board.board(ctx.engine, alerts=ALERT_ROWS, incidents_shown=INCIDENT_ROWS, at=now)
    if shown["critical"]["total"]:
        html(parts.banner(shown["critical"], now))
    html(parts.header(now, run))
    if run is None:
        html('<div class="ab-stale">No scan has run yet</div>')
    else:
        line = f"Last scan {ui.when(run['started_at'])} ({ui.ago(run['started_at'], now)})"
        if (now - run["started_at"]).total_seconds() / 3600 > float(wall["stale_after_hours"]):
            html(f'<div class="ab-stale" data-testid="wall-stale">STALE — {ui.h(line)}</div>')
        else:
            html(f'<div class="ab-row">{ui.h(line)}</div>')
        for col, tile in zip(st.columns(5), ui.wall_tiles(ctx.db, ui.catalog_path(), run["id"])):
            with col:
                html(parts.tile(tile))
    left, right = st.columns(2)
    with left:
        html("".join(parts.incident_rows(shown["incidents"])))
    with right:
        html("".join(parts.alert_rows(shown["alerts"], now)))


screen()
