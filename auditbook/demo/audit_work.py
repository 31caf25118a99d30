"""What people do with the simulated quarter once it is over (SIMULATED), through the same services
the control room and the command line use — so the demo's packet shows every section an auditor looks
for filled in as it would be, and every name says SIMULATED:

- the reason for the scanner outage (history.gaps, an admin),
- management's responses to some deviations: root cause, ticket, compensating control, remediation
  (history.deviations),
- the auditor's samples of CC7.3 (alerts), CC8.1 (changes) and one automated control, CC6.6
  (history.sampling: recorded with the population's hash, re-drawable from the packet),
- then, once that evidence exists, sign-offs: a preparer and then a second person reviewing some
  criteria, the packet and the management assertion; others are left unsigned, one waits for review,
  one has changes requested (history.signoffs: the two-person rule is enforced there).

Each step runs after the quarter, in that order, on the real clock, as it would: the people do it while
preparing the audit, and no sign-off is dated before the evidence it approves."""
from __future__ import annotations

import datetime as dt
from typing import Callable, Optional

from auditbook.auth import Actor
from auditbook.catalog.model import Catalog
from auditbook.history import deviations as deviation_service
from auditbook.history import signoffs
from auditbook.history.gaps import explain_gap
from auditbook.history.period import Period
from auditbook.history.sampling import take_sample

PREPARER = Actor("Dana Reyes (SIMULATED compliance analyst)", "analyst")
REVIEWER = Actor("Sam Okafor (SIMULATED control owner)", "approver")
MANAGEMENT = Actor("Lee Moreno (SIMULATED head of infrastructure)", "admin")
AUDITOR = Actor("Riya Shah (SIMULATED external auditor)", "auditor")
SEED = 20261001  # the auditor's seed, recorded with each draw
SAMPLED = ("CC7.3", "CC8.1", "CC6.6")  # alerts, changes, and one automated control's resources
APPROVED = ("CC6.1", "CC6.6", "CC6.7", "CC7.2", "CC8.1", "A1.2")
WAITING = ("CC7.3",)  # prepared, not reviewed yet
CHANGES_REQUESTED = {"CC6.3": "SIMULATED: the inline policy debug-s3 on dev-console (staging) is still open at the "
                              "period's end; add management's response to that deviation and prepare again."}


def outage_reason(engine, gap_days: list[dt.date]) -> Optional[dict]:
    """The reason for the days without a scan, recorded by an admin."""
    if not gap_days:
        return None
    return explain_gap(engine, MANAGEMENT, min(gap_days), max(gap_days),
                       "SIMULATED: the scanner's host ran out of disk after a log rotation failed; scans resumed "
                       "once it was cleaned (ticket OPS-311). CloudTrail was read only where logs were delivered "
                       "(the log-coverage deviations).")


# (how a failure deviation is recognised: check, resource name) -> the response's fields
FAILURE_RESPONSES: dict[tuple[str, str], dict] = {
    ("ec2-sg-no-public-ingress", "web-https"): {
        "root_cause": "SIMULATED: an engineer opened SSH to the world from the console to debug a deployment.",
        "response": "SIMULATED: closed within three days on the on-call's incident; console changes to security "
                    "groups now need a change ticket.",
        "ticket": "INC-2041", "compensating": "SIMULATED: the instances behind web-https accept SSH keys of "
                                              "no one (SSM Session Manager only).",
        "remediation": "Port 22 revoked on web-https."},
    ("s3-bucket-public-access-block", "prod-customer-data"): {
        "root_cause": "SIMULATED: a Terraform module upgrade dropped the bucket's public access block.",
        "response": "SIMULATED: restored by the on-call; the module is pinned and the plan is reviewed for "
                    "public access block changes.",
        "ticket": "INC-2077", "compensating": "SIMULATED: the account-level public access block stayed on, "
                                              "so the bucket was never public.",
        "remediation": "Public access block restored on prod-customer-data."},
    ("kms-cmk-rotation", "prod-data"): {
        "root_cause": "SIMULATED: rotation was disabled by a deployment that recreated the key policy.",
        "response": "SIMULATED: re-enabled under CHG-1190; the deployment role can no longer disable rotation.",
        "ticket": "CHG-1187"},
}
CERTIFICATE_CHECK = "acm-certificate-not-expiring"


