"""Issue 14 §1, one status: the packet (its index table, data/overview.json and every criterion page),
the control room's posture and the exports are built from the same store, and every criterion has
the same status in all of them. CC1.1 (no checks; one of its two required items on file) is
NEEDS_EVIDENCE everywhere — its page used to say "pass" while the index said "needs evidence".
The store and the packet are tests/conftest.py's (tests/packet_store.py: real scans under moto)."""
import json
import re

from tests.packet_store import PERIOD

INDEX_ROW = re.compile(r'<tr><td><a href="criteria/([^"]+)\.html">[^<]*</a>(?:<span[^>]*>[^<]*</span>|[^<])*</td>'
                       r'(?:<td>(?:(?!</td>).)*</td>){2}<td><span class="ab-status ab-([A-Z_]+)">', re.S)
PAGE_STATUS = re.compile(r'<p id="criterion-status"[^>]*>[^<]*<span class="ab-status ab-([A-Z_]+)">')
COVERAGE = re.compile(r'<p id="period-coverage">(.*?)</p>', re.S)


def _catalog_and_engine(history_store):
    from auditbook.catalog.model import load_catalog
    from auditbook.store.db import open_engine
    return load_catalog(history_store["catalog"]), open_engine(history_store["db"])


def _everywhere(history_store, signed_packet) -> dict[str, dict[str, str]]:
    """{where: {criterion: status}} across the packet, posture and the exports."""
    from auditbook.history import posture
    from auditbook.report.exports.view import render
    catalog, engine = _catalog_and_engine(history_store)
    last_run = max(history_store["runs"].values())  # the period's latest run (day 6, its last day)
    index_html = (signed_packet / "index.html").read_text()
    pages = {c.id: PAGE_STATUS.findall((signed_packet / "criteria" / f"{c.id}.html").read_text())
             for c in catalog.controls}
    oscal = render(engine, last_run, "oscal", catalog)["assessment-results"]["results"][0]["findings"]
    return {
        "overview.json": {r["criterion"]: r["status"]
                          for r in json.loads((signed_packet / "data" / "overview.json").read_text())},
        "index.html": dict(INDEX_ROW.findall(index_html)),
        "criterion pages": {cid: found[0] if len(found) == 1 else f"{len(found)} badges"
                            for cid, found in pages.items()},
        "posture": {r["criterion"]: r["status"] for r in posture.criteria(engine, catalog, last_run)},
        "oscal": {f["target"]["target-id"]: f["target"]["status"]["remarks"] for f in oscal},
    }


def test_every_criterion_has_one_status_in_the_packet_posture_and_exports(history_store, signed_packet):
    catalog, _ = _catalog_and_engine(history_store)
    seen = _everywhere(history_store, signed_packet)
    expected = seen["overview.json"]
    assert set(expected) == {c.id for c in catalog.controls}
    for where, statuses in seen.items():
        assert statuses == expected, f"{where} disagrees with the index: {statuses} != {expected}"
    # CC1.1 has no check; of its two required items only the code of conduct was submitted (and
    # nobody approved it): needs evidence, on every page and in every view
    assert expected["CC1.1"] == "NEEDS_EVIDENCE"
    assert expected["CC6.6"] == "FAIL"  # the security group open to the world on port 22
    assert {s["CC1.1"] for s in seen.values()} == {"NEEDS_EVIDENCE"}
    # the control room's tiles (and the wall's) count the same statuses per category, and its
    # filtered view is given the same criteria needing evidence
    from auditbook.history import posture
    catalog, engine = _catalog_and_engine(history_store)
    last_run = max(history_store["runs"].values())
    # each lacks a required item (on A1.2 and CC6.6 their failures outrank it)
    assert posture.latest_run(engine, catalog)["needs_evidence"] == ["A1.2", "CC1.1", "CC6.6"]
    category = {c.id: c.category for c in catalog.controls}
    for tile in posture.wall_tiles(engine, catalog, last_run):
        mine = [s for cid, s in expected.items() if category[cid] == tile["category"]]
        assert {s: tile[s] for s in posture.STATUSES} == {s: mine.count(s) for s in posture.STATUSES}


