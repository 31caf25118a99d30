"""The company's own controls over a period (issue 14 §8, docs/company-controls.md): per control of the
company's library, its words, owner and frequency, the criteria, checks and manual items it maps to,
and its status — never a second status rule: the worst of its criteria's statuses as the packet
computes them (history.type2.overview, whose status is history.status.status_of), ranked by that
same function (evaluate.evaluator.criterion_status: a failure outranks an evidence gap, which
outranks evidence needed, which outranks an accepted exception, before pass)."""
from __future__ import annotations

import datetime as dt
from typing import Iterable, Mapping, Optional

from auditbook.catalog.model import Catalog, CompanyControl, split_item
from auditbook.history.period import PeriodRuns
from auditbook.history.status import FINDING_STATUSES, NO_DATA, counts_of, status_of
from auditbook.history.type2 import overview

NEEDS_EVIDENCE = "NEEDS_EVIDENCE"
KNOWN = (*FINDING_STATUSES, NEEDS_EVIDENCE, NO_DATA)


def worst_status(statuses: Iterable[str]) -> str:
    """The worst of criteria's statuses, by the one status rule (history.status.status_of): the
    statuses stand in for findings, NEEDS_EVIDENCE for a required item not current. A criterion with
    no data makes a control otherwise passing NO_DATA (never PASS); an unknown status is an error."""
    statuses = list(statuses)
    unknown = [s for s in statuses if s not in KNOWN]
    if unknown or not statuses:
        raise ValueError(f"no status rule for {unknown or 'no criteria'}")
    found = [{"status": s} for s in statuses if s in FINDING_STATUSES]
    status = status_of(counts_of(found) if found else None,
                       ["missing"] if NEEDS_EVIDENCE in statuses else [])
    return NO_DATA if NO_DATA in statuses and status in ("PASS", "EXCEPTED") else status


def company_rows(catalog: Catalog, criterion_rows: Iterable[Mapping]) -> list[dict]:
    """One row per company control from the packet's per-criterion rows (each with "criterion" and
    "status", e.g. history.type2.overview's): its mapping, each criterion's status and its own."""
    by_criterion = {row["criterion"]: row for row in criterion_rows}
    return [_row(company, by_criterion) for company in catalog.company_controls]


def _row(company: CompanyControl, by_criterion: Mapping[str, Mapping]) -> dict:
    missing = [c for c in company.criteria if c not in by_criterion]
    if missing:
        raise ValueError(f"company control {company.id}: no status for {', '.join(missing)}")
    rows = [by_criterion[c] for c in company.criteria]
    statuses = {c: row["status"] for c, row in zip(company.criteria, rows)}
    return {"id": company.id, "statement": company.statement, "owner": company.owner,
            "frequency": company.frequency, "criteria": list(company.criteria), "checks": list(company.checks),
            "manual_items": list(company.manual_items), "criterion_status": statuses,
            "status": worst_status(statuses.values()), **_own_failures(company, by_criterion)}


def _own_failures(company: CompanyControl, by_criterion: Mapping[str, Mapping]) -> dict:
    """The failure stretches of the company control's own checks over the period, each check once
    (a check shared by criteria is one list of stretches, not one per criterion): never its
    criteria's totals, which count other controls' checks too."""
    per_check: dict[str, list[int]] = {}
    for row in by_criterion.values():
        per_check.update(row.get("failures_by_check") or {})
    mine = [per_check[c] for c in company.checks if c in per_check]
    states = [by_criterion[criterion].get("manual_item_states", {}).get(item)
              for criterion, item in map(split_item, company.manual_items) if criterion in by_criterion]
    return {"failures": sum(f for f, _open in mine), "open_failures": sum(o for _f, o in mine),
            "manual_missing_or_expired": sum(1 for s in states if s != "current")}


def company_overview(engine, catalog: Catalog, pruns: PeriodRuns, today: Optional[dt.date] = None) -> list[dict]:
    """Every company control over the period, from the criteria overview the packet's index shows."""
    if not catalog.company_controls:
        return []
    return company_rows(catalog, overview(engine, catalog, pruns, today=today))
