"""The bridge letter and the reasons for monitoring gaps (issue 14 §9, docs/bridge.md): what was
monitored since the last report's end (days with a scan, gaps each with its reason or "no reason
recorded", each criterion's one status, the deviations and incidents of those days, management's
statement), signed like a packet and checked by `auditbook verify`; gap reasons recorded by admins
only, in the audit trail; hostile text inert in the page and the data; bad input one line, exit 2."""
import datetime as dt
import json
import os
from pathlib import Path

import pytest
from freezegun import freeze_time

from auditbook.auth import Actor, PermissionDenied
from auditbook.catalog.model import load_catalog
from auditbook.errors import UserError
from auditbook.history.gaps import NO_REASON, explain_gap, gap_reasons, monitoring_gaps
from auditbook.history.period import parse_period, period_runs
from auditbook.store.db import open_engine
from auditbook.store.session import reading, writing
from tests.conftest import run_main

A, REGION, SG, CHECK = "111111111111", "us-east-1", "aws.ec2.security_group", "ec2-sg-no-public-ingress"
SINCE, TODAY = "2026-06-30", dt.date(2026, 7, 8)  # the last report ended 30 June; the letter covers 1-8 July
SCANNED = (1, 2, 4, 7, 8)  # 3 July: a gap with a reason; 5-6 July: a gap without one
ADMIN = Actor("Ada Admin", "admin")
EVIL = '<script>alert(1)</script> <img src=x onerror=alert(1)> "q" & \'s\' [red]x[/red]\nsecond line'


def finding(resource: str, status: str):
    from auditbook.evaluate.evaluator import Finding
    return Finding(CHECK, ["CC6.6"], status, "high", A, REGION, REGION, SG, resource,
                   f"arn:aws:ec2:{REGION}:{A}:security-group/{resource}",
                   "port 22 open to 0.0.0.0/0" if status == "FAIL" else "ok", resource_name=resource)


def save(engine, day: int, status: str) -> int:
    from auditbook.collect.records import Collection, Scope
    from auditbook.store.runs import save_run
    at = dt.datetime(2026, 7, day, 6, tzinfo=dt.timezone.utc)
    with writing(engine) as session:
        return save_run(session, catalog_sha256="x", tool_version="test", parameters={"regions": [REGION]},
                        identities=[{"account": A, "name": "prod", "role": None, "identity": {"Account": A},
                                     "error": None}],
                        collection=Collection(scopes=[Scope(A, REGION, SG, None)]),
                        findings=[finding(EVIL, status)], started_at=at, finished_at=at + dt.timedelta(seconds=5))


@pytest.fixture
def store(tmp_path):
    """Runs on 1, 2, 4, 7, 8 July; the group named EVIL fails from 4 July (a deviation, still open);
    3 July explained with a hostile reason; an incident opened on 2 July; Ed25519 keys."""
    from auditbook.monitor import incidents
    from auditbook.report.packet.signing import keygen
    from tests.packet_store import small_catalog
    catalog_path = small_catalog(tmp_path / "catalog.yaml")
    db = f"sqlite:///{tmp_path}/b.db"
    engine = open_engine(db)
    for day in SCANNED:
        save(engine, day, "FAIL" if day >= 4 else "PASS")
    with freeze_time("2026-07-02 10:00:00"):
        incidents.create(engine, Actor("ana", "analyst"), title=f"Incident {EVIL}", severity="high")
    explain_gap(engine, ADMIN, "2026-07-03", "2026-07-03", EVIL, today=TODAY)
    keygen(str(tmp_path / "k"))
    keygen(str(tmp_path / "other"))
    return {"db": db, "engine": engine, "catalog": load_catalog(catalog_path), "catalog_path": catalog_path,
            "key": tmp_path / "k.key", "pub": tmp_path / "k.pub", "other_pub": tmp_path / "other.pub",
            "root": tmp_path}


