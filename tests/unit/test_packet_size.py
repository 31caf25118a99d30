"""Issue 14 §10, the packet's size and its pages' load: every failure stretch once (data/failures.csv,
referenced by id from data/deviations.json), a check shared by criteria written once, figures kept as
inert JSON drawn by the shared plotly.js after the page loads, and the executed notebooks kept without
repeating their pages' outputs (their metadata binds the page's bytes)."""
import csv
import hashlib
import json
from pathlib import Path

import nbformat
import pandas as pd

from auditbook.report import page_helpers as nbh
from auditbook.report.packet.deviation_files import (
    FAILURE_COLUMNS,
    packet_deviations,
    write_failures,
)
from auditbook.report.packet.render import figure_html, page_outputs_removed


def _failure(ident, check, criteria, resource="sg-1", name="web", message="found x"):
    return {"id": ident, "kind": "failure", "criteria": criteria, "check": check, "item": None, "account": "111122223333",
            "region": "us-east-1", "resource": resource, "resource_name": name, "severity": "high", "what": message,
            "from": "2026-07-01T00:00:00+00:00", "until": None, "state": "open", "days_to_remediate": None,
            "existed_at_start_computed": True, "existed_at_start": True, "existed_at_start_overridden": False,
            "response": None, "response_text": "no management response"}


def test_failure_stretches_are_listed_once_and_referenced_by_id(tmp_path):
    manual = {"id": "b" * 16, "kind": "manual evidence", "criteria": ["CC1.1"], "check": None, "item": "Code of conduct",
              "what": "missing from 2026-07-01 to 2026-07-06", "from": "2026-07-01", "response": None}
    found = [_failure("a" * 16, "ec2-sg-no-public-ingress", ["CC6.1", "CC6.6"], name="=HYPERLINK(\"x\")"),
             manual, _failure("c" * 16, "aaa-check", ["CC6.6"], resource="sg-2")]
    listed, failures = packet_deviations(found)
    assert [d["id"] for d in listed] == ["a" * 16, "b" * 16, "c" * 16]  # every deviation is still listed
    reference = listed[0]
    assert reference["stretch"] == "data/failures.csv" and reference["criteria"] == ["CC6.1", "CC6.6"]
    for repeated in ("what", "resource_name", "resource", "account", "severity", "until"):
        assert repeated not in reference  # the stretch itself is its row of failures.csv
    assert listed[1] == manual  # other deviations in full
    write_failures(failures, tmp_path / "failures.csv")
    with open(tmp_path / "failures.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(FAILURE_COLUMNS)
    assert [r["check"] for r in rows] == ["aaa-check", "ec2-sg-no-public-ingress"]  # by check
    shared = rows[1]
    assert (shared["id"], shared["criteria"], shared["existed_at_start"]) == ("a" * 16, "CC6.1 CC6.6", "yes")
    assert shared["resource_name"] == "'=HYPERLINK(\"x\")"  # inert in a spreadsheet
    assert shared["management_response"] == "no management response" and shared["message"] == "found x"


def test_an_alert_triage_deviation_is_a_reference_to_its_alerts_population_row():
    """A year of alerts not triaged in time doubled deviations.json (every alert's text and triage
    again): the alert and its triage are its row of data/population-alerts.csv."""
    dev = {"id": "d" * 16, "kind": "alert triage", "criteria": ["CC7.3"], "check": None, "from": "2026-07-02T10:00:00",
           "until": None, "state": "not triaged", "existed_at_start": False, "response": None, "response_text": None,
           "resource": "alert-000000042", "what": "alert 42 RootAccountUsage (critical): … — not triaged",
           "triage": {"decision": None, "target_minutes": 15}}
    (listed,), failures = packet_deviations([dev])
    assert failures == [] and listed["alert"] == "alert-000000042" and listed["row"] == "data/population-alerts.csv"
    assert (listed["state"], listed["criteria"], listed["from"]) == ("not triaged", ["CC7.3"], dev["from"])
    assert "what" not in listed and "triage" not in listed


def test_a_figure_is_inert_json_that_cannot_close_its_script():
    fig = {"data": [{"type": "bar", "x": ["</script><script>alert(1)</script>"], "y": [1]}],
           "layout": {"height": 300, "title": {"text": "a & b"}}}
    out = figure_html(fig, "fig-3-0")
    assert out.startswith('<div id="fig-3-0" class="ab-chart" style="height:300px;width:100%"></div>')
    assert "</script>" not in out.split('data-figure="fig-3-0">', 1)[1][:-len("</script>")]
    assert "<script>alert" not in out and 'type="application/json"' in out
    spec = out.split('data-figure="fig-3-0">', 1)[1][:-len("</script>")]
    assert json.loads(spec) == fig  # the browser's JSON.parse reads back the same figure
    assert 'style="height:450px' in figure_html({"data": [], "layout": {"height": "1e9"}}, "f")  # no height from text


def test_the_packet_notebook_keeps_code_and_errors_but_not_the_pages_outputs():
    nb = nbformat.v4.new_notebook()
    shown = nbformat.v4.new_code_cell("display(table)")
    shown.outputs = [nbformat.v4.new_output("display_data", data={"text/html": "<table>…</table>"}),
                     nbformat.v4.new_output("stream", name="stdout", text="collected run 7\n")]
    failed = nbformat.v4.new_code_cell("1/0")
    failed.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                             traceback=[]),
                      nbformat.v4.new_output("execute_result", data={"text/plain": "x"}, execution_count=2)]
    nb.cells = [nbformat.v4.new_markdown_cell("# x"), shown, failed]
    page = "<html>the page</html>"
    kept = page_outputs_removed(nb, "criteria/CC6.6.html", page)
    assert [o["output_type"] for o in kept.cells[1].outputs] == ["stream"]
    assert [o["output_type"] for o in kept.cells[2].outputs] == ["error"]
    assert kept.cells[1].source == "display(table)"
    meta = kept.metadata["auditbook"]
    assert meta["page"] == "criteria/CC6.6.html" and meta["display_outputs_removed"] == 2
    assert meta["page_sha256"] == hashlib.sha256(page.encode()).hexdigest()
    nbformat.validate(kept)


