"""The wall screen: large category tiles, open incidents and active alerts, the last scan with a
staleness warning; dark, no navigation, refreshed on its own."""
import datetime as dt

import streamlit as st
import ui

from auditbook.history.posture import tiles
from auditbook.monitor import alerts, incidents, settings

ctx = ui.require("view_wall")
wall = settings.get(ctx.engine, "wall")
st.markdown("""<style>
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stSidebar"],
[data-testid="stSidebarCollapsedControl"], footer {display: none !important;}
.stApp, [data-testid="stAppViewContainer"] {background: #0d1117 !important; color: #e6edf3 !important;}
.block-container {padding-top: 1.2rem !important; max-width: 100% !important;}
.ab-wall h1 {font-size: 44px; margin: 0 0 8px 0; color: #e6edf3;}
.ab-tile {border-radius: 14px; padding: 18px 22px; color: #fff; min-height: 190px;}
.ab-tile .name {font-size: 34px; font-weight: 700; text-transform: capitalize;}
.ab-tile .big {font-size: 72px; font-weight: 800; line-height: 1.05;}
.ab-tile .small {font-size: 24px;}
.ab-row {font-size: 30px; margin: 6px 0; color: #e6edf3;}
.ab-stale {background: #bf8700; color: #000; font-size: 32px; font-weight: 700; padding: 10px 18px; border-radius: 10px;}
</style>""", unsafe_allow_html=True)


def short(text: str, size: int = 70) -> str:
    return text if len(text) <= size else text[:size - 1] + "…"


@st.fragment(run_every=dt.timedelta(seconds=int(wall["refresh_seconds"])))
def screen():
    run = ui.latest_run(ctx.db)
    now = dt.datetime.now(dt.timezone.utc)
    st.markdown(f'<div class="ab-wall"><h1>SOC 2 posture · {now:%H:%M} UTC</h1></div>', unsafe_allow_html=True)
    if run is None:
        st.markdown('<div class="ab-stale">No scan has run yet</div>', unsafe_allow_html=True)
        return
    age_h = (now - run["started_at"]).total_seconds() / 3600
    line = f"Last scan {ui.when(run['started_at'])} ({ui.ago(run['started_at'], now)})"
    if age_h > float(wall["stale_after_hours"]):
        st.markdown(f'<div class="ab-stale" data-testid="wall-stale">STALE — {ui.h(line)}</div>', unsafe_allow_html=True)
    else:
        st.markdown(f'<div class="ab-row">{ui.h(line)}</div>', unsafe_allow_html=True)
    cols = st.columns(5)
    for col, tile in zip(cols, tiles(ui.criteria(ctx.db, ui.catalog_path(), run["id"]))):
        col.markdown(
            f'<div class="ab-tile" data-tile="{ui.h(tile["category"])}" data-colour="{tile["colour"]}" '
            f'style="background:{ui.TILE_COLOUR[tile["colour"]]}"><div class="name">{ui.h(tile["category"].replace("-", " "))}</div>'
            f'<div class="big">{tile["PASS"]}/{tile["criteria"]}</div>'
            f'<div class="small">fail {tile["FAIL"]} · error {tile["ERROR"]} · evidence {tile["NEEDS_EVIDENCE"]}</div></div>',
            unsafe_allow_html=True)
    open_incidents = incidents.list_incidents(ctx.engine, incidents.ACTIVE)
    active = alerts.list_alerts(ctx.engine, alerts.OPEN_STATES)
    left, right = st.columns(2)
    listing(left, "wall-incidents", f"{len(open_incidents)} open incidents",
            [f'#{i["id"]} [{i["severity"]}] {i["status"]} — {short(i["title"])}' for i in open_incidents[:6]])
    listing(right, "wall-alerts", f"{len(active)} active alerts",
            [f'[{a["severity"]}] {a["rule"]} — {short(a["summary"])}' for a in active[:6]])


def listing(column, testid: str, heading: str, lines: list[str]) -> None:
    """A heading and up to six lines in one wall column (every line escaped)."""
    with column:
        st.markdown(f'<div class="ab-row" data-testid="{testid}"><b>{ui.h(heading)}</b></div>', unsafe_allow_html=True)
        for line in lines:
            st.markdown(f'<div class="ab-row">{ui.h(line)}</div>', unsafe_allow_html=True)


screen()
