"""The period's deviations as a packet holds them: every failure stretch once, in data/failures.csv (one
row per stretch of one check on one resource, with its deviation id and every criterion it touches, sorted
by check), and data/deviations.json, where a failure stretch is referenced by that id (its kind, criteria,
check, start, state, whether it existed at the period's start and management's response) rather than
repeated; an alert not triaged in time is referenced the same way, its alert and triage being its row of
data/population-alerts.csv; the other deviations (manual evidence, accounts not scanned, monitoring
gaps, intervals no CloudTrail log covered) are there in full."""
from __future__ import annotations

import csv
from pathlib import Path

from auditbook.history.populations import neutralised

FAILURES_FILE = "failures.csv"
ALERTS_FILE = "population-alerts.csv"  # an alert-triage deviation's alert, with its triage (history.populations)
FAILURE_COLUMNS = ("id", "check", "criteria", "severity", "account", "region", "resource", "resource_name",
                   "first_seen", "until", "state", "days_to_remediate", "existed_at_start", "management_response",
                   "message")
# what a failure deviation keeps in deviations.json: the rest of the stretch is its row of failures.csv
REFERENCE_KEYS = ("id", "kind", "criteria", "check", "from", "state", "existed_at_start",
                  "existed_at_start_computed", "existed_at_start_overridden", "response", "response_text")


def _cell(value, judged: dict) -> str:
    """One cell as CSV text a spreadsheet cannot run; `judged`: the texts of this file judged so far (a
    check's message, an account, a state repeat down 40,000 rows)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    text = value if type(value) is str else str(value)
    found = judged.get(text)
    if found is None:
        found = judged[text] = neutralised(text)
    return found


_SOURCE = {"first_seen": "from", "management_response": "response_text", "message": "what"}  # column -> key


def _failure_row(dev: dict, judged: dict) -> list[str]:
    return [_cell(dev.get(_SOURCE.get(column, column)), judged) for column in FAILURE_COLUMNS]


def packet_deviations(found: list[dict]) -> tuple[list[dict], list[dict]]:
    """(deviations.json's list, the failure stretches for failures.csv) from history.deviations.deviations."""
    listed, failures = [], []
    for dev in found:
        if dev["kind"] == "failure":
            failures.append(dev)
            listed.append({**{k: dev.get(k) for k in REFERENCE_KEYS}, "stretch": f"data/{FAILURES_FILE}"})
        elif dev["kind"] == "alert triage":  # the alert, its triage and times: its row of the alerts population
            listed.append({**{k: dev.get(k) for k in REFERENCE_KEYS}, "until": dev.get("until"),
                           "alert": dev["resource"], "row": f"data/{ALERTS_FILE}"})
        else:
            listed.append(dev)
    failures.sort(key=lambda d: (d["check"] or "", d["from"] or "", d["account"] or "", d["resource"] or ""))
    return listed, failures


def write_failures(failures: list[dict], path: Path) -> None:
    """data/failures.csv: the stretches, formula cells neutralised (resource names and messages are untrusted)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(FAILURE_COLUMNS)
        judged: dict[str, str] = {}
        out.writerows(_failure_row(d, judged) for d in failures)
