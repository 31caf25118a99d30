"""Type II history, the signed offline packet, `auditbook verify` and its tamper cases, the chain,
KMS signing, a failing notebook, bad input, and the notebooks. The store, keys and packet are fixtures of
tests/conftest.py (built by real scans under moto, tests/packet_store.py); tests/e2e/test_packet.py
opens the packet in a real headless Chromium with the network blocked."""
import contextlib
import datetime as dt
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXE, cli
from tests.packet_store import CONDUCT, EVIL, PERIOD

# -- history -------------------------------------------------------------------------------------

def _history(history_store, criterion="CC6.6"):
    from auditbook.catalog.model import load_catalog
    from auditbook.history.period import parse_period, period_runs
    from auditbook.history.type2 import criterion_history
    from auditbook.store.db import open_engine
    engine = open_engine(history_store["db"])
    runs = period_runs(engine, parse_period(start=PERIOD[0], end=PERIOD[1]))
    return engine, runs, criterion_history(engine, load_catalog(), criterion, runs)


def test_failures_have_first_seen_fix_and_time_to_remediate(history_store):
    _, _, h = _history(history_store)
    pab = {f["resource_name"]: f for f in h.failures if f["check"] == "s3-bucket-public-access-block"}
    assert pab["open-data"]["state"] == "fixed"
    assert pab["open-data"]["first_seen"].date() == dt.date(2026, 7, 1)
    assert pab["open-data"]["fixed"].date() == dt.date(2026, 7, 3)
    assert pab["open-data"]["days_to_remediate"] == 2.0
    assert pab["old-export"]["state"] == "resource removed"
    assert pab["old-export"]["fixed"].date() == dt.date(2026, 7, 4)
    sg = [f for f in h.failures if f["check"] == "ec2-sg-no-public-ingress" and f["resource_name"] == EVIL]
    assert [f["state"] for f in sg] == ["open"]
    assert pab["audit-trail"]["state"] == "open" and pab["audit-trail"]["first_seen"].date() == dt.date(2026, 7, 6)


def test_daily_share_and_monitoring_gaps(history_store):
    _, runs, h = _history(history_store)
    assert h.gap_days == [(dt.date(2026, 7, 5), dt.date(2026, 7, 5))]
    summary = {s["check"]: s for s in h.summaries}
    pab = summary["s3-bucket-public-access-block"]
    # days 1-3 fail (old-export until day 4), day 4 passes, day 5 has no run (never a pass),
    # day 6 fails again (audit-trail lost its block)
    assert (pab["days_observed"], pab["days_passing"], pab["days_failing"], pab["monitoring_gap_days"]) == (5, 1, 4, 1)
    assert pab["share_passing"] == round(1 / 6, 4)
    assert pab["mean_days_to_remediate"] == 2.0
    assert summary["ec2-sg-no-public-ingress"]["days_failing"] == 5
    assert h.share_all_passing(runs.horizon()) == 0.0


def test_population_spans_the_period(history_store):
    from auditbook.history.period_evidence import population
    _, runs, _ = _history(history_store)
    pop = {(p["resource_type"], p["name"]): p
           for p in population(store_engine(history_store), ["aws.s3.bucket"], runs)}
    assert set(pop) == {("aws.s3.bucket", "open-data"), ("aws.s3.bucket", "old-export"), ("aws.s3.bucket", "audit-trail")}
    assert pop[("aws.s3.bucket", "old-export")]["last_seen"].date() == dt.date(2026, 7, 3)
    assert pop[("aws.s3.bucket", "open-data")]["last_seen"].date() == dt.date(2026, 7, 6)


def store_engine(history_store):
    from auditbook.store.db import open_engine
    return open_engine(history_store["db"])


