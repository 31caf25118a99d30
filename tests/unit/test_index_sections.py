"""The packet index reads right (auditor's findings 4, 11, 12, 19): what the sign-offs do not cover is
stated beside them; the re-draw method on the index re-draws a recorded sample from the packet's files
alone (a change population with "# completeness" lines and hostile cells); flags, statuses and times
render for a reader, not as Python values."""
import datetime as dt
import json

import pandas as pd

from auditbook.history.period import parse_period
from auditbook.history.populations import Population, rows_sha256, write_csv
from auditbook.history.sampling import ALGORITHM, draw
from auditbook.report import page_helpers as nbh
from auditbook.report.packet.index_sections import (
    REDRAW_CODE,
    outstanding,
    outstanding_html,
    redraw_html,
)

COLUMNS = ("id", "event_id", "at", "account", "region", "event_source", "event_name", "principal",
           "principal_type", "session_name", "source_ip", "error_code", "resources", "ticket",
           "ticket_from", "linked", "simulated")


def _state(state):
    return {"state": state, "preparer": None, "reviewer": None, "decision": None}


def _signed(criteria, assertion="prepared", packet="reviewed", changed=False):
    return {"criteria": {c: _state(s) for c, s in criteria.items()}, "packet": _state(packet),
            "assertion": {"signoff": _state(assertion), "text_changed": changed}}


def test_what_remains_names_unsigned_criteria_unanswered_deviations_and_the_assertion():
    signed = _signed({"CC6.1": "reviewed", "CC6.3": "changes requested", "CC7.3": "prepared", "CC1.1": "unsigned"})
    devs = [{"id": "a1", "kind": "failure", "response": None}, {"id": "b2", "kind": "failure", "response": {"x": 1}},
            {"id": "c3", "kind": "manual evidence", "response": None}]
    out = outstanding(signed, devs)
    assert out["criteria_not_signed_off"] == {"changes requested": ["CC6.3"], "prepared": ["CC7.3"],
                                              "unsigned": ["CC1.1"]}
    assert out["deviations_without_response"] == ["a1", "c3"]
    assert out["without_response_by_kind"] == {"failure": 1, "manual evidence": 1}
    assert out["assertion_signed_off"] is False and out["packet_state"] == "reviewed"
    page = outstanding_html(out)
    assert "What remains — the packet&#x27;s sign-off and the management assertion do not cover it" in page
    assert "3 of the 4 criteria are not signed off" in page
    assert "changes requested (1): CC6.3" in page and "waiting for review (1): CC7.3" in page
    assert "never prepared (1): CC1.1" in page
    assert "2 of the 3 deviations of the period have no management response (failure 1, manual evidence 1" in page
    assert "the management assertion is not signed off (waiting for review)" in page


def test_an_assertion_signed_before_its_text_changed_is_not_signed_off():
    out = outstanding(_signed({"CC6.1": "reviewed"}, assertion="reviewed", changed=True), [])
    assert out["assertion_signed_off"] is False
    assert "not signed off (signed off; its text changed" not in outstanding_html(out)
    assert "its text changed since it was prepared" in outstanding_html(out)
    done = outstanding_html(outstanding(_signed({"CC6.1": "reviewed"}, assertion="reviewed"), []))
    assert "Everything the packet" in done and "every one of the 1 criteria is signed off" in done


def test_the_redraw_code_on_the_index_redraws_a_sample_from_the_packet_files(tmp_path, monkeypatch):
    base = {c: "" for c in COLUMNS}
    rows = [{**base, "id": f"change-{n:03d}", "event_id": str(n), "session_name": name, "linked": "false"}
            for n, name in enumerate(["=HYPERLINK(\"x\")", "'quoted", "#not-a-comment", "a,b \"c\"", "plain"] * 4)]
    limits = [{"account": "1", "region": "us-east-1", "from": "2026-07-01T00:00:00+00:00",
               "to": "2026-07-02T00:00:00+00:00", "reason": "no input, read \"twice\", here"}]
    pop = Population("changes", None, parse_period(start="2026-07-01", end="2026-09-30"), rows,
                     completeness={"source": "CloudTrail, per account", "from": "a", "to": "b",
                                   "accounts_regions": [["1", "us-east-1"]], "limits": limits, "note": ""})
    (tmp_path / "data").mkdir()
    write_csv(pop, tmp_path / "data" / "population-changes.csv")
    assert (tmp_path / "data" / "population-changes.csv").read_text().startswith('"# completeness')
    ids = draw([r["id"] for r in rows], 7, 20261001)
    recorded = {"algorithm": ALGORITHM, "population_file": "data/population-changes.csv", "seed": 20261001,
                "size": 7, "ids": ids, "population_sha256": rows_sha256(rows),
                "population_sha256_in_packet": rows_sha256(rows)}
    (tmp_path / "data" / "samples.json").write_text(json.dumps([recorded]))
    monkeypatch.chdir(tmp_path)
    printed = []
    exec(REDRAW_CODE, {"print": printed.append})
    assert printed == [True, True, True]
    # a population changed since the draw: the file still matches the packet's hash, not the draw's
    (tmp_path / "data" / "samples.json").write_text(json.dumps([{**recorded, "population_sha256": "0" * 64}]))
    printed.clear()
    exec(REDRAW_CODE, {"print": printed.append})
    assert printed == [True, False, True]
    page = redraw_html()
    assert 'id="redraw-samples"' in page and f"<code>{ALGORITHM}</code>" in page
    assert "<code># completeness</code>" in page


def test_flags_statuses_and_times_render_for_a_reader():
    assert nbh.cell(True, yes_no=True) == "yes" and nbh.cell(False, yes_no=True) == "no"
    assert nbh.cell(True) == "True"  # outside the index, unchanged
    assert nbh.cell("2026-12-01T21:20:27.975895+00:00") == "2026-12-01 21:20 UTC"
    assert nbh.cell("2026-12-01T23:20:00+02:00") == "2026-12-01 21:20 UTC"
    assert nbh.cell(dt.datetime(2026, 12, 1, 23, 20, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == "2026-12-01 21:20 UTC"
    assert nbh.cell("2026-12-01") == "2026-12-01" and nbh.cell("<b>2026-12-01T21:20</b>") == "&lt;b&gt;2026-12-01T21:20&lt;/b&gt;"
    badges = nbh.named_statuses("CC7.3 FAIL; CC7.5 NEEDS_EVIDENCE")
    assert badges == ('CC7.3 <span class="ab-status ab-FAIL">fail</span>; '
                      'CC7.5 <span class="ab-status ab-NEEDS_EVIDENCE">needs evidence</span>')
    assert nbh.named_statuses({"<x>": "PASS", "y": "odd"}) == '&lt;x&gt; <span class="ab-status ab-PASS">pass</span>; y odd'
    df = pd.DataFrame([{"simulated": True, "at": "2026-07-01T06:00:00+00:00"}])
    page = nbh.table(df, yes_no=True).data
    assert "<td>yes</td>" in page and "<td>2026-07-01 06:00 UTC</td>" in page and "True" not in page
