"""Declared controls in the packet: data/declared.json (auditbook.history.declared at the period's
last run, written before the notebooks run so each page reads it instead of reading every record
again), each criterion page's declared resources with their states, and the index's counts of the
three lists (declared and failing, declared but not evidenced, in scope without the tag) with the
per-criterion table. Every value is escaped (page_helpers); the file is signed with the rest."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from auditbook.history.declared import declared_at
from auditbook.history.period import PeriodRuns
from auditbook.history.type2 import latest_run_for
from auditbook.report import page_helpers as nbh
from auditbook.report.packet.data import write_json, written_or

DATA_FILE = "declared.json"
WHERE = ["resource_type", "account", "region", "name", "resource"]


def period_view(engine, catalog, pruns: PeriodRuns) -> dict:
    """The declared controls at the period's last run that read every type the checks read (else its
    last run); empty lists when the period has no run."""
    run = latest_run_for(catalog.checks, pruns)
    if run is None:
        return {"run": None, "tag_key": "", "criteria": [], "declared": [], "failing": [], "not_evidenced": [],
                "untagged": [], "invalid": [], "in_scope_types": [], "types_without_tags": [], "resources": []}
    return declared_at(engine, catalog, run)


def write_declared(engine, catalog, root: Path, pruns: PeriodRuns) -> None:
    """data/declared.json of the packet being built in `root` (compact, keys sorted)."""
    write_json(period_view(engine, catalog, pruns), root / "data" / DATA_FILE)


def read_declared(engine, catalog, pruns: PeriodRuns, packet_dir: Optional[str]) -> dict:
    """The packet's data/declared.json when the notebook runs inside a packet build, else computed."""
    return written_or(packet_dir, DATA_FILE, lambda: period_view(engine, catalog, pruns))


def _checks(checks: list[dict]) -> str:
    return ", ".join(f"{c['check']} {c['status']}" + (" (account-wide)" if c["account_wide"] else "") for c in checks)


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([{**r, "checks": _checks(r.get("checks", []))} for r in rows])
    return frame.reindex(columns=columns)


def criterion_parts(view: dict, criterion: str, limit: int = 200) -> list:
    """The criterion page's section: how many resources declare it and their states, then each one."""
    mine = [r for r in view["declared"] if r["criterion"] == criterion]
    counts = {s: sum(1 for r in mine if r["state"] == s) for s in ("FAIL", "ERROR", "EXCEPTED", "PASS", "NOT_EVIDENCED")}
    line = nbh.text('<p id="declared-resources">{n} resources declare {cid} with their {key} tag in run {run}: '
                    "failing {FAIL} · evidence missing (error) {ERROR} · excepted {EXCEPTED} · passing {PASS} · "
                    "declared, not evidenced by any check {NOT_EVIDENCED}.</p>", n=len(mine), cid=criterion,
                    key=view["tag_key"] or "control", run=view["run"] or "none", **counts)
    table = nbh.table(_frame(mine, ["state", *WHERE, "checks", "reason"]), limit=limit,
                      full=DATA_FILE if len(mine) > limit else None, render={"state": nbh.status},
                      empty=f"No resource declares {criterion}.")
    return [line, table]


def index_parts(view: dict, limit: int = 50) -> list:
    """The index's section: the three lists' counts (and the invalid tags'), the per-criterion table
    and the first rows of each list; everything is in data/declared.json."""
    line = nbh.text('<p id="declared-counts">Run {run}, tag {key}: {declared} declared resources · declared and '
                    "failing their criterion (or in error): {failing} · declared, not evidenced by any check: "
                    "{not_evidenced} · in scope without the tag: {untagged} · tags that declare no criterion: "
                    '{invalid}. Every row is in <a href="data/declared.json">data/declared.json</a>.</p>',
                    run=view["run"] or "none", key=view["tag_key"] or "control", declared=len(view["resources"]),
                    failing=len(view["failing"]), not_evidenced=len(view["not_evidenced"]),
                    untagged=len(view["untagged"]), invalid=len(view["invalid"]))
    per = pd.DataFrame(view["criteria"], columns=["criterion", "declared", "fail", "error", "excepted", "pass",
                                                  "not_evidenced"])
    parts = [line, nbh.table(per, empty="No resource carries a control tag naming a criterion.",
                             caption="Declared resources per criterion, by state")]
    for rows, columns, caption in (
            (view["failing"], ["criterion", "state", *WHERE, "checks"], "Declared, failing their criterion's checks"),
            (view["not_evidenced"], ["criterion", *WHERE, "reason"], "Declared, not evidenced by any check"),
            (view["untagged"], WHERE, "In scope, without the control tag"),
            (view["invalid"], [*WHERE, "value", "reason"], "Control tags that declare no criterion")):
        parts.append(nbh.table(_frame(rows, columns), limit=limit, full=None, caption=caption,
                               render={"state": nbh.status}, empty=f"{caption}: none."))
    return parts