def build(store, out: Path, **kw):
    from auditbook.report.bridge import build_bridge
    from auditbook.report.packet.signing import parse_signer
    return build_bridge(since=kw.get("since", SINCE), to=kw.get("to", "2026-07-08"), out=out,
                        signer=parse_signer(f"ed25519:{store['key']}"), db=store["db"],
                        catalog_path=store["catalog_path"], today=TODAY)


# -- gap reasons -----------------------------------------------------------------------------------

def test_each_gap_carries_its_reason_or_says_none_was_recorded(store):
    pruns = period_runs(store["engine"], parse_period(None, "2026-07-01", "2026-07-08"))
    gaps = monitoring_gaps(store["engine"], pruns, TODAY)
    assert [(g["from"], g["to"], g["days"], g["reason"]) for g in gaps] == [
        ("2026-07-03", "2026-07-03", 1, EVIL), ("2026-07-05", "2026-07-06", 2, NO_REASON)]
    assert gaps[0]["explained_by"] == "Ada Admin" and gaps[1]["explained_by"] is None


def test_a_later_reason_supersedes_for_its_days_and_splits_a_range(store):
    engine = store["engine"]
    explain_gap(engine, ADMIN, "2026-07-06", "2026-07-06", "the scheduler host was patched", today=TODAY)
    explain_gap(engine, ADMIN, "2026-07-03", "2026-07-03", "the cron job was disabled by mistake", today=TODAY)
    pruns = period_runs(engine, parse_period(None, "2026-07-01", "2026-07-08"))
    assert [(g["from"], g["to"], g["reason"]) for g in monitoring_gaps(engine, pruns, TODAY)] == [
        ("2026-07-03", "2026-07-03", "the cron job was disabled by mistake"),
        ("2026-07-05", "2026-07-05", NO_REASON), ("2026-07-06", "2026-07-06", "the scheduler host was patched")]
    assert len(gap_reasons(engine, parse_period(None, "2026-07-03", "2026-07-03"))) == 2  # both kept


def test_explaining_a_gap_is_for_admins_and_goes_into_the_trail(store):
    from auditbook.store import audit_log
    engine = store["engine"]
    for role in ("analyst", "approver", "auditor", "viewer"):
        with pytest.raises(PermissionDenied):
            explain_gap(engine, Actor("x", role), "2026-07-05", "2026-07-06", "why", today=TODAY)
    with reading(engine) as session:
        trail = audit_log.trail(session, "monitoring_gap", "2026-07-03..2026-07-03")
    assert [(e["actor"], e["role"], e["action"], e["after"]) for e in trail] == [
        ("Ada Admin", "admin", "explain_gap", {"from": "2026-07-03", "to": "2026-07-03", "reason": EVIL})]
    with reading(engine) as session:  # the refused attempts left nothing
        assert audit_log.trail(session, "monitoring_gap", "2026-07-05..2026-07-06") == []


@pytest.mark.parametrize("first,last,reason,message", [
    ("2026-07-06", "2026-07-05", "x", "--to: 2026-07-05 is before --from 2026-07-06"),
    ("2026-02-30", "2026-07-05", "x", "--from: '2026-02-30' is not a date"),
    ("２０２６-07-01", "2026-07-05", "x", "--from: "),
    ("2026-07-05", "2026-07-09", "x", "--to: 2026-07-09 is after today (2026-07-08)"),
    ("2026-07-05", "2026-07-06", "  ", "--reason: a reason is required"),
    ("2026-07-05", "2026-07-06", "a\x1b[31mb", "--reason: "),
    ("2026-07-05", "2026-07-06", "x" * 1001, "--reason: 1001 characters; at most 1000"),
])
def test_bad_gap_explanations_are_one_line_and_record_nothing(store, first, last, reason, message):
    with pytest.raises(UserError) as exc:
        explain_gap(store["engine"], ADMIN, first, last, reason, today=TODAY)
    assert str(exc.value).startswith(message) and "\n" not in str(exc.value)
    assert len(gap_reasons(store["engine"], parse_period(None, "2026-07-01", "2026-07-08"))) == 1


