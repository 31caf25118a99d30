"""Declared controls: the criteria each resource's control tag declares (SOC2_Control = "CC6.1"), set
against the latest run's findings — per criterion the declared resources and their states, with a
drill-down (kept in the address, ?criterion=…); the declared resources failing their criterion, the
declared criteria no check evidences, the in-scope resources without the tag and the tag values that
are not criteria (auditbook.history.declared computes them; every string is shown as text)."""
import pandas as pd
import streamlit as st
import ui

STATES = ["FAIL", "ERROR", "EXCEPTED", "PASS", "NOT_EVIDENCED"]


@st.cache_data(max_entries=8, show_spinner=False)
def declared_view(_engine, _catalog, db: str, catalog_sha: str, run_id: int) -> dict:
    """The run's declared controls, read once per store, catalog and run (a run never changes)."""
    from auditbook.history.declared import declared_at
    return declared_at(_engine, _catalog, run_id)


def rows_frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=sorted({c for r in rows for c in r}) or columns)
    if "checks" in frame:
        frame["checks"] = [", ".join(f"{c['check']} {c['status']}" + (" (account-wide)" if c["account_wide"] else "")
                                     for c in checks) for checks in frame["checks"]]
    return frame.reindex(columns=columns)


def listing(title: str, rows: list[dict], columns: list[str], empty: str) -> None:
    st.subheader(f"{title} ({len(rows)})")
    if rows:
        st.dataframe(rows_frame(rows, columns), hide_index=True, width="stretch")
    else:
        st.caption(ui.md(empty))


ctx = ui.require("view_posture")
st.title("Declared controls")
run = ui.latest_run(ctx.db)
if run is None:
    st.warning("No runs in the store yet: run `auditbook scan` first.")
    st.stop()
view = declared_view(ctx.engine, ctx.catalog, ctx.db, ctx.catalog.sha256, run["id"])
st.caption(ui.md(f"Run {run['id']} at {ui.when(run['started_at'])} · the control tag {view['tag_key']} declares "
                 "the criteria a resource implements (ids separated by commas or spaces, spelled as the catalog "
                 "spells them); each declared criterion is set against the findings of its checks on the resource."))
cols = st.columns(5)
for col, (label, count) in zip(cols, [("Declared resources", len(view["resources"])),
                                      ("Failing their criterion", len(view["failing"])),
                                      ("Not evidenced by any check", len(view["not_evidenced"])),
                                      ("In scope, untagged", len(view["untagged"])),
                                      ("Tags declaring no criterion", len(view["invalid"]))]):
    col.metric(label, count)

titles = {c.id: c.title for c in ctx.catalog.controls}
per = pd.DataFrame(view["criteria"], columns=["criterion", "declared", "fail", "error", "excepted", "pass",
                                              "not_evidenced"])
per.insert(1, "title", [titles.get(c, "") for c in per["criterion"]])
st.subheader("Per criterion")
st.dataframe(per, hide_index=True, width="stretch")

declared_ids = [c["criterion"] for c in view["criteria"]]
if declared_ids:
    chosen = ui.url_value("criterion", declared_ids) or declared_ids[0]
    criterion = st.selectbox("Criterion", declared_ids, index=declared_ids.index(chosen),
                             format_func=lambda c: f"{c} — {titles.get(c, '')}")
    ui.keep_in_url("criterion", criterion)
    states = st.multiselect("State", STATES, default=[], placeholder="every state")
    mine = [r for r in view["declared"] if r["criterion"] == criterion and (not states or r["state"] in states)]
    frame = rows_frame(mine, ["state", "resource_type", "account", "region", "name", "resource", "checks", "reason"])
    st.dataframe(frame, hide_index=True, width="stretch")
else:
    st.caption(ui.md(f"No resource of the run carries a {view['tag_key']} tag naming a criterion."))

where = ["resource_type", "account", "region", "name", "resource"]
listing("Declared, failing their criterion's checks", view["failing"], ["criterion", "state", *where, "checks"],
        "No declared resource fails or lacks evidence for the criterion it declares.")
listing("Declared, not evidenced by any check", view["not_evidenced"], ["criterion", *where, "reason"],
        "Every declared criterion is evidenced by a check on its resource.")
listing(f"In scope, without a {view['tag_key']} tag", view["untagged"], where,
        "Every resource of the types the checks read carries the control tag.")
listing("Control tags that declare no criterion", view["invalid"], [*where, "key", "value", "reason"],
        "Every control tag names criteria of the catalog.")
for t in view["types_without_tags"]:
    st.caption(ui.md(f"Tags are not collected for {t['resource_type']} ({t['reason']}): its resources are not "
                     "listed as untagged."))