def test_criterion_scan_collects_only_what_its_checks_need(history_store):
    from auditbook.catalog.model import load_catalog
    from auditbook.collect.plan import closed_checks, needed_types
    from auditbook.history.findings import resolve_run
    types = set(resolve_run(store_engine(history_store), history_store["runs"][1]).parameters["resource_types"])
    catalog = load_catalog()
    sub = closed_checks(catalog, {c.id for c in catalog.checks_for("CC6.6")})
    assert types == {t.name for t in needed_types(sub)}
    assert "aws.s3.bucket" in types and "aws.dynamodb.table" not in types and "aws.iam.user" not in types
    # every check on a collected type is evaluated, or the store would close its findings as resolved
    assert {c.id for c in catalog.checks if c.resource in types} <= {c.id for c in sub.checks}


# -- packet ---------------------------------------------------------------------------------------

def test_packet_layout_manifest_and_verify(history_store, packet_keys, signed_packet):
    manifest = json.loads((signed_packet / "manifest.json").read_bytes())
    assert manifest["format"] == "auditbook-packet/1"
    assert manifest["period"] == {"label": f"{PERIOD[0]}..{PERIOD[1]}", "start": PERIOD[0], "end": PERIOD[1]}
    assert manifest["runs"] == sorted(history_store["runs"].values())
    assert manifest["previous_manifest_sha256"] is None and manifest["failed"] == []
    paths = {f["path"] for f in manifest["files"]}
    assert {"index.html", "criteria/CC6.6.html", "criteria/CC1.1.html", "criteria/A1.2.html", "assets/plotly.min.js",
            "assets/charts.js", "assets/notebook.css", "data/failures.csv", "notebooks/CC6.6.ipynb", "data/runs.json", "data/CC6.6-population.csv",
            "data/catalog.yaml", "data/incidents.json"} <= paths
    assert any(p.startswith("evidence/") for p in paths)
    on_disk = {p.relative_to(signed_packet).as_posix() for p in signed_packet.rglob("*") if p.is_file()}
    assert on_disk == paths | {"manifest.json", "manifest.sig"}
    # the raw evidence behind a finding is in the packet, and hashes to its name
    import hashlib
    ev = next(signed_packet.glob("evidence/*.json"))
    assert hashlib.sha256(ev.read_bytes()).hexdigest() == ev.stem
    # manual evidence: the document itself, under its hash, and listed with its hash on the page
    sha = hashlib.sha256(CONDUCT).hexdigest()
    assert (signed_packet / "documents" / sha / "code-of-conduct <v7>.txt").read_bytes() == CONDUCT
    page = (signed_packet / "criteria" / "CC1.1.html").read_text()
    assert sha in page and "code-of-conduct &lt;v7&gt;.txt" in page and "2026-07-02" in page
    # incidents are evidence for CC7.3-CC7.5: on the index, on the CC6.6 page they link to, in data/
    saved = json.loads((signed_packet / "data" / "incidents.json").read_text())
    assert [i["title"] for i in saved] == ["open-data bucket was public"]
    assert [e["action"] for e in saved[0]["timeline"]] == ["create", "update", "note", "update"]
    assert saved[0]["acknowledge_breached"] is True  # 2 h to leave "open", the high target is 1 h
    assert "open-data bucket was public" in (signed_packet / "index.html").read_text()
    cc66 = (signed_packet / "criteria" / "CC6.6.html").read_text()
    assert "open-data bucket was public" in cc66 and "public access block put back" in cc66
    assert "No incidents for A1.2 in the period" in (signed_packet / "criteria" / "A1.2.html").read_text()
    r = cli("verify", str(signed_packet), "--public-key", str(packet_keys["pub"]))
    assert (r.returncode, r.stdout.strip()) == (0, "valid"), r.stderr


