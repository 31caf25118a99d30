"""Issue 14 §10 and §4, pages that scale and read well: the control notebook, executed with papermill on
the packet tests' store (tests/packet_store.py) with a cap of one row, renders a CC6.6 page whose long
tables show the cap line and link the CSVs in data/ holding every row (the latest findings one file per
check; the failure stretches the packet's one list, data/failures.csv); and its per-check table states the
condition each check evaluates (the expression, the words, the remediation)."""
import csv
import html

import pytest

from auditbook.report.packet.build import NOTEBOOKS
from tests.packet_store import EVIL, PERIOD


@pytest.fixture(scope="module")
def capped_page(history_store, tmp_path_factory):
    """The CC6.6 page rendered as `auditbook packet` renders it, every long table capped at one row."""
    import papermill as pm

    from auditbook.report.packet.render import notebook_html
    root = tmp_path_factory.mktemp("pages")
    packet = root / "packet"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUDITBOOK_DB", history_store["db"])
        env.setenv("AUDITBOOK_CATALOG", str(history_store["catalog"]))
        nb = pm.execute_notebook(str(NOTEBOOKS / "control.ipynb"), str(root / "out.ipynb"), cwd=str(root),
                                 parameters={"criterion": "CC6.6", "period_start": PERIOD[0], "period_end": PERIOD[1],
                                             "packet_dir": str(packet), "rows_shown": 1}, progress_bar=False)
    return {"html": notebook_html(nb, "../", "CC6.6"), "data": packet / "data"}


def _history(history_store):
    from auditbook.catalog.model import load_catalog
    from auditbook.history.period import parse_period, period_runs
    from auditbook.history.type2 import criterion_history
    from auditbook.store.db import open_engine
    engine, catalog = open_engine(history_store["db"]), load_catalog(history_store["catalog"])
    runs = period_runs(engine, parse_period(start=PERIOD[0], end=PERIOD[1]))
    return catalog, criterion_history(engine, catalog, "CC6.6", runs)


def _rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_long_tables_are_capped_with_a_link_to_a_csv_of_every_row(history_store, capped_page):
    _, report = _history(history_store)
    page = capped_page["html"]
    # the failure stretches: the packet's one list of them (data/failures.csv, written by the build)
    assert len(report.failures) > 1  # more rows than the cap
    assert (f'Showing 1 of {len(report.failures)} rows; the full list: <a class="ab-full" '
            'href="../data/failures.csv">data/failures.csv</a>.') in page
    assert not list(capped_page["data"].glob("*failures*"))
    # the latest run's findings: one file per check, every row, linked from the line over the table
    names = [f"latest-run{report.latest_run}-{c}.csv" for c in sorted({e["check"] for e in report.latest})]
    assert len(names) > 1 and len(report.latest) > 1
    links = ", ".join(f'<a class="ab-full" href="../data/{n}">data/{n}</a>' for n in names)
    assert f"Showing 1 of {len(report.latest)} rows; the full list by check: {links}." in page
    rows = [r for n in names for r in _rows(capped_page["data"] / n)]
    assert sorted((r["check"], r["resource"]) for r in rows) == sorted((e["check"], e["resource"]) for e in report.latest)
    # the population: the whole list, already in data/, is linked the same way
    population = _rows(capped_page["data"] / "CC6.6-population.csv")
    assert len(population) > 1
    assert f'Showing 1 of {len(population)} rows; the full list: <a class="ab-full" href="../data/CC6.6-population.csv">' in page
    # the failing finding's message names the offending value, and the hostile name stays inert
    latest = _rows(capped_page["data"] / f"latest-run{report.latest_run}-ec2-sg-no-public-ingress.csv")
    evil = [r for r in latest if r["resource_name"] == EVIL and r["check"] == "ec2-sg-no-public-ingress"]
    assert evil[0]["status"] == "FAIL" and '"from_port": 22' in evil[0]["message"]
    assert EVIL not in page


def test_the_per_check_table_states_each_checks_condition(history_store, capped_page):
    catalog, _ = _history(history_store)
    page = capped_page["html"]
    checks = catalog.checks_for("CC6.6")
    assert checks
    for check in checks:
        expression = check.expect if check.expect is not None else f"function: {check.function}"
        assert f"<code>{html.escape(expression)}</code>" in page, check.id
        assert html.escape(check.title) in page and html.escape(check.remediation) in page
    assert "<th>condition (in words)</th><th>expression</th>" in page


def test_a_tables_csv_is_inert_in_a_spreadsheet_and_stays_in_data(tmp_path):
    import pandas as pd

    from auditbook.report.page_helpers import data_csv
    df = pd.DataFrame([{"resource_name": '=HYPERLINK("http://x","y")', "evidence": ["a" * 64, "b" * 64]}])
    assert data_csv(df, str(tmp_path), "X-latest.csv") == "X-latest.csv"
    assert _rows(tmp_path / "data" / "X-latest.csv") == [
        {"resource_name": '\'=HYPERLINK("http://x","y")', "evidence": "a" * 64 + " " + "b" * 64}]
    with pytest.raises(ValueError, match="plain file name"):
        data_csv(df, str(tmp_path), "../escaped.csv")
    assert data_csv(df, None, "X-latest.csv") is None  # outside a packet nothing is written
