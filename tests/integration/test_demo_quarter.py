"""The demo's simulated quarter on a real moto_server, and the full 61-criterion packet built from it:
what `make demo` builds. The storyline's violations must show up in the history exactly as simulated;
its CloudTrail changes and alerts in the period; and the packet shows what an auditor looks for — the
company's controls, sign-offs, management's responses, the auditor's samples — all SIMULATED."""
import datetime as dt
import json
import os
from pathlib import Path

import boto3
import pytest

from auditbook.demo.estate import build
from auditbook.demo.quarter import OUTAGE
from auditbook.demo.run import MotoServer, demo_environment, simulate_period
from auditbook.demo.trail import STORY
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
            done = simulate_period(ids, Q, db, log=lambda m: None)
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


@pytest.fixture(scope="module")
def packet(simulated, tmp_path_factory):
    from auditbook.report.packet.build import build_packet
    from auditbook.report.packet.signing import Ed25519Signer, keygen
    root = tmp_path_factory.mktemp("packet")
    keygen(str(root / "k"))
    result = build_packet(period=Q, out=root / "packet", signer=Ed25519Signer(root / "k.key"), db=simulated["db"])
    return {"result": result, "out": root / "packet", "public": root / "k.pub"}


def test_full_packet_of_the_quarter_builds_and_verifies(simulated, packet):
    from auditbook.report.packet.manifest import verify_packet
    from auditbook.report.packet.signing import load_public_key
    result, out = packet["result"], packet["out"]
    assert result.failed == [] and result.criteria == 61 and result.runs == 89
    assert result.bytes < 30 * 2**20
    assert verify_packet(out, public_key=load_public_key(packet["public"])).valid
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["simulated_runs"]) == 89
    assert "SIMULATED DATA" in (out / "index.html").read_text()
    assert "SIMULATED DATA" in (out / "criteria" / "CC6.6.html").read_text()
    assert manifest["documents"] == simulated["done"]["documents"] > 0
    assert "SIMULATED demo document" in next((out / "documents").rglob("*.txt")).read_text()
    assert len(list(Path(out / "criteria").glob("*.html"))) == 61


def _csv(path: Path) -> list[dict]:
    from auditbook.history.populations import read_csv
    return read_csv(path)


def test_the_quarters_changes_are_its_cloudtrail_write_events_some_linked_to_a_ticket(simulated, packet):
    rows = sorted(_csv(packet["out"] / "data" / "population-changes.csv"), key=lambda r: r["at"])
    assert [r["event_name"] for r in rows] == [name for _day, _account, _source, name, _request, _who in STORY]
    assert all(Q.start.isoformat() <= r["at"][:10] <= Q.end.isoformat() for r in rows)
    linked = {r["event_name"]: r["ticket"] for r in rows if r["linked"] == "true"}
    assert linked == {"RevokeSecurityGroupIngress": "INC-2041", "PutBucketPublicAccessBlock": "INC-2077",
                      "DisableKeyRotation": "CHG-1187", "EnableKeyRotation": "CHG-1190"}
    unlinked = [r for r in rows if r["linked"] == "false"]
    assert {r["session_name"] or r["principal"].rsplit("/", 1)[-1] for r in unlinked} == {
        "alex@example.test", "ci-deployer", "dev-console"}
    assert all(r["principal"] and r["source_ip"] and r["resources"] for r in rows)  # who, from where, on what


def test_the_quarters_alerts_fired_in_the_period(simulated, packet):
    rows = _csv(packet["out"] / "data" / "population-alerts.csv")
    rules = {r["rule"] for r in rows}
    assert {"CheckRegressed", "SecurityGroupOpenedToWorld", "IAMPolicyChanged"} <= rules
    assert all(Q.start.isoformat() <= r["fired_at"][:10] <= Q.end.isoformat() for r in rows), \
        [(r["rule"], r["fired_at"]) for r in rows]
    regressed = sorted(r["fired_at"][:16] for r in rows if r["rule"] == "CheckRegressed")
    assert regressed == ["2026-07-18T06:00", "2026-08-08T06:00", "2026-09-05T06:00", "2026-09-19T06:00"]