# -- the letter ------------------------------------------------------------------------------------

def test_the_letter_states_the_monitoring_gaps_statuses_deviations_and_incidents(store):
    from auditbook.history.type2 import overview
    result = build(store, store["root"] / "bridge")
    data = json.loads((result.path / "data" / "bridge.json").read_text())
    assert (data["last_report_end"], data["window"]["start"], data["window"]["end"]) == (SINCE, "2026-07-01", "2026-07-08")
    assert (data["days"], data["days_with_scan"], len(data["runs"])) == (8, 5, 5)
    assert data["scanned"] == [{"from": "2026-07-01", "to": "2026-07-02"}, {"from": "2026-07-04", "to": "2026-07-04"},
                               {"from": "2026-07-07", "to": "2026-07-08"}]
    assert [(g["from"], g["to"], g["reason"]) for g in data["gaps"]] == [
        ("2026-07-03", "2026-07-03", EVIL), ("2026-07-05", "2026-07-06", NO_REASON)]
    pruns = period_runs(store["engine"], parse_period(None, "2026-07-01", "2026-07-08"))
    statuses = {r["criterion"]: r["status"] for r in overview(store["engine"], store["catalog"], pruns, today=TODAY)}
    assert {c["criterion"]: c["status"] for c in data["criteria"]} == statuses and statuses["CC6.6"] == "FAIL"
    failure = [d for d in data["deviations"] if d["kind"] == "failure"]
    assert [(d["resource_name"], d["from"][:10], d["state"]) for d in failure] == [(EVIL, "2026-07-04", "open")]
    assert [i["title"] for i in data["incidents"]] == [f"Incident {EVIL}"]
    assert "from 2026-07-01 to 2026-07-08" in data["statement"] and "ended on 2026-06-30" in data["statement"]
    assert "5 of those 8 days had a scan" in data["statement"]
    assert (result.gap_days, result.unexplained_gap_days, result.incidents) == (3, 2, 1)
    page = (result.path / "index.html").read_text()
    assert "no reason recorded" in page and "2026-07-05" in page and "Incident " in page


def test_hostile_text_stays_inert_in_the_page_and_the_data(store):
    result = build(store, store["root"] / "bridge")
    page = (result.path / "index.html").read_text()
    assert "<script" not in page and "<img" not in page and "onerror=alert(1)>" not in page.replace("&gt;", "")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    data = json.loads((result.path / "data" / "bridge.json").read_text())
    assert data["gaps"][0]["reason"] == EVIL  # kept as typed; JSON is data, escaped by whoever shows it


def test_the_letter_is_signed_and_verifies_and_a_changed_file_fails(store):
    from auditbook.report.packet.manifest import verify_packet
    from auditbook.report.packet.signing import load_public_key
    result = build(store, store["root"] / "bridge")
    key = load_public_key(store["pub"])
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["document"] == "bridge-letter"
    assert {f["path"] for f in manifest["files"]} == {"index.html", "data/bridge.json"}
    assert verify_packet(result.path, public_key=key).valid
    assert not verify_packet(result.path, public_key=load_public_key(store["other_pub"])).valid
    target = result.path / "data" / "bridge.json"
    target.write_text(target.read_text().replace(NO_REASON, "the auditor was told"))
    problems = verify_packet(result.path, public_key=key).problems
    assert len(problems) == 1 and problems[0].startswith("changed file: 'data/bridge.json'")


def test_no_scan_in_the_window_is_refused_with_nothing_written(store):
    out = store["root"] / "none"
    with pytest.raises(UserError, match="no runs in the store between 2026-06-01 and 2026-06-30"):
        build(store, out, since="2026-05-31", to="2026-06-30")
    assert not out.exists() and not [p for p in store["root"].iterdir() if ".partial-" in p.name]


# -- the commands ----------------------------------------------------------------------------------

run = run_main  # `auditbook ARGS` in-process: (exit code, stdout, stderr)


