"""The demo's simulated quarter on a real moto_server, and the full 61-criterion packet built from it:
what `make demo` builds. The storyline's violations must show up in the history exactly as simulated."""
import datetime as dt
import json
import os
from pathlib import Path

import boto3
import pytest

from auditbook.demo.estate import build
from auditbook.demo.quarter import OUTAGE, simulate_quarter
from auditbook.demo.run import MotoServer, demo_environment
from auditbook.history.period import quarter

Q = quarter(2026, 3)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    root = tmp_path_factory.mktemp("quarter")
    db = f"sqlite:///{root}/demo.db"
    old = dict(os.environ)
    with MotoServer() as server:
        os.environ.update(demo_environment(server.url))
        try:
            ids = build(boto3.Session(region_name="us-east-1"), log=lambda m: None)
            done = simulate_quarter(ids, Q, db, log=lambda m: None)
        finally:
            os.environ.clear()
            os.environ.update(old)
    return {"root": root, "db": db, "ids": ids, "done": done}


def _history(simulated, criterion):
    from auditbook.catalog.model import load_catalog
    from auditbook.history.period import period_runs
    from auditbook.history.type2 import criterion_history
    from auditbook.store.db import open_engine
    engine = open_engine(simulated["db"])
    runs = period_runs(engine, Q)
    return runs, criterion_history(engine, load_catalog(), criterion, runs)


def test_quarter_has_a_run_every_day_but_the_outage_all_labelled_simulated(simulated):
    runs, h = _history(simulated, "CC6.6")
    assert len(runs.runs) == 92 - len(OUTAGE) == simulated["done"]["scans"] + simulated["done"]["replays"]
    assert all(r.simulated for r in runs.runs)
    first_gap = Q.start + dt.timedelta(days=OUTAGE.start)
    assert h.gap_days == [(first_gap, first_gap + dt.timedelta(days=len(OUTAGE) - 1))]


def test_storyline_violations_appear_and_are_fixed(simulated):
    prod, staging = simulated["ids"]["prod-us-east"], simulated["ids"]["staging"]
    _, h = _history(simulated, "CC6.6")
    opened = [f for f in h.failures if f["check"] == "ec2-sg-no-public-ingress" and f["resource_name"] == "web-https"]
    assert [(f["account"], f["first_seen"].date(), f["fixed"].date(), f["days_to_remediate"], f["state"])
            for f in opened] == [(prod, dt.date(2026, 7, 18), dt.date(2026, 7, 21), 3.0, "fixed")]
    pab = [f for f in h.failures if f["check"] == "s3-bucket-public-access-block" and f["resource_name"] == "prod-customer-data"]
    assert [(f["first_seen"].date(), f["fixed"].date(), f["state"]) for f in pab] == [
        (dt.date(2026, 8, 8), dt.date(2026, 8, 15), "fixed")]
    _, h = _history(simulated, "CC6.3")
    inline = [f for f in h.failures if f["check"] == "iam-user-no-inline-policies" and f["account"] == staging]
    assert [(f["first_seen"].date(), f["state"]) for f in inline] == [(dt.date(2026, 9, 5), "open")]


def test_full_packet_of_the_quarter_builds_and_verifies(simulated, tmp_path):
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.manifest import verify_packet
    from auditbook.report.packet.signing import Ed25519Signer, keygen, load_public_key
    keygen(str(tmp_path / "k"))
    result = build_packet(period=Q, out=tmp_path / "packet", signer=Ed25519Signer(tmp_path / "k.key"),
                          db=simulated["db"])
    assert result.failed == [] and result.criteria == 61 and result.runs == 89
    assert result.bytes < 30 * 2**20
    assert verify_packet(tmp_path / "packet", public_key=load_public_key(tmp_path / "k.pub")).valid
    manifest = json.loads((tmp_path / "packet" / "manifest.json").read_text())
    assert len(manifest["simulated_runs"]) == 89
    assert "SIMULATED DATA" in (tmp_path / "packet" / "index.html").read_text()
    assert "SIMULATED DATA" in (tmp_path / "packet" / "criteria" / "CC6.6.html").read_text()
    assert manifest["documents"] == simulated["done"]["documents"] > 0
    assert "SIMULATED demo document" in next((tmp_path / "packet" / "documents").rglob("*.txt")).read_text()
    assert len(list(Path(tmp_path / "packet" / "criteria").glob("*.html"))) == 61
