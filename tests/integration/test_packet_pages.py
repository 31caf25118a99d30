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
    assert evil[0]["status"] == "FAIL" and "tcp 22 open to 0.0.0.0/0" in evil[0]["message"]
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


@pytest.fixture(scope="module")
def index_page(history_store, tmp_path_factory):
    """The index page rendered as `auditbook packet` renders it, after a packet approved while a criterion
    waits for review and the assertion is only prepared (auditor's finding 4)."""
    import datetime as dt

    import papermill as pm

    from auditbook.auth import Actor
    from auditbook.catalog.model import load_catalog
    from auditbook.history import signoffs
    from auditbook.history.gaps import explain_gap
    from auditbook.history.period import parse_period
    from auditbook.report.packet.render import notebook_html
    from auditbook.store.db import open_engine
    engine, catalog = open_engine(history_store["db"]), load_catalog(history_store["catalog"])
    period, ana, sam = parse_period(start=PERIOD[0], end=PERIOD[1]), Actor("ana", "analyst"), Actor("sam", "approver")
    for subject in ("packet", "CC6.6", "assertion"):
        signoffs.prepare(engine, catalog, ana, period, subject)
    signoffs.review(engine, catalog, sam, period, "packet", "approved")
    explain_gap(engine, Actor("ada", "admin"), "2026-07-05", "2026-07-05", "scanner host patched", today=dt.date(2026, 7, 7))
    root = tmp_path_factory.mktemp("index")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUDITBOOK_DB", history_store["db"])
        env.setenv("AUDITBOOK_CATALOG", str(history_store["catalog"]))
        nb = pm.execute_notebook(str(NOTEBOOKS / "packet_index.ipynb"), str(root / "out.ipynb"), cwd=str(root),
                                 parameters={"period_start": PERIOD[0], "period_end": PERIOD[1],
                                             "catalog": str(history_store["catalog"]), "packet_dir": str(root / "packet")},
                                 progress_bar=False)
    return notebook_html(nb, "", "index")


def _text_of(page: str) -> str:
    """The page's words: no scripts or styles, tags dropped, entities decoded."""
    import re
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_the_index_states_what_the_packet_signoff_does_not_cover(index_page):
    words = " ".join(_text_of(index_page).split())
    assert "Packet sign-off: reviewed" in words
    assert "What remains — the packet's sign-off and the management assertion do not cover it:" in words
    assert "3 of the 3 criteria are not signed off — never prepared (2): " in words
    assert "waiting for review (1): CC6.6" in words
    assert "the management assertion is not signed off (waiting for review)" in words
    assert "have no management response (" in words and "deviations without a management response" in words


def test_the_index_carries_the_redraw_method(index_page):
    assert '<h2 id="redraw-samples">Re-drawing a sample from this packet</h2>' in index_page
    assert "# completeness" in index_page and "python-random-sample/1" in index_page
    assert "docs/samples.md" not in _text_of(index_page)


def test_the_index_labels_the_end_of_period_status_and_reads_for_a_person(index_page):
    import re
    # the end-of-period status says so, next to the conclusion over the period (finding 12)
    assert re.search(r"<th>status at period end</th>\s*<th>conclusion over the period</th>", index_page)
    # no Python flags, raw enums or ISO times in the tables (finding 19)
    cells = re.findall(r"<td>(.*?)</td>", index_page, flags=re.S)
    assert cells and "<td>yes</td>" in index_page
    assert not [c for c in cells if c in ("True", "False")]
    assert "NEEDS_EVIDENCE" not in _text_of(index_page).replace("ab-NEEDS_EVIDENCE", "")
    assert not re.search(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", " ".join(cells))
    gap = re.search(r"<tr><td>2026-07-05</td>.*?</tr>", index_page, flags=re.S).group(0)
    assert "scanner host patched" in gap and re.search(r"<td>\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC</td>", gap)


def test_a_page_names_only_data_files_the_packet_holds(capped_page, signed_packet):
    """An auditor read "A long list is in data/latest-run<RUN>-<check>.csv" on every page, a file no
    packet held: no page says so, and every data file any page of a built packet links is in it."""
    import html as _html
    import re
    assert "latest-run<RUN>" not in _html.unescape(capped_page["html"])
    pages = [signed_packet / "index.html", *(signed_packet / "criteria").glob("*.html")]
    assert sum(bool(re.findall(r'href="\.\./data/', p.read_text(encoding="utf-8"))) for p in pages) >= 3
    for page in pages:
        linked = set(re.findall(r'href="(?:\.\./)?data/([^"#]+)"', page.read_text(encoding="utf-8")))
        missing = {name for name in linked if not (signed_packet / "data" / _html.unescape(name)).is_file()}
        assert not missing, (page.name, missing)
