"""A packet organised by the company's controls (`auditbook packet --by company`, issue 14 §8): one page
per control of the company's library, company/<ID>.html — its statement, owner, frequency and status (the
worst of its criteria's, history.company_controls), each mapped criterion with its status and its
conclusion over the period linked to the criterion's page, the mapped automated checks (the condition in
words and the expression) and the mapped manual evidence items with their state at the period's end.
The pages are listed in the manifest and signed like every other file. Every value is escaped
(page_helpers); the statement and owner are the company's free text."""
from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from pathlib import Path

import pandas as pd

from auditbook.catalog.model import Catalog, CompanyControl, split_item
from auditbook.history.company_controls import company_rows
from auditbook.history.period import Period, PeriodRuns
from auditbook.history.period_evidence import manual_evidence
from auditbook.report import page_helpers as nbh

BY = ("criteria", "company")  # how a packet is organised: `--by`

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="../assets/notebook.css"></head>
<body class="jp-Notebook"><main><div class="jp-RenderedHTMLCommon">
{body}
</div></main></body></html>
"""


def company_page_path(control_id: str) -> str:
    return f"company/{control_id}.html"


def conclusions(deviations: list[dict]) -> Counter:
    """Deviations of the period per criterion (a failure stretch of a check shared by criteria counts for each)."""
    return Counter(c for d in deviations for c in d["criteria"])


def _criteria_table(row: dict, by_criterion: dict, exceptions: Counter) -> str:
    def link(cid: str) -> str:
        label = html.escape(cid)
        return f'<a href="../criteria/{label}.html">{label}</a>'
    rows = [{"criterion": cid, "title": by_criterion[cid]["title"], "status": row["criterion_status"][cid],
             "conclusion over the period": (f"exceptions noted: {exceptions[cid]}" if exceptions[cid]
                                            else "no exceptions noted"),
             "failure stretches": by_criterion[cid]["failures"], "still open": by_criterion[cid]["open_failures"],
             "manual items not current": by_criterion[cid]["manual_missing_or_expired"]} for cid in row["criteria"]]
    return nbh.table(pd.DataFrame(rows), render={"criterion": link, "status": nbh.status}).data


def _checks_table(catalog: Catalog, company: CompanyControl) -> str:
    checks = [c for c in catalog.checks if c.id in set(company.checks)]
    return nbh.table(nbh.check_conditions(checks), empty="No automated checks are mapped to this control.",
                     render={"expression": nbh.code}).data


def _items_table(engine, catalog: Catalog, company: CompanyControl, period: Period, today) -> str:
    wanted = [split_item(item) for item in company.manual_items]
    states = {}
    for cid in sorted({cid for cid, _ in wanted}):
        for item in manual_evidence(engine, catalog, cid, period, today=today)["items"]:
            states[(cid, item["item"])] = item
    rows = [{"criterion": cid, "item": name, "state_at_period_end": states.get((cid, name), {}).get("state_at_period_end"),
             "due": states.get((cid, name), {}).get("due")} for cid, name in wanted]
    return nbh.table(pd.DataFrame(rows), empty="No manual evidence items are mapped to this control.").data


def company_page(engine, catalog: Catalog, company: CompanyControl, row: dict, by_criterion: dict,
                 exceptions: Counter, period: Period, pruns: PeriodRuns, today: dt.date) -> str:
    """One company control's page (HTML)."""
    parts = [nbh.text("<h1>{id} — company control</h1><p>{statement}</p><p>owner: {owner} · frequency: {frequency} · "
                      '<a href="../index.html">packet index</a></p>', id=company.id, statement=company.statement,
                      owner=company.owner, frequency=company.frequency).data,
             nbh.coverage(pruns.coverage(today)).data]
    banner = nbh.simulated_banner(pruns.runs)
    if banner is not None:
        parts.append(banner.data)
    open_criteria = sum(1 for c in company.criteria if exceptions[c])
    parts += [f'<p id="company-status">Status: {nbh.status(row["status"])} (the worst of its criteria\'s statuses '
              f"at the period's end) · criteria with exceptions noted over the period: {open_criteria} of "
              f"{len(company.criteria)}</p>",
              "<h2>Criteria</h2>", _criteria_table(row, by_criterion, exceptions),
              "<h2>Automated checks</h2>", _checks_table(catalog, company),
              "<h2>Manual evidence</h2>", _items_table(engine, catalog, company, period, today)]
    return PAGE.format(title=html.escape(f"{company.id} — auditbook packet"), body="\n".join(parts))


def write_company_pages(engine, catalog: Catalog, root: Path, period: Period, pruns: PeriodRuns, today: dt.date,
                        overview_rows: list[dict], deviations: list[dict]) -> list[dict]:
    """company/<ID>.html for each control of the company's library; [{"id", "page"}] for the manifest."""
    by_criterion = {r["criterion"]: r for r in overview_rows}
    rows = {r["id"]: r for r in company_rows(catalog, overview_rows)}
    exceptions = conclusions(deviations)
    (root / "company").mkdir()
    listed = []
    for company in catalog.company_controls:
        page = company_page(engine, catalog, company, rows[company.id], by_criterion, exceptions, period, pruns, today)
        (root / company_page_path(company.id)).write_text(page, encoding="utf-8")
        listed.append({"id": company.id, "page": company_page_path(company.id)})
    return listed