def test_a_check_shared_by_criteria_is_written_once_per_check(tmp_path):
    df = pd.DataFrame([{"check": "b-check", "resource": "r1", "status": "FAIL"},
                       {"check": "a-check", "resource": "r2", "status": "PASS"},
                       {"check": "b-check", "resource": "=1+1", "status": "PASS"}])
    names = nbh.check_csvs(df, str(tmp_path), "latest-run7")
    assert names == ["latest-run7-a-check.csv", "latest-run7-b-check.csv"]
    again = nbh.check_csvs(df[df["check"] == "b-check"], str(tmp_path), "latest-run7")  # another criterion
    assert again == ["latest-run7-b-check.csv"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == names  # no temporary file left behind
    rows = (tmp_path / "data" / "latest-run7-b-check.csv").read_text().splitlines()
    assert rows == ["check,resource,status", "b-check,r1,FAIL", "b-check,'=1+1,PASS"]
    assert nbh.check_csvs(df, None, "latest-run7") == []  # outside a packet nothing is written


def test_a_capped_table_links_every_file_of_its_full_list():
    line = nbh.capped_line(200, 950, ["latest-run7-a.csv", "latest-run7-<b>.csv"])
    assert "Showing 200 of 950 rows; the full list by check: " in line
    assert 'href="../data/latest-run7-a.csv"' in line and "data/latest-run7-&lt;b&gt;.csv" in line
    assert nbh.capped_line(1, 2, "failures.csv").endswith(
        'the full list: <a class="ab-full" href="../data/failures.csv">data/failures.csv</a>.</p>')


def test_the_packets_plotly_bundle_is_the_plotly_packages_version_and_draws_heatmaps(tmp_path):
    """The packet ships plotly.js's cartesian bundle (a third of the full one to parse); it must be the
    version the plotly package builds figures for, and hold every trace type the pages draw."""
    import plotly

    from auditbook.report.packet.render import (
        PLOTLY_BUNDLE,
        PLOTLY_JS_VERSION,
        write_assets,
    )
    full = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()[:200]
    bundle = PLOTLY_BUNDLE.read_text()
    assert f"v{PLOTLY_JS_VERSION}" in full and f"(cartesian - minified) v{PLOTLY_JS_VERSION}" in bundle[:200]
    assert all(f'"{trace}"' in bundle for trace in ("bar", "heatmap", "scatter"))
    assert (PLOTLY_BUNDLE.parent / "plotly-cartesian.LICENSE").read_text().startswith("MIT License")
    write_assets(tmp_path / "assets")
    assert (tmp_path / "assets" / "plotly.min.js").read_bytes() == PLOTLY_BUNDLE.read_bytes()