def test_the_packet_shows_sign_offs_responses_samples_and_the_company_controls(simulated, packet):
    from auditbook.demo import audit_work
    data = packet["out"] / "data"
    signed = json.loads((data / "signoffs.json").read_text())
    assert {s for s, x in signed["criteria"].items() if x["state"] == "reviewed"} == set(audit_work.APPROVED)
    assert sum(x["state"] == "unsigned" for x in signed["criteria"].values()) > 40
    assert signed["packet"]["reviewer"] == audit_work.REVIEWER.name != signed["packet"]["preparer"]
    devs = json.loads((data / "deviations.json").read_text())
    devs = devs["deviations"] if isinstance(devs, dict) else devs
    answered = [d for d in devs if d["response"]]
    assert len(answered) == simulated["done"]["responses"] >= 4
    assert not any(d["existed_at_start_overridden"] for d in devs)  # the computed answers stand (finding 10)
    assert all("SIMULATED" in d["response"]["root_cause"] and d["response"]["responded_by"] == audit_work.MANAGEMENT.name
               for d in answered)
    samples = json.loads((data / "samples.json").read_text())
    samples = samples["draws"] if isinstance(samples, dict) else samples
    assert sorted(d["criterion"] for d in samples) == sorted(audit_work.SAMPLED)
    assert all(d["drawn_by"] == audit_work.AUDITOR.name and d["seed"] == audit_work.SEED for d in samples)
    controls = json.loads((data / "company-controls.json").read_text())
    controls = controls["controls"] if isinstance(controls, dict) else controls
    assert {c["id"] for c in controls} >= {"AC-01", "AC-02"}  # the bundled catalog includes the example library
    index = (packet["out"] / "index.html").read_text()
    assert "AC-01" in index and "Dana Reyes (SIMULATED compliance analyst)" in index and "OPS-311" in index
    assert "[&#x27;CC" not in index and "['CC" not in index  # the company table's criteria: names and badges, not a list


def test_the_incidents_the_quarter_cites_are_in_the_packet_with_their_records(simulated, packet):
    """Finding 1: INC-2041 and INC-2077 (session names of the quarter's changes, management's responses)
    are the period's incidents, each with its approved record; CC7.4 is not judged on an empty population."""
    data = packet["out"] / "data"
    found = json.loads((data / "incidents.json").read_text())
    found = found["incidents"] if isinstance(found, dict) else found
    titles = sorted(i["title"].split(":")[0] for i in found)
    assert titles == ["SIMULATED INC-2041", "SIMULATED INC-2077"]
    assert all(Q.start.isoformat() <= str(i["created_at"])[:10] <= Q.end.isoformat() for i in found)
    assert sorted(simulated["done"]["incidents"]) == ["INC-2041", "INC-2077"]
    rows = [r for r in _csv(data / "population-incidents.csv")]
    assert len(rows) == 2 and all(r["status"] == "closed" for r in rows)
    devs = json.loads((data / "deviations.json").read_text())
    devs = devs["deviations"] if isinstance(devs, dict) else devs
    assert not [d for d in devs if d.get("item") == "Incident records"]  # each incident had its record


def test_sign_offs_come_after_the_samples_and_responses_they_approve(simulated, packet):
    """Finding 3: no sign-off backdated before the evidence (the real clock, in the order of an audit)."""
    data = packet["out"] / "data"
    signed = json.loads((data / "signoffs.json").read_text())
    samples = json.loads((data / "samples.json").read_text())
    samples = samples["draws"] if isinstance(samples, dict) else samples
    last_draw = max(dt.datetime.fromisoformat(d["at"]) for d in samples).replace(microsecond=0)
    subjects = [x for x in signed["criteria"].values() if x["state"] != "unsigned"] + [signed["packet"]]
    assert subjects and all(dt.datetime.fromisoformat(x["prepared_at"]) >= last_draw for x in subjects)
    assert all(x["reviewed_at"] is None or x["reviewed_at"] >= x["prepared_at"] for x in subjects)


def test_the_management_account_has_one_name(simulated, packet):
    """Finding 21: the packet names each account as the demo does (the organisation's name)."""
    scope = (packet["out"] / "index.html").read_text()
    assert f"<td>{simulated['ids']['master']}</td><td>master</td>" in scope
    assert set(simulated["ids"]) == {"master", "audit-logs", "prod-us-east", "staging"}


def test_the_application_audit_populations_say_when_no_log_group_was_read(packet):
    """CC6.3 and CC8.1 carry the application's audit events as a population; in a period no log group
    was read (the demo reads them after the quarter) the page says the completeness is unknown, never
    that every log group was covered."""
    out = packet["out"]
    for cid in ("CC6.3", "CC8.1"):
        page = (out / "criteria" / f"{cid}.html").read_text()
        assert "Application audit events" in page and f"data/population-app_events-{cid}.csv" in page
        assert "no application audit log group was read" in page
        assert "Every log group read was covered" not in page
        assert (out / "data" / f"population-app_events-{cid}.csv").is_file()
    assert "Application audit events" not in (out / "criteria" / "CC6.6.html").read_text()
    assert "Thresholds in force" in (out / "index.html").read_text()