def _response_for(dev: dict) -> Optional[dict]:
    if dev["kind"] == "monitoring gap":
        return {"root_cause": "SIMULATED: the scanner's host ran out of disk.", "ticket": "OPS-311",
                "response": "SIMULATED: disk alerting added to the scanner's host.",
                "compensating": "SIMULATED: none for the three days: the log-coverage deviations show no "
                                "CloudTrail input then."}
    if dev["kind"] == "failure" and dev["check"] == CERTIFICATE_CHECK:
        return {"root_cause": "SIMULATED: the staging certificate is renewed by hand.",
                "response": "SIMULATED: staging certificates move to ACM-managed renewal."}
    known = FAILURE_RESPONSES.get((dev["check"], dev["resource_name"])) if dev["kind"] == "failure" else None
    if known is None:
        return None
    return known | ({"remediated_on": dev["until"][:10]} if dev["until"] else {})


def respond_to_deviations(engine, catalog: Catalog, period: Period) -> int:
    """Management's responses to the deviations it has an answer for (the others stay without one, as
    they would while the audit is prepared); the computed existed-at-start answers stand."""
    count = 0
    for dev in deviation_service.deviations(engine, catalog, period):
        fields = _response_for(dev)
        if fields is None:
            continue
        deviation_service.respond(engine, MANAGEMENT, dev["id"], 0, catalog=catalog, period=period, **fields)
        count += 1
    return count


def _prepared_comment(subject: str) -> str:
    sampled = " and the auditor's sample" if subject in SAMPLED else ""
    return f"SIMULATED: population{sampled}, deviations and management's responses of {subject} read; ready for review."


def sign_off(engine, catalog: Catalog, period: Period) -> dict:
    """Preparations, then reviews, of some criteria, the packet and the assertion (others unsigned), on
    the real clock: after the responses and samples they rest on."""
    for subject in APPROVED + WAITING + tuple(CHANGES_REQUESTED):
        signoffs.prepare(engine, catalog, PREPARER, period, subject, _prepared_comment(subject))
    for subject in APPROVED:
        signoffs.review(engine, catalog, REVIEWER, period, subject, "approved",
                        "SIMULATED: evidence read; the conclusion follows from it.")
    for subject, comment in CHANGES_REQUESTED.items():
        signoffs.review(engine, catalog, REVIEWER, period, subject, "changes-requested", comment)
    signoffs.prepare(engine, catalog, PREPARER, period, signoffs.PACKET, "SIMULATED: packet ready for the auditor.")
    signoffs.review(engine, catalog, REVIEWER, period, signoffs.PACKET, "approved", "SIMULATED: packet reviewed.")
    signoffs.prepare(engine, catalog, MANAGEMENT, period, signoffs.ASSERTION,
                     "SIMULATED: management's assertion for the period.")
    counts = signoffs.signoffs_for(engine, period, [c.id for c in catalog.controls])["criteria"].values()
    return {state: sum(1 for c in counts if c["state"] == state) for state in signoffs.STATES}


def draw_samples(engine, catalog: Catalog, period: Period) -> list[dict]:
    """The auditor's draws, sized by each control's frequency, with one recorded seed."""
    return [take_sample(engine, catalog, AUDITOR, criterion, period, seed=SEED, by_frequency=True)
            for criterion in SAMPLED]


def simulate_audit_work(engine, catalog: Catalog, period: Period, gap_days: list[dt.date],
                        log: Callable[[str], None] = print) -> dict:
    """Every step above, in the order people take them; returns what was done, counted."""
    outage_reason(engine, gap_days)
    responses = respond_to_deviations(engine, catalog, period)
    draws = draw_samples(engine, catalog, period)
    states = sign_off(engine, catalog, period)
    log(f"SIMULATED audit work: {responses} management responses to deviations; sign-offs "
        + ", ".join(f"{n} {s}" for s, n in states.items() if n) + f" of {sum(states.values())} criteria, the packet "
        "reviewed, the assertion prepared; samples drawn by the auditor: "
        + ", ".join(f"{d['criterion']} {len(d['ids'])} of {d['population_count']} {d['kind']}" for d in draws))
    return {"responses": responses, "signoffs": states, "samples": {d["criterion"]: d for d in draws}}
