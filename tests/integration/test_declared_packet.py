"""Declared controls in the signed packet (its notebooks executed): data/declared.json in the manifest,
each criterion page's declared resources with their states, the index's counts of the three lists —
hostile names and tag values escaped, the signature valid, the same file from the same store twice."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.unit.test_declared_store import CATALOG, EVIL, build_declared_store


@pytest.fixture(scope="module")
def packet(tmp_path_factory):
    from auditbook.history.period import parse_period
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.signing import Ed25519Signer, keygen
    root = tmp_path_factory.mktemp("declared-packet")
    (root / "controls.yaml").write_text(CATALOG)
    db = f"sqlite:///{root}/store.db"
    build_declared_store(db, root / "controls.yaml")
    keygen(str(root / "signer"))
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    kw = dict(period=parse_period(start=today, end=today), signer=Ed25519Signer(root / "signer.key"), db=db,
              catalog_path=root / "controls.yaml", workers=1)
    build_packet(out=root / "packet", **kw)
    build_packet(out=root / "again", **kw)
    return {"out": root / "packet", "again": root / "again", "pub": root / "signer.pub"}


def test_the_data_file_is_signed_and_deterministic(packet):
    from auditbook.report.packet.manifest import verify_packet
    from auditbook.report.packet.signing import load_public_key
    out: Path = packet["out"]
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert "data/declared.json" in {f["path"] for f in manifest["files"]}
    assert verify_packet(out, public_key=load_public_key(packet["pub"])).valid
    assert (out / "data" / "declared.json").read_bytes() == (packet["again"] / "data" / "declared.json").read_bytes()
    view = json.loads((out / "data" / "declared.json").read_text())
    assert {r["name"] for r in view["failing"]} == {"open-declared", EVIL}


def test_each_criterion_page_lists_its_declared_resources_with_their_state(packet):
    cc66 = (packet["out"] / "criteria" / "CC6.6.html").read_text()
    section = cc66[cc66.index('id="declared-resources"'):]
    assert "4 resources declare CC6.6 with their SOC2_Control tag" in section
    assert "failing 2" in section and "passing 2" in section
    assert "open-declared" in section and "s3-bucket-public-access-block FAIL" in section
    assert "&lt;img src=x onerror=alert(1)&gt;" in cc66 and EVIL not in cc66
    cc72 = (packet["out"] / "criteria" / "CC7.2.html").read_text()
    assert "no check of CC7.2 reads aws.s3.bucket" in cc72
    assert "No resource declares CC6.1." in (packet["out"] / "criteria" / "CC6.1.html").read_text()


def test_the_index_counts_the_three_lists(packet):
    index = (packet["out"] / "index.html").read_text()
    counts = index[index.index('id="declared-counts"'):]
    assert ("6 declared resources · declared and failing their criterion (or in error): 2 · declared, not "
            "evidenced by any check: 2 · in scope without the tag: 3 · tags that declare no criterion: 3") in counts
    assert "typo-bucket" in counts and "&#x27;cc6.1&#x27; is not a criterion id" in counts
    assert EVIL not in index
