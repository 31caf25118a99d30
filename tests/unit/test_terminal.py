"""The terminal at 80 columns (issue 13 §8): `auditbook scan` and the demo print a compact summary
(categories, the failing and erroring criteria, where the results are), the full per-criterion table
behind --details, and every table stays one line per row, no line wider than 80."""
import io

import pytest
from moto import mock_aws
from rich.console import Console
from typer.testing import CliRunner

from auditbook.catalog.model import load_catalog
from auditbook.cli.main import registered_app
from auditbook.evaluate.evaluator import summarise_stored
from auditbook.report.terminal import LISTED, criteria_table, posture_summary


def rendered(renderable, width: int = 80) -> list[str]:
    console = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    console.print(renderable)
    return console.export_text().splitlines()


@pytest.fixture(scope="module")
def summary():
    """The whole catalog: every fourth check failing, every seventh erring, and one criterion
    whose title carries Rich markup (it must be printed as text)."""
    catalog = load_catalog()
    rows = []
    for i, check in enumerate(catalog.checks):
        status = "FAIL" if i % 4 == 0 else "ERROR" if i % 7 == 0 else "PASS"
        rows.append({"controls": check.controls, "status": status})
    out = summarise_stored(catalog, rows, needs_evidence={"CC1.2"})
    out[0] = {**out[0], "title": "[bold red]injected[/] " + out[0]["title"]}
    return out


def test_compact_summary_is_short_and_fits_80_columns(summary):
    catalog = load_catalog()
    lines = rendered(posture_summary(summary, catalog))
    assert max(len(line) for line in lines) <= 80
    assert len(lines) <= 40, "\n".join(lines)  # the old per-criterion table wrapped into ~300 lines
    text = "\n".join(lines)
    for category in ("security", "availability", "confidentiality", "processing-integrity", "privacy"):
        assert category in text
    failing = sorted((r for r in summary if r["status"] == "FAIL"), key=lambda r: (-r["FAIL"], -r["ERROR"], r["control"]))
    assert failing and all(r["control"] in text for r in failing[:LISTED])
    if len([r for r in summary if r["status"] in ("FAIL", "ERROR")]) > len(failing[:LISTED]):
        assert "more (--details lists every criterion)" in text
    totals = f"{sum(r['status'] == 'FAIL' for r in summary)} fail"
    assert f"Posture: {len(summary)} criteria" in text and totals in text


def test_compact_summary_counts_criteria_per_category(summary):
    catalog = load_catalog()
    text = "\n".join(rendered(posture_summary(summary, catalog), width=120))
    security = [c.id for c in catalog.controls if c.category == "security"]
    fails = sum(1 for r in summary if r["control"] in security and r["status"] == "FAIL")
    passes = sum(1 for r in summary if r["control"] in security and r["status"] == "PASS")
    row = next(line for line in text.splitlines() if line.strip("│ ").startswith("security"))
    assert row.replace("│", " ").split()[1:3] == [str(passes), str(fails)]


def test_full_table_is_one_line_per_criterion_at_80_columns(summary):
    lines = rendered(criteria_table(summary))
    assert max(len(line) for line in lines) <= 80
    assert len(lines) <= len(summary) + 6, f"{len(lines)} lines for {len(summary)} criteria"
    for row in summary:
        assert sum(line.replace("│", " ").split()[:1] == [row["control"]] for line in lines) == 1, row["control"]


def test_untrusted_titles_are_printed_as_text(summary):
    lines = rendered(criteria_table(summary), width=200)
    assert any("[bold red]injected[/]" in line for line in lines)


def test_scan_prints_the_compact_summary_and_details_on_request(tmp_path, monkeypatch):
    """`auditbook scan` on an (empty) in-process moto account: compact by default, the full table
    with --details, both within 80 columns."""
    from tests.conftest import FAKE_ENV
    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("AUDITBOOK_EXECUTOR", "inline")  # in-process moto: seen by this process alone
    app, db = registered_app(), f"sqlite:///{tmp_path}/s.db"
    with mock_aws():
        compact = CliRunner().invoke(app, ["scan", "--regions", "us-east-1", "--db", db])
        details = CliRunner().invoke(app, ["scan", "--regions", "us-east-1", "--db", db, "--details"])
    assert compact.exit_code == 0, compact.output
    assert details.exit_code == 0, details.output
    assert "Criteria by category" in compact.stdout and "Posture by criterion" not in compact.stdout
    assert "run id: 1" in compact.stdout and "auditbook findings --run 1 --status FAIL" in compact.stdout
    assert "Posture by criterion" in details.stdout and "run id: 2" in details.stdout
    table = details.stdout[details.stdout.index("Posture by criterion"):details.stdout.index("run 2:")]
    assert max(len(line) for line in table.splitlines()) <= 80
    assert len(compact.stdout.splitlines()) < 45 < len(details.stdout.splitlines())


def test_failing_counts_are_results_beside_the_number_of_checks_never_n_of_fewer():
    """A criterion's failing results (one per check and resource) can outnumber its checks: the
    compact table shows them in their own column, never as "9 of 8"."""
    summary = [{"control": "CC8.1", "title": "Changes authorised", "checks": 8, "PASS": 3, "FAIL": 9, "ERROR": 0,
                "EXCEPTED": 0, "status": "FAIL"}]
    text = "\n".join(rendered(posture_summary(summary)))
    assert " of 8" not in text and "9/0" in text and "results, one per check and resource" in text
