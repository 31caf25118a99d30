"""Reports for the terminal, readable at 80 columns: the compact posture summary `auditbook scan` and
the demo print by default (criteria per category, the failing and erroring criteria, where the
results are), and the per-criterion table behind `--details` (one line per criterion, titles cut
with an ellipsis rather than broken word by word)."""
from __future__ import annotations

from typing import Optional

from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from auditbook.catalog.model import Catalog

STATUS_COLOUR = {"PASS": "green", "FAIL": "red", "ERROR": "yellow", "NEEDS_EVIDENCE": "cyan", "EXCEPTED": "magenta"}
STATUSES = ("PASS", "FAIL", "ERROR", "NEEDS_EVIDENCE", "EXCEPTED")
SHORT = {"PASS": "pass", "FAIL": "fail", "ERROR": "error", "NEEDS_EVIDENCE": "needs ev.", "EXCEPTED": "excepted"}
LISTED = 8  # failing or erroring criteria named in the compact summary; the rest are counted


def _status(status: str) -> str:
    return f"[{STATUS_COLOUR[status]}]{SHORT[status]}"


def _fixed(table: Table, header: str, width: int = 0, right: bool = False) -> None:
    """A column that is never squeezed (the title column alone gives way, cut with an ellipsis)."""
    table.add_column(header, justify="right" if right else "left", no_wrap=True, min_width=max(width, len(header)))


def _title(table: Table) -> None:
    """The column that gives way: its cells (one_line) are cut with an ellipsis, never wrapped."""
    table.add_column("title", overflow="ellipsis")


def one_line(text: str) -> Text:
    return Text(text, no_wrap=True, overflow="ellipsis")


def criteria_table(summary: list[dict]) -> Table:
    """Each criterion's status, its number of automated checks and their results (one per check and
    resource: pass, fail, error, excepted) — rows of evaluate's summary — one line per criterion at any
    width from 80 columns."""
    table = Table(title="Posture by criterion (automated checks and manual evidence)", show_lines=False,
                  pad_edge=False, collapse_padding=True,
                  caption="pass, fail, error, exc.: results, one per check and resource")
    _fixed(table, "criterion", 5)
    _title(table)
    _fixed(table, "status", 9)
    for col in ("checks", "pass", "fail", "error", "exc."):
        _fixed(table, col, right=True)
    for row in summary:
        table.add_row(escape(row["control"]), one_line(row["title"]), _status(row["status"]), str(row["checks"]),
                      f"[green]{row['PASS']}",
                      f"[red]{row['FAIL']}" if row["FAIL"] else "0",
                      f"[yellow]{row['ERROR']}" if row["ERROR"] else "0",
                      f"[magenta]{row.get('EXCEPTED', 0)}" if row.get("EXCEPTED") else "0")
    return table


def _categories(summary: list[dict], catalog: Catalog) -> Table:
    category = {c.id: c.category for c in catalog.controls}
    counts: dict[str, dict[str, int]] = {}
    for row in summary:
        mine = counts.setdefault(category.get(row["control"], "other"), dict.fromkeys(STATUSES, 0))
        mine[row["status"]] += 1
    table = Table(title="Criteria by category", pad_edge=False, collapse_padding=True)
    _fixed(table, "category", 20)
    for status in STATUSES:
        _fixed(table, SHORT[status], right=True)
    for name, by_status in counts.items():
        table.add_row(name, *(f"[{STATUS_COLOUR[s]}]{n}" if n and s != "PASS" else str(n)
                              for s, n in by_status.items()))
    return table


def _problems(summary: list[dict]) -> Optional[Table]:
    """The criteria that fail or err (the first LISTED of each, worst first), with their counts."""
    bad = [r for r in summary if r["status"] in ("FAIL", "ERROR")]
    if not bad:
        return None
    bad.sort(key=lambda r: (r["status"] != "FAIL", -r["FAIL"], -r["ERROR"], r["control"]))
    table = Table(title="Failing and erroring criteria", pad_edge=False, collapse_padding=True)
    _fixed(table, "criterion", 5)
    _fixed(table, "status", 5)
    _fixed(table, "checks", 6, right=True)
    _fixed(table, "fail/err", 8, right=True)
    _title(table)
    shown = [r for r in bad if r["status"] == "FAIL"][:LISTED] + [r for r in bad if r["status"] == "ERROR"][:LISTED]
    for row in shown:
        table.add_row(escape(row["control"]), _status(row["status"]), str(row["checks"]),
                      f"{row['FAIL']}/{row['ERROR']}", one_line(row["title"]))
    more = f"\nand {len(bad) - len(shown)} more (--details lists every criterion)" if len(shown) < len(bad) else ""
    table.caption = f"fail/err: results, one per check and resource{more}"
    return table


def posture_summary(summary: list[dict], catalog: Optional[Catalog] = None, *, run_id: Optional[int] = None,
                    store: Optional[str] = None, simulated: bool = False) -> Group:
    """The compact summary of a run's posture: one line of totals, the criteria per category, the
    failing and erroring criteria (at most LISTED of each), and where the results are (`store`: a
    URL already redacted). `catalog`: the one the run was evaluated with (default: controls.yaml)."""
    if catalog is None:
        from auditbook.catalog.model import load_catalog
        catalog = load_catalog()
    totals = {s: sum(1 for r in summary if r["status"] == s) for s in STATUSES}
    head = Text.from_markup(("[bold]SIMULATED[/] " if simulated else "")
                            + f"Posture: {len(summary)} criteria — "
                            + ", ".join(f"[{STATUS_COLOUR[s]}]{n} {s.replace('_', ' ').lower()}[/]"
                                        for s, n in totals.items() if n))
    parts: list = [head, _categories(summary, catalog)]
    problems = _problems(summary)
    if problems is not None:
        parts.append(problems)
    if run_id is not None:
        parts.append(Text.from_markup(
            (f"store: {escape(store)}\n" if store else "") + f"run id: {run_id}\n"
            f"  what fails, resource by resource: auditbook findings --run {run_id} --status FAIL\n"
            "  every criterion: --details; the control room: auditbook app"))
    return Group(*parts)