def test_the_commands_explain_a_gap_write_the_letter_and_verify_it(store, capsys, monkeypatch):
    db, out = store["db"], store["root"] / "letter"
    with freeze_time("2026-07-08 12:00:00"):
        code, text, err = run(capsys, monkeypatch, "gaps", "explain", "--from", "2026-07-05", "--to", "2026-07-06",
                              "--reason", "[red]maintenance[/red]", "--db", db)
        assert code == 0 and "reason recorded for 2026-07-05 to 2026-07-06: [red]maintenance[/red]" in text, err
        code, text, err = run(capsys, monkeypatch, "gaps", "list", "--from", "2026-07-01", "--to", "2026-07-08",
                              "--format", "json", "--db", db)
        assert [g["reason"] for g in json.loads(text)] == [EVIL, "[red]maintenance[/red]"]
        code, text, err = run(capsys, monkeypatch, "bridge", "--since", SINCE, "--out", str(out),
                              "--signer", f"ed25519:{store['key']}", "--db", db, "--catalog", str(store["catalog_path"]))
    assert code == 0 and "5 of 8 days with a scan, 3 without (0 with no reason recorded)" in text, err
    trail = json.loads((out / "data" / "bridge.json").read_text())["gaps"]
    assert trail[1]["explained_by"].endswith("(cli)")
    code, text, err = run(capsys, monkeypatch, "verify", str(out), "--public-key", str(store["pub"]))
    assert (code, text.strip()) == (0, "valid"), err


@pytest.mark.parametrize("args,message", [
    (("--since", "2026-07-09", "--to", "2026-07-08"), "error: --since: 2026-07-09 is not before --to 2026-07-08"),
    (("--since", "2026-06-31"), "error: --since: '2026-06-31' is not a date (YYYY-MM-DD)"),
    (("--since", "2026-06-30", "--to", "July 8"), "error: --to: 'July 8' is not a date (YYYY-MM-DD)"),
    (("--since", "2026-06-30", "--to", "2026-07-09"), "error: --to: 2026-07-09 is after today (2026-07-08)"),
])
def test_bad_dates_are_one_line_exit_2_and_nothing_written(store, capsys, monkeypatch, args, message):
    out = store["root"] / "letter"
    with freeze_time("2026-07-08 12:00:00"):
        code, text, err = run(capsys, monkeypatch, "bridge", *args, "--out", str(out),
                              "--signer", f"ed25519:{store['key']}", "--db", store["db"])
    assert code == 2 and err.startswith(message) and err.count("\n") == 1 and not out.exists()


def test_an_unwritable_out_is_one_line_exit_2(store, capsys, monkeypatch):
    locked = store["root"] / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    full = store["root"] / "full"
    (full / "x").mkdir(parents=True)
    cases = [(store["root"] / "missing" / "letter", "error: --out: "),
             (store["key"] / "letter", "error: --out: "),
             (full, "error: --out: "),
             (store["key"], "error: --out: ")]
    cases.append((locked / "letter", "error: --out: cannot create a folder in"))
    if os.geteuid() == 0:  # root writes into a read-only folder anyway: refuse as the kernel would
        real_mkdir = Path.mkdir

        def refused(self, *a, **kw):
            if self.parent == locked:
                raise PermissionError(13, "Permission denied", str(self))
            return real_mkdir(self, *a, **kw)
        monkeypatch.setattr(Path, "mkdir", refused)
    try:
        for target, message in cases:
            with freeze_time("2026-07-08 12:00:00"):
                code, text, err = run(capsys, monkeypatch, "bridge", "--since", SINCE, "--out", str(target),
                                      "--signer", f"ed25519:{store['key']}", "--db", store["db"],
                                      "--catalog", str(store["catalog_path"]))
            assert code == 2 and err.startswith(message) and err.count("\n") == 1, (target, err)
        assert list(locked.iterdir()) == [] and [p.name for p in full.iterdir()] == ["x"]
    finally:
        locked.chmod(0o700)