def test_the_exports_of_a_run_carry_the_manual_evidence_state(history_store):
    """OCSF and ASFF are per finding (a check on a resource): their statuses are the findings', and
    OSCAL's per-criterion finding is the one status, never "satisfied" while evidence is missing."""
    from auditbook.history.findings import list_findings
    from auditbook.report.exports.view import render
    catalog, engine = _catalog_and_engine(history_store)
    last_run = max(history_store["runs"].values())
    _, rows = list_findings(engine, str(last_run))
    stored = sorted(r["status"] for r in rows)
    assert sorted(f["status_code"] for f in render(engine, last_run, "ocsf", catalog)) == stored
    assert sorted(f["ProductFields"]["auditbook/status"] for f in render(engine, last_run, "asff", catalog)) == stored
    oscal = render(engine, last_run, "oscal", catalog)["assessment-results"]["results"][0]["findings"]
    cc11 = next(f for f in oscal if f["target"]["target-id"] == "CC1.1")
    assert cc11["target"]["status"]["state"] == "not-satisfied" and "needs evidence" in cc11["description"]


def test_a_closed_period_is_described_as_closed_with_its_gap_days(signed_packet):
    """The period ended (2026-07-06) long before the packet was built: the index and the pages say it
    is closed (never "so far") and name the day without a scan."""
    for page in [signed_packet / "index.html", signed_packet / "criteria" / "CC6.6.html"]:
        text = page.read_text()
        (coverage,) = COVERAGE.findall(text)
        assert "so far" not in text
        assert f"5 of the 6 days of the period (closed {PERIOD[1]}) had a scan" in coverage
        assert "without a scan: 2026-07-05" in coverage


def test_the_index_gives_each_criterion_its_conclusion_over_the_period(signed_packet):
    """The status is the period's end; the conclusion is the whole period: CC1.1 lacked required
    evidence during the period (exceptions noted), whatever its status at the end."""
    index_html = (signed_packet / "index.html").read_text()
    assert "conclusion over the period" in index_html
    row = re.search(r'criteria/CC1\.1\.html.*?<span class="ab-status ab-[A-Z_]+">[^<]*</span></td><td>([^<]*)</td>',
                    index_html, re.S)
    assert row and row.group(1).startswith("exceptions noted: "), row and row.group(1)


def test_the_posture_trend_counts_the_same_statuses_as_the_index(history_store, signed_packet):
    """The trend judges each run by the one status (the run's counts, the manual evidence on its day,
    the types it read): at the period's last run (its last day, the day the index judges) it counts
    per category exactly the index's statuses — it used to count the status saved at scan time."""
    from auditbook.history import posture
    catalog, engine = _catalog_and_engine(history_store)
    expected = {r["criterion"]: r["status"]
                for r in json.loads((signed_packet / "data" / "overview.json").read_text())}
    last_run = max(history_store["runs"].values())
    category = {c.id: c.category for c in catalog.controls}
    rows = [r for r in posture.trend(engine, catalog) if r["run"] == last_run]
    assert {r["category"] for r in rows} == set(category.values())
    for row in rows:
        mine = [s for cid, s in expected.items() if category[cid] == row["category"]]
        statuses = set(mine) | set(posture.STATUSES) | {"NO_DATA"}
        assert {s: row.get(s, 0) for s in statuses} == {s: mine.count(s) for s in statuses}, row["category"]


def test_the_scope_section_declares_regions_what_was_left_out_and_the_user_entity_controls(signed_packet):
    scope = json.loads((signed_packet / "data" / "scope.json").read_text())
    assert "Out of scope is not evaluated" in scope["evaluation"] and scope["left_out"] == []
    (account,) = scope["accounts"]
    assert account["regions"] == ["us-east-1"]
    why = {r["region"]: r["reason"] for r in account["regions_not_read"]}
    assert "us-east-1" not in why and why["eu-west-1"] == "not in the scan's --regions"
    # the small catalog has no subservice-organisations.yaml beside it: none declared, and it says so
    assert scope["complementary_user_entity_controls"] == []
    assert "none declared" in scope["subservice_organisations"][0]["complementary_user_entity_controls"]
