"""Reports for the terminal: the per-criterion posture table the CLI and the demo print."""
from __future__ import annotations

from rich.markup import escape
from rich.table import Table

STATUS_COLOUR = {"PASS": "green", "FAIL": "red", "ERROR": "yellow", "NEEDS_EVIDENCE": "cyan", "EXCEPTED": "magenta"}


def criteria_table(summary: list[dict]) -> Table:
    """Each criterion's status and the counts of its automated checks (rows of evaluate's summary)."""
    table = Table(title="Posture by criterion (automated checks and manual evidence)", show_lines=False)
    for col in ("criterion", "title", "status", "checks", "pass", "fail", "error", "excepted"):
        table.add_column(col, justify="left" if col in ("criterion", "title", "status") else "right")
    for row in summary:
        table.add_row(escape(row["control"]), escape(row["title"]),
                      f"[{STATUS_COLOUR[row['status']]}]{row['status'].replace('_', ' ').lower()}", str(row["checks"]),
                      f"[green]{row['PASS']}",
                      f"[red]{row['FAIL']}" if row["FAIL"] else "0",
                      f"[yellow]{row['ERROR']}" if row["ERROR"] else "0",
                      f"[magenta]{row.get('EXCEPTED', 0)}" if row.get("EXCEPTED") else "0")
    return table
