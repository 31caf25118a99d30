"""The demo's SIMULATED audit work (demo/audit_work.py), on the small store of tests/packet_store.py:
the outage's reason, management's responses, the auditor's samples and then sign-offs by a preparer and
a second person (some left unsigned, one waiting, one with changes requested) — each through the real
service, on the real clock, in the audit trail, every name SIMULATED."""
import datetime as dt

import pytest

from auditbook.catalog.model import load_catalog
from auditbook.demo import audit_work
from auditbook.history.deviations import deviations
from auditbook.history.gaps import gap_reasons
from auditbook.history.period import parse_period
from auditbook.history.sampling import recorded_draws, verify_draw
from auditbook.history.signoffs import signoffs_for
from tests.packet_store import PERIOD, build_store

P = parse_period(start=PERIOD[0], end=PERIOD[1])


@pytest.fixture(scope="module")
def worked(tmp_path_factory):
    from auditbook.store.db import open_engine
    db = f"sqlite:///{tmp_path_factory.mktemp('audit-work')}/w.db"
    build_store(db)
    engine, catalog = open_engine(db), load_catalog()
    lines = []
    started = dt.datetime.now(dt.timezone.utc)
    done = audit_work.simulate_audit_work(engine, catalog, P, [dt.date(2026, 7, 5)], log=lines.append)
    return {"engine": engine, "catalog": catalog, "done": done, "lines": lines, "started": started}


def test_every_simulated_person_is_named_simulated_and_has_the_role_of_their_part():
    people = (audit_work.PREPARER, audit_work.REVIEWER, audit_work.MANAGEMENT, audit_work.AUDITOR)
    assert all("SIMULATED" in p.name for p in people) and len({p.name for p in people}) == 4
    assert audit_work.PREPARER.can("prepare_signoff") and not audit_work.PREPARER.can("review_signoff")
    assert audit_work.REVIEWER.can("review_signoff") and not audit_work.REVIEWER.can("prepare_signoff")
    assert audit_work.MANAGEMENT.can("respond_deviation") and audit_work.AUDITOR.can("draw_sample")


def test_sign_offs_two_people_some_unsigned_one_waiting_one_sent_back(worked):
    found = signoffs_for(worked["engine"], P, [c.id for c in worked["catalog"].controls])
    states = {s: x["state"] for s, x in found["criteria"].items()}
    assert {s for s, x in states.items() if x == "reviewed"} == set(audit_work.APPROVED)
    assert states["CC7.3"] == "prepared" and states["CC6.3"] == "changes requested"
    assert list(states.values()).count("unsigned") == len(states) - len(audit_work.APPROVED) - 2 > 30
    for subject in audit_work.APPROVED:
        x = found["criteria"][subject]
        assert (x["preparer"], x["reviewer"]) == (audit_work.PREPARER.name, audit_work.REVIEWER.name)
        assert x["prepared_at"] < x["reviewed_at"]
    assert found["packet"]["state"] == "reviewed" and found["assertion"]["signoff"]["state"] == "prepared"
    assert worked["done"]["signoffs"]["reviewed"] == len(audit_work.APPROVED)


def test_management_responds_to_the_gap_and_the_reason_is_recorded(worked):
    (gap,) = [d for d in deviations(worked["engine"], worked["catalog"], P) if d["kind"] == "monitoring gap"]
    assert gap["response"]["ticket"] == "OPS-311" and gap["response"]["responded_by"] == audit_work.MANAGEMENT.name
    assert "SIMULATED" in gap["response"]["root_cause"] and "SIMULATED" in gap["what"]  # the reason, in the gap
    (reason,) = gap_reasons(worked["engine"], P)
    assert (str(reason["from"]), str(reason["to"]), reason["by"]) == ("2026-07-05", "2026-07-05",
                                                                      audit_work.MANAGEMENT.name)
    assert worked["done"]["responses"] == 1  # the small store has none of the demo's storyline failures


def test_no_sign_off_predates_the_evidence_it_approves(worked):
    """Auditor's finding 3: responses and samples first, then preparations, then reviews, on the real
    clock — never a sign-off backdated before the samples and responses it rests on."""
    found = signoffs_for(worked["engine"], P, [c.id for c in worked["catalog"].controls])
    evidence = [dt.datetime.fromisoformat(d["at"]) for d in recorded_draws(worked["engine"], P)]
    evidence += [dt.datetime.fromisoformat(str(d["response"]["responded_at"]))
                 for d in deviations(worked["engine"], worked["catalog"], P) if d["response"]]
    assert evidence and min(evidence) >= worked["started"]
    signed = [x for x in found["criteria"].values() if x["state"] != "unsigned"] + [found["packet"]]
    signed.append(found["assertion"]["signoff"])
    for x in signed:
        assert dt.datetime.fromisoformat(x["prepared_at"]) >= max(evidence).replace(microsecond=0), x  # shown in s
        assert x["reviewed_at"] is None or x["reviewed_at"] >= x["prepared_at"], x
    comments = {s: found["criteria"][s]["preparation_comment"] for s in ("CC8.1", "CC6.1")}
    assert "sample" in comments["CC8.1"] and "sample" not in comments["CC6.1"]  # only what is attached


def test_the_storyline_responses_leave_the_computed_existed_at_start_answers_alone(worked):
    """Auditor's finding 10: no override of "existed at the period's start" (the certificate's stretch
    starts on the period's first day: "no" would contradict it)."""
    acm = {"kind": "failure", "check": audit_work.CERTIFICATE_CHECK, "resource_name": "staging.example.test",
           "until": None}
    fields = audit_work._response_for(acm)
    assert "SIMULATED" in fields["root_cause"] and not {"existed_at_start", "existed_reason"} & set(fields)
    assert not any(d["existed_at_start_overridden"] for d in deviations(worked["engine"], worked["catalog"], P))
    web = audit_work._response_for({"kind": "failure", "check": "ec2-sg-no-public-ingress",
                                    "resource_name": "web-https", "until": "2026-07-21T06:00:00+00:00"})
    assert (web["ticket"], web["remediated_on"]) == ("INC-2041", "2026-07-21")
    assert audit_work._response_for({"kind": "failure", "check": "ec2-sg-no-public-ingress",
                                     "resource_name": "ssh-anywhere", "until": None}) is None  # left open


def test_the_auditor_draws_three_samples_that_re_draw_identically(worked):
    draws = recorded_draws(worked["engine"], P)
    assert [(d["criterion"], d["kind"], d["drawn_by"], d["seed"]) for d in draws] == [
        ("CC7.3", "alerts", audit_work.AUDITOR.name, audit_work.SEED),
        ("CC8.1", "changes", audit_work.AUDITOR.name, audit_work.SEED),
        ("CC6.6", "resources", audit_work.AUDITOR.name, audit_work.SEED)]
    assert all(verify_draw(worked["engine"], worked["catalog"], d) == [] for d in draws)
    assert draws[0]["population_count"] >= 1 and draws[2]["population_count"] >= 3
    assert any("samples drawn by the auditor: CC7.3" in line for line in worked["lines"])
