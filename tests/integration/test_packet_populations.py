"""The packet carries the period's populations (data/population-<kind>.csv) and the recorded sample draws
(data/samples.json), covered by the signed manifest: an auditor re-draws each sample from the packet's
files alone, and a hostile string in a population row stays inert in its CSV (issue 14 §3)."""
import csv
import json

import pytest

from tests.conftest import cli
from tests.packet_store import PERIOD

FORMULA = "=HYPERLINK(\"http://evil.example\",\"click\")"


@pytest.fixture(scope="module")
def sampled_packet(history_store, packet_keys):
    """The history store with a triaged alert in hostile text and three recorded draws; its packet."""
    from auditbook.auth import Actor
    from auditbook.catalog.model import load_catalog
    from auditbook.history.period import parse_period
    from auditbook.history.sampling import take_sample
    from auditbook.monitor import alerts, triage
    from auditbook.store.db import open_engine
    engine, catalog = open_engine(history_store["db"]), load_catalog(history_store["catalog"])
    regressed = next(a for a in alerts.list_alerts(engine) if a["rule"] == "CheckRegressed")
    triage.triage(engine, Actor("ana", "analyst"), regressed["id"], regressed["version"],
                  decision="true-positive", reason=FORMULA, assignee="@ana")
    period, auditor = parse_period(start=PERIOD[0], end=PERIOD[1]), Actor("aud", "auditor")
    for criterion, kind, size in (("CC6.6", "resources", 2), ("CC6.6", "alerts", 1), ("CC1.1", "manual", 1)):
        take_sample(engine, catalog, auditor, criterion, period, seed=2026, size=size, kind=kind)
    out = history_store["root"] / "sampled-packet"
    r = cli("packet", "--from", PERIOD[0], "--to", PERIOD[1], "--out", str(out),
            "--signer", f"ed25519:{packet_keys['key']}", "--db", history_store["db"],
            "--catalog", history_store["catalog"])
    assert r.returncode == 0, r.stderr
    return out


def test_the_populations_and_draws_are_in_the_signed_packet(sampled_packet, packet_keys):
    names = {p.name for p in (sampled_packet / "data").iterdir()}
    assert {f"population-{k}.csv" for k in ("alerts", "incidents", "changes", "access", "manual")} <= names
    assert {"population-resources-CC6.6.csv", "samples.json"} <= names
    listed = {f["path"] for f in json.loads((sampled_packet / "manifest.json").read_text())["files"]}
    assert {"data/samples.json", "data/population-alerts.csv", "data/population-resources-CC6.6.csv"} <= listed
    r = cli("verify", str(sampled_packet), "--public-key", str(packet_keys["pub"]))
    assert r.returncode == 0 and r.stdout.strip() == "valid", r.stdout + r.stderr


def test_each_sample_is_re_drawn_identically_from_the_packets_files(sampled_packet):
    from auditbook.history.populations import read_csv, rows_sha256
    from auditbook.history.sampling import draw
    draws = json.loads((sampled_packet / "data" / "samples.json").read_text())
    assert sorted((d["criterion"], d["kind"]) for d in draws) == [("CC1.1", "manual"), ("CC6.6", "alerts"),
                                                                   ("CC6.6", "resources")]
    for d in draws:
        rows = read_csv(sampled_packet / d["population_file"])
        assert rows_sha256(rows) == d["population_sha256"] == d["population_sha256_in_packet"]
        assert len(rows) == d["population_count"] and d["drawn_by"] == "aud" and d["seed"] == 2026
        assert draw([r["id"] for r in rows], d["size"], d["seed"]) == d["ids"]
    resources = next(d for d in draws if d["kind"] == "resources")
    assert len(resources["ids"]) == 2 and resources["population_count"] > 2


def test_a_hostile_population_cell_is_inert_in_the_csv(sampled_packet):
    with open(sampled_packet / "data" / "population-alerts.csv", newline="", encoding="utf-8") as f:
        cells = [c for row in csv.reader(f) for c in row]
    assert "'" + FORMULA in cells and "'@ana" in cells
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


def test_an_altered_draw_fails_verification(sampled_packet, packet_keys, tmp_path):
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(sampled_packet, copy)
    samples = copy / "data" / "samples.json"
    draws = json.loads(samples.read_text())
    draws[0]["seed"] += 1
    samples.write_text(json.dumps(draws, indent=1, sort_keys=True))
    r = cli("verify", str(copy), "--public-key", str(packet_keys["pub"]))
    assert r.returncode == 1 and "changed file: 'data/samples.json'" in r.stderr


def test_the_scope_and_sign_offs_are_in_the_signed_packet(sampled_packet):
    """data/scope.json (the boundary, the reconciliation) and data/signoffs.json (who prepared and
    reviewed each criterion, the assertion) are written for the period and covered by the signature."""
    listed = {f["path"] for f in json.loads((sampled_packet / "manifest.json").read_text())["files"]}
    assert {"data/scope.json", "data/signoffs.json"} <= listed
    scope = json.loads((sampled_packet / "data" / "scope.json").read_text())
    assert scope["accounts"] and {"reconciliation", "out_of_scope", "deviations"} <= set(scope)
    signed = json.loads((sampled_packet / "data" / "signoffs.json").read_text())
    assert {"criteria", "packet", "assertion"} <= set(signed) and "CC6.6" in signed["criteria"]
    assert signed["criteria"]["CC6.6"]["state"] == "unsigned"