def test_pages_hide_code_escape_names_and_need_no_network(signed_packet):
    page = (signed_packet / "criteria" / "CC6.6.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and EVIL not in page
    assert "import datetime" not in page and "criterion_history(" not in page  # code hidden
    for html in [signed_packet / "index.html", *signed_packet.glob("criteria/*.html")]:
        text = html.read_text()
        assert "cdn." not in text and "require.js" not in text and "mathjax" not in text.lower()
        assert "https://cdn" not in text
    # plotly.js is never parsed before the page is read: one deferred loader draws the figures (inert JSON)
    assert page.count('<script src="../assets/charts.js" defer></script>') == 1 and "plotly.min.js" not in page
    assert "Plotly.newPlot" not in page and 'id="fig-' in page and 'type="application/json" data-figure="fig-' in page
    index = (signed_packet / "index.html").read_text()
    assert 'href="criteria/CC6.6.html"' in index and '<script src="assets/charts.js" defer></script>' in index


def test_each_failure_stretch_once_and_notebooks_without_their_pages_outputs(history_store, signed_packet):
    """Issue 14 §10: data/failures.csv holds every failure stretch once (a check shared by criteria too),
    deviations.json references them by id, data JSON is compact, no per-criterion failures CSV, and each
    executed notebook is kept without the outputs its page already shows, naming the page's SHA-256."""
    import csv
    import hashlib
    data = signed_packet / "data"
    assert not list(data.glob("*-failures.csv"))
    with open(data / "failures.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    _, _, h = _history(history_store)
    assert len(rows) == len({r["id"] for r in rows}) >= len(h.failures) > 0
    assert {(r["check"], r["resource"]) for r in rows} >= {(e["check"], e["resource"]) for e in h.failures}
    raw = (data / "deviations.json").read_text()
    listed = json.loads(raw)
    assert raw == json.dumps(listed, separators=(",", ":"), sort_keys=True)  # compact, no indent
    failures = [d for d in listed if d["kind"] == "failure"]
    assert sorted(d["id"] for d in failures) == sorted(r["id"] for r in rows)
    assert all(d["stretch"] == "data/failures.csv" and "what" not in d for d in failures)
    assert any(d["kind"] == "monitoring gap" for d in listed)  # the other kinds stay in full
    for name, page in (("CC6.6", "criteria/CC6.6.html"), ("packet_index", "index.html")):
        nb = json.loads((signed_packet / "notebooks" / f"{name}.ipynb").read_text())
        outputs = [o["output_type"] for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
        assert "display_data" not in outputs and "execute_result" not in outputs
        assert any("criterion_history(" in "".join(c["source"]) or "overview" in "".join(c["source"]) for c in nb["cells"])
        meta = nb["metadata"]["auditbook"]
        assert meta["page"] == page and meta["display_outputs_removed"] > 0
        assert meta["page_sha256"] == hashlib.sha256((signed_packet / page).read_bytes()).hexdigest()


def test_deviations_list_each_criterions_failure_stretches_once_per_check(history_store):
    """The period's failure deviations (computed once per check) are exactly each criterion's failure
    stretches (history.type2.criterion_history), a stretch of a shared check naming every criterion."""
    from auditbook.catalog.model import load_catalog
    from auditbook.history.deviations import (
        deviations,
        failure_deviation,
        first_observed,
    )
    from auditbook.history.period import parse_period, period_runs
    from auditbook.history.type2 import criterion_history
    engine, catalog = store_engine(history_store), load_catalog(history_store["catalog"])
    period = parse_period(start=PERIOD[0], end=PERIOD[1])
    pruns = period_runs(engine, period)
    found = [d for d in deviations(engine, catalog, period) if d["kind"] == "failure"]
    assert len(found) == len({d["id"] for d in found}) > 0
    for control in catalog.controls:
        expected = {failure_deviation(e, control.id, period, first_observed(pruns))["id"]
                    for e in criterion_history(engine, catalog, control.id, pruns).failures}
        assert {d["id"] for d in found if control.id in d["criteria"]} == expected, control.id
    for d in found:
        check = next(c for c in catalog.checks if c.id == d["check"])
        assert d["criteria"] == [c.id for c in catalog.controls if c.id in check.controls]


def _copy(signed_packet, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(signed_packet, target)
    return target


def _resign(p, packet_keys, edit):
    from auditbook.report.packet.manifest import canonical_bytes
    from auditbook.report.packet.signing import Ed25519Signer, dumps_signature
    manifest = json.loads((p / "manifest.json").read_bytes())
    edit(manifest)
    raw = canonical_bytes(manifest)
    (p / "manifest.json").write_bytes(raw)
    (p / "manifest.sig").write_bytes(dumps_signature(Ed25519Signer(packet_keys["key"]).sign(raw)))


def _outside(p, name):
    """Move a file of the packet out of it; a symlink to it takes its place (the same bytes)."""
    outside = p.parent / name.replace("/", "-")
    (p / name).rename(outside)
    (p / name).symlink_to(outside)


def _listed_twice(manifest):
    runs = next(f for f in manifest["files"] if f["path"] == "data/runs.json")
    manifest["files"].append({**runs, "sha256": "0" * 64})


@pytest.mark.parametrize("case, expected", [
    ("changed", "changed file: 'criteria/CC6.6.html'"),
    ("missing", "missing file: 'data/runs.json'"),
    ("extra", "extra file: 'criteria/notes.html'"),
    ("manifest", "signature: does not match"),
    ("wrong-key", "signature: does not match"),
    ("no-signature", "missing file: 'manifest.sig'"),
    ("evidence", "changed file: 'evidence/"),
    # hostile packets
    ("manifest-symlink", "not a regular file: 'manifest.json' (a symlink)"),
    ("signature-symlink", "not a regular file: 'manifest.sig' (a symlink)"),
    ("manifest-fifo", "not a regular file: 'manifest.json' (a FIFO)"),
    ("unsigned-malformed", "signature: does not match"),
    ("listed-twice", "manifest: 'data/runs.json' is listed more than once"),
    ("empty-folder", "extra folder: 'criteria/drafts'"),
    ("page-symlink", "not a regular file: 'criteria/CC6.6.html' (a symlink)"),
    ("newline-name", r"extra file: 'criteria/x\ninvalid: none\nvalid'"),
])
def test_tampering_is_detected(signed_packet, packet_keys, tmp_path, case, expected):
    p = _copy(signed_packet, tmp_path)
    key = packet_keys["pub"]
    if case == "changed":
        page = p / "criteria" / "CC6.6.html"
        page.write_text(page.read_text().replace("fail", "pass", 1))
    elif case == "missing":
        (p / "data" / "runs.json").unlink()
    elif case == "extra":
        (p / "criteria" / "notes.html").write_text("<p>added later</p>")
    elif case == "manifest":
        raw = (p / "manifest.json").read_bytes()
        (p / "manifest.json").write_bytes(raw.replace(b'"tool":"auditbook"', b'"tool":"auditbooK"'))
    elif case == "wrong-key":
        key = packet_keys["other_pub"]
    elif case == "no-signature":
        (p / "manifest.sig").unlink()
    elif case == "evidence":
        ev = sorted(p.glob("evidence/*.json"))[0]
        ev.write_bytes(ev.read_bytes() + b" ")
    elif case in ("manifest-symlink", "signature-symlink"):
        _outside(p, "manifest.json" if case == "manifest-symlink" else "manifest.sig")
    elif case == "manifest-fifo":
        (p / "manifest.json").unlink()
        os.mkfifo(p / "manifest.json")
    elif case == "unsigned-malformed":  # deep nesting, an entry without sha256: never parsed, never a traceback
        manifest = json.loads((p / "manifest.json").read_bytes())
        del manifest["files"][0]["sha256"]
        manifest["previous_manifest_sha256"] = {"not": "a string"}
        (p / "manifest.json").write_text(json.dumps(manifest)[:-1] + ',"x":' + "[" * 100000 + "]" * 100000 + "}")
    elif case == "listed-twice":
        _resign(p, packet_keys, _listed_twice)
    elif case == "empty-folder":
        (p / "criteria" / "drafts").mkdir()
    elif case == "page-symlink":
        _outside(p, "criteria/CC6.6.html")
    elif case == "newline-name":
        (p / "criteria" / "x\ninvalid: none\nvalid").write_text("forged")
    r = cli("verify", str(p), "--public-key", str(key))
    assert r.returncode == 1
    assert "valid" not in [line.strip() for line in (r.stdout + r.stderr).splitlines()]
    assert expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and all(line.startswith("invalid: ") for line in r.stderr.splitlines())


def test_chain_across_periods(history_store, packet_keys, tmp_path):
    from auditbook.history.period import parse_period
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.manifest import manifest_sha256, verify_packet
    from auditbook.report.packet.signing import Ed25519Signer, load_public_key
    signer, pub = Ed25519Signer(packet_keys["key"]), load_public_key(packet_keys["pub"])
    kw = dict(signer=signer, db=history_store["db"], catalog_path=Path(history_store["catalog"]), workers=1)
    first = build_packet(period=parse_period(start="2026-07-01", end="2026-07-03"), out=tmp_path / "q1", **kw)
    second = build_packet(period=parse_period(start="2026-07-04", end="2026-07-06"), out=tmp_path / "q2", **kw)
    assert first.runs == 3 and second.runs == 2
    assert second.previous_manifest_sha256 == manifest_sha256(tmp_path / "q1")  # found in the store
    assert verify_packet(tmp_path / "q2", public_key=pub, previous=tmp_path / "q1").valid
    # the wrong previous packet, and a previous packet altered after the fact, both break the chain
    bad = verify_packet(tmp_path / "q1", public_key=pub, previous=tmp_path / "q2")
    assert any(p.startswith("chain:") for p in bad.problems)
    (tmp_path / "q1" / "index.html").write_text("rewritten")
    r = cli("verify", str(tmp_path / "q2"), "--public-key", str(packet_keys["pub"]), "--previous", str(tmp_path / "q1"))
    assert r.returncode == 1 and "previous packet: changed file: 'index.html'" in r.stderr


def test_kms_signed_packet_verifies_with_kms_and_offline(history_store, tmp_path, monkeypatch):
    from cryptography.hazmat.primitives.serialization import load_der_public_key
    from moto import mock_aws

    from auditbook.history.period import parse_period
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.manifest import verify_packet
    from auditbook.report.packet.signing import KmsSigner
    with mock_aws():
        import boto3
        kms = boto3.client("kms", region_name="us-east-1")
        arn = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        other = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        build_packet(period=parse_period(start=PERIOD[0], end=PERIOD[1]), out=tmp_path / "p",
                     signer=KmsSigner(arn, client=kms), db=history_store["db"],
                     catalog_path=Path(history_store["catalog"]), workers=1)
        assert verify_packet(tmp_path / "p", kms_key=arn, kms_client=kms).valid
        assert not verify_packet(tmp_path / "p", kms_key=other, kms_client=kms).valid
        public = load_der_public_key(kms.get_public_key(KeyId=arn)["PublicKey"])
    assert verify_packet(tmp_path / "p", public_key=public).valid  # an auditor needs no AWS access
    (tmp_path / "p" / "index.html").write_text("x")
    assert not verify_packet(tmp_path / "p", public_key=public).valid


def test_a_failing_notebook_does_not_lose_the_rest(history_store, packet_keys, tmp_path):
    import nbformat

    from auditbook.report.packet.build import NOTEBOOKS
    custom = tmp_path / "notebooks"
    custom.mkdir()
    shutil.copy(NOTEBOOKS / "packet_index.ipynb", custom)
    nb = nbformat.read(str(NOTEBOOKS / "control.ipynb"), as_version=4)
    nb.cells.insert(4, nbformat.v4.new_code_cell(
        'if criterion == "CC6.6":\n    raise RuntimeError("evidence store unreachable for CC6.6")'))
    nbformat.write(nb, str(custom / "control.ipynb"))
    out = tmp_path / "p"
    r = cli("packet", "--from", PERIOD[0], "--to", PERIOD[1], "--out", str(out),
            "--signer", f"ed25519:{packet_keys['key']}", "--db", history_store["db"],
            "--catalog", history_store["catalog"], "--notebooks", str(custom))
    assert r.returncode == 1
    assert "CC6.6: RuntimeError: evidence store unreachable for CC6.6" in r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["failed"] == [{"criterion": "CC6.6", "error": "RuntimeError: evidence store unreachable for CC6.6"}]
    assert (out / "criteria" / "A1.2.html").is_file() and (out / "criteria" / "CC1.1.html").is_file()
    assert "evidence store unreachable" in (out / "criteria" / "CC6.6.html").read_text()
    assert "notebook failed" in (out / "index.html").read_text()
    assert cli("verify", str(out), "--public-key", str(packet_keys["pub"])).returncode == 0


@pytest.mark.parametrize("args, message", [
    (["--period", "2026Q5"], "--period: '2026Q5' is not a quarter like 2026Q4"),
    (["--from", "2026-07-01"], "--period: give --period YYYYQn, or both --from and --to"),
    (["--from", "2026-07-09", "--to", "2026-07-01"], "--to: 2026-07-01 is before --from 2026-07-09"),
    (["--period", "2025Q1"], "--period: no runs in the store between 2025-01-01 and 2025-03-31"),
    (["--period", "2026Q3", "--signer", "rsa:x"], "--signer: 'rsa:x' is not ed25519:KEYFILE or kms:KEY_ARN"),
    (["--period", "2026Q3", "--signer", "ed25519:/nonexistent.key"], "--signer: /nonexistent.key: cannot read"),
])
def test_bad_input_is_one_line_and_writes_nothing(history_store, packet_keys, tmp_path, args, message):
    if "--signer" not in args:
        args = args + ["--signer", f"ed25519:{packet_keys['key']}"]
    r = cli("packet", *args, "--out", str(tmp_path / "p"), "--db", history_store["db"],
            "--catalog", history_store["catalog"])
    assert r.returncode == 2
    assert r.stderr.startswith("error: " + message), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_existing_packet_is_never_overwritten(history_store, packet_keys, signed_packet):
    before = (signed_packet / "manifest.json").read_bytes()
    r = cli("packet", "--from", PERIOD[0], "--to", PERIOD[1], "--out", str(signed_packet),
            "--signer", f"ed25519:{packet_keys['key']}", "--db", history_store["db"],
            "--catalog", history_store["catalog"])
    assert r.returncode == 2 and "already exists and is not empty" in r.stderr
    assert (signed_packet / "manifest.json").read_bytes() == before


@contextlib.contextmanager
def _read_only(folder):
    """A folder nobody can create anything in, root included (chattr +i), undone afterwards."""
    if os.geteuid() == 0:
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
            pytest.skip("root, and no chattr +i on this filesystem")
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    try:
        yield
    finally:
        subprocess.run(undo, check=True)


@pytest.mark.parametrize("case, message", [
    ("is-a-file", "--out: {out} exists and is not a folder"),
    ("parent-missing", "--out: folder {parent} does not exist"),
    ("parent-read-only", "--out: cannot create a folder in {parent}: "),
])
def test_an_unusable_out_is_one_line_before_any_notebook_runs(history_store, packet_keys, tmp_path, case, message):
    parent = tmp_path / "packets"
    parent.mkdir()
    out = parent / "q3"
    if case == "is-a-file":
        out.write_text("not a folder")
    elif case == "parent-missing":
        parent.rmdir()
    with _read_only(parent) if case == "parent-read-only" else contextlib.nullcontext():
        r = cli("packet", "--from", PERIOD[0], "--to", PERIOD[1], "--out", str(out),
                "--signer", f"ed25519:{packet_keys['key']}", "--db", history_store["db"],
                "--catalog", history_store["catalog"])
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: " + message.format(out=out, parent=parent)), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "criterion notebooks" not in r.stderr and "Traceback" not in r.stderr  # before any notebook ran
    if parent.exists():
        assert [p.name for p in parent.iterdir()] == (["q3"] if case == "is-a-file" else [])


@pytest.mark.parametrize("case, message", [
    ("fifo", "--previous: {manifest}: not a regular file (a FIFO)"),
    ("symlink", "--previous: {manifest}: not a regular file (a symlink)"),
    ("huge", "--previous: {manifest}: larger than"),
    ("missing", "--previous: {previous} has no manifest.json"),
])
def test_a_hostile_previous_packet_is_refused_before_building(history_store, packet_keys, tmp_path, case, message):
    previous = tmp_path / "previous"
    previous.mkdir()
    manifest = previous / "manifest.json"
    if case == "fifo":
        os.mkfifo(manifest)
    elif case == "symlink":
        manifest.symlink_to("/etc/hostname")
    elif case == "huge":
        with open(manifest, "wb") as fh:
            fh.truncate(2**30)
    r = subprocess.run([EXE, "packet", "--from", PERIOD[0], "--to", PERIOD[1], "--out", str(tmp_path / "p"),
                        "--signer", f"ed25519:{packet_keys['key']}", "--db", history_store["db"],
                        "--catalog", history_store["catalog"], "--previous", str(previous)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: " + message.format(manifest=manifest, previous=previous)), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "p").exists()


def test_workers_start_whatever_the_parents_main_module_is(history_store, packet_keys, tmp_path, monkeypatch):
    """Regression: the build's process pool used multiprocessing's spawn, which re-imports the parent's
    __main__ in every worker; under Streamlit's AppTest __main__ was app/control_room.py, whose
    `import ui` fails in a child (BrokenProcessPool in `make test`)."""
    import types

    from auditbook.history.period import parse_period
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.signing import Ed25519Signer
    script = tmp_path / "control_room.py"
    script.write_text("import ui_module_that_only_the_parent_can_import\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(script)
    fake_main.__spec__ = None
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    result = build_packet(period=parse_period(start=PERIOD[0], end=PERIOD[1]), out=tmp_path / "p",
                          signer=Ed25519Signer(packet_keys["key"]), db=history_store["db"],
                          catalog_path=Path(history_store["catalog"]), workers=2)
    assert result.failed == [] and result.criteria == 3


def test_verify_needs_a_key_and_a_folder(signed_packet, tmp_path):
    r = cli("verify", str(signed_packet))
    assert r.returncode == 2 and r.stderr.startswith("error: --public-key: give exactly one")
    r = cli("verify", str(tmp_path / "nope"), "--public-key", str(signed_packet / "manifest.json"))
    assert r.returncode == 2 and "not a PEM public key" in r.stderr


def test_keygen_private_key_is_owner_only_and_never_overwritten(tmp_path):
    r = cli("keygen", "--out", str(tmp_path / "k"))
    assert r.returncode == 0
    mode = stat.S_IMODE((tmp_path / "k.key").stat().st_mode)
    assert mode == 0o600
    assert b"PRIVATE KEY" in (tmp_path / "k.key").read_bytes() and b"PUBLIC KEY" in (tmp_path / "k.pub").read_bytes()
    before = (tmp_path / "k.key").read_bytes()
    r = cli("keygen", "--out", str(tmp_path / "k"))
    assert r.returncode == 2 and "already exists" in r.stderr
    assert (tmp_path / "k.key").read_bytes() == before


# -- notebooks on their own -----------------------------------------------------------------------

def test_explore_notebook_runs_top_to_bottom(history_store, tmp_path):
    import papermill as pm

    from auditbook.report.packet.build import NOTEBOOKS
    nb = pm.execute_notebook(str(NOTEBOOKS / "explore.ipynb"), str(tmp_path / "out.ipynb"),
                             parameters={"db": history_store["db"], "status": "FAIL"}, cwd=str(tmp_path),
                             progress_bar=False)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "ec2-sg-no-public-ingress" in outputs and "application/vnd.plotly.v1+json" in outputs
    html = "".join("".join(o.get("data", {}).get("text/html", "")) for c in nb.cells for o in c.get("outputs", []))
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and EVIL not in html


def test_control_notebook_collects_its_own_evidence(tmp_path, monkeypatch):
    """collect=True: the notebook runs the collectors its checks need against a live endpoint (here
    moto_server on 127.0.0.1) and records that as a run before reporting."""
    import boto3
    import papermill as pm

    from auditbook.demo.run import MotoServer, demo_environment
    from auditbook.report.packet.build import NOTEBOOKS
    with MotoServer() as server:
        for k, v in demo_environment(server.url).items():
            monkeypatch.setenv(k, v)
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="analyst-sees-this")
        db = f"sqlite:///{tmp_path}/live.db"
        today = dt.datetime.now(dt.timezone.utc).date()
        nb = pm.execute_notebook(str(NOTEBOOKS / "control.ipynb"), str(tmp_path / "out.ipynb"), progress_bar=False,
                                 parameters={"criterion": "CC6.6", "db": db, "collect": True, "regions": "us-east-1",
                                             "period_start": str(today), "period_end": str(today)}, cwd=str(tmp_path))
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "collected run 1" in outputs and "analyst-sees-this" in outputs
    from sqlalchemy.orm import Session

    from auditbook.store.db import open_engine
    from auditbook.store.models import Run
    with Session(open_engine(db)) as s:
        run = s.get(Run, 1)
        assert run.parameters["criterion"] == "CC6.6" and "aws.iam.user" not in run.parameters["resource_types"]


def test_notebooks_are_committed_without_outputs_and_take_parameters():
    import nbformat

    from auditbook.report.packet.build import NOTEBOOKS
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.outputs == [] and c.execution_count is None for c in code), path.name
        assert "parameters" in code[0].metadata.get("tags", []), path.name


def test_a_failed_build_removes_its_folder_only_after_the_data_thread_has_ended(history_store, packet_keys, tmp_path,
                                                                                 monkeypatch):
    """The packet's data files are written in a thread while the notebooks run: when the notebooks fail
    (or Ctrl-C), the partial folder is removed after that thread has ended — it could otherwise re-create
    part of the folder it was writing into (documents/<sha>/ is made with its parents)."""
    import time

    from auditbook.history.period import parse_period
    from auditbook.report.packet import build as packet_build
    from auditbook.report.packet.signing import Ed25519Signer

    def slow_write_data(engine, catalog, root, *args):
        time.sleep(1.0)
        (root / "documents" / "late").mkdir(parents=True, exist_ok=True)
        (root / "documents" / "late" / "file.txt").write_text("written after the notebooks failed")
        return {}, {"overview": [], "deviations": []}

    def failing_notebooks(*args, **kwargs):
        raise RuntimeError("a notebook worker was killed")
    monkeypatch.setattr(packet_build, "write_data", slow_write_data)
    monkeypatch.setattr(packet_build, "run_notebooks", failing_notebooks)
    with pytest.raises(RuntimeError, match="worker was killed"):
        packet_build.build_packet(period=parse_period(start=PERIOD[0], end=PERIOD[1]), out=tmp_path / "p",
                     signer=Ed25519Signer(packet_keys["key"]), db=history_store["db"],
                     catalog_path=Path(history_store["catalog"]), workers=1)
    time.sleep(1.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no partial folder, not even re-created
