"""The demo's simulated quarter of daily scans (SIMULATED, and labelled so in every run and packet).

The simulated organisation is changed on a few days — violations appear and are fixed — and scanned
for real on those days; on the other days the last collection is evaluated and stored again as that
day's run (a replay: moto's state did not change, so a scan would read the same answers). A few days
have no run at all, a scanner outage the packet must show as a monitoring gap. Each run is stamped
with its simulated day and carries `simulated` in its parameters. The quarter ends with the estate
as `demo_estate.build` left it."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Optional

import boto3

from auditbook.auth import Actor
from auditbook.catalog.model import load_catalog
from auditbook.demo.clock import alert_clock
from auditbook.demo.estate import REGIONS, ROLE
from auditbook.evaluate.risk_register import load_register
from auditbook.history.period import Period
from auditbook.scan import record_run, run_scan
from auditbook.store.db import open_engine

LABEL = "demo: simulated quarter"
OUTAGE = range(52, 55)  # days of the quarter (0-based) with no scan at all


def assumed_session(account_id: str):
    """A boto3 session in a demo account, through the role the demo organisation gives every account."""
    sts = boto3.client("sts", region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/{ROLE}",
                            RoleSessionName="demo-quarter")["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name="us-east-1")


def _sg_id(ec2, name: str) -> str:
    return ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"][0]["GroupId"]


SSH_WORLD = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
BLOCK_ALL = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
DEBUG_POLICY = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", '
                '"Resource": "*"}]}')


@dataclass
class Event:
    day: int
    account: str
    what: str
    apply: Callable


def storyline(ids: dict) -> tuple[list[Event], Callable]:
    """(the quarter's events, what to undo before day 0 so that a planted violation can appear later)."""
    prod, staging = assumed_session(ids["prod-us-east"]), assumed_session(ids["staging"])
    ec2, s3, kms = prod.client("ec2"), prod.client("s3"), prod.client("kms")
    iam_staging = staging.client("iam")
    web = _sg_id(ec2, "web-https")
    key = kms.describe_key(KeyId="alias/prod-data")["KeyMetadata"]["KeyId"]

    def before():
        iam_staging.delete_user_policy(UserName="dev-console", PolicyName="debug-s3")

    events = [
        Event(17, "prod-us-east", "security group web-https opened to the world on port 22",
              lambda: ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=SSH_WORLD)),
        Event(20, "prod-us-east", "port 22 closed again on web-https",
              lambda: ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=SSH_WORLD)),
        Event(38, "prod-us-east", "public access block removed from prod-customer-data",
              lambda: s3.delete_public_access_block(Bucket="prod-customer-data")),
        Event(45, "prod-us-east", "public access block restored on prod-customer-data",
              lambda: s3.put_public_access_block(Bucket="prod-customer-data", PublicAccessBlockConfiguration=BLOCK_ALL)),
        Event(66, "staging", "inline policy debug-s3 put on user dev-console (still there at the end)",
              lambda: iam_staging.put_user_policy(UserName="dev-console", PolicyName="debug-s3",
                                                  PolicyDocument=DEBUG_POLICY)),
        Event(80, "prod-us-east", "rotation disabled on KMS key prod-data",
              lambda: kms.disable_key_rotation(KeyId=key)),
        Event(84, "prod-us-east", "rotation re-enabled on KMS key prod-data",
              lambda: kms.enable_key_rotation(KeyId=key)),
    ]
    return events, before


DOCUMENTED = ("CC1.1", "CC2.1", "CC6.4", "CC7.4", "CC9.2", "A1.3")  # criteria given demo documents
SUBMITTER = Actor("Dana Reyes (SIMULATED compliance analyst)", "analyst")  # two distinct simulated people:
APPROVER = Actor("Sam Okafor (SIMULATED control owner)", "approver")        # the two-person rule


LATE_UPLOAD = ("SIMULATED: the signed document was kept in the owner's shared drive during the quarter and "
               "uploaded to auditbook when the audit was prepared; its effective date is the date it was signed.")


def demo_documents(engine, catalog, period: Period) -> int:
    """SIMULATED manual evidence: a short text document for every item of a few criteria, effective on
    the quarter's tenth day (items with a monthly cadence lapse before the quarter ends, as they would),
    submitted by one simulated person and approved by another. They are uploaded when the demo runs,
    after the quarter: each carries the late-upload flags, as it should, and its submitter's SIMULATED
    explanation of the late upload, approved with it (a flagged document covers its period only so). The
    per-incident item's documents are the quarter's incident records (demo/quarter_incidents.py)."""
    import tempfile
    from pathlib import Path

    from auditbook.history.evidence_events import annotate_evidence
    from auditbook.scan import add_evidence, decide_evidence
    effective = period.start + dt.timedelta(days=9)
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        for cid in DOCUMENTED:
            for item in catalog.control(cid).manual_evidence:
                if item.per is not None:
                    continue
                doc = Path(tmp) / (item.name.lower().replace(" ", "-").replace("/", "-") + ".txt")
                doc.write_text(f"SIMULATED demo document — not real evidence.\n{cid}: {item.name}\n"
                               f"Effective {effective}. Owner: {catalog.control(cid).owner}.\n")
                row = add_evidence(engine, catalog, cid, doc, effective=effective, owner=catalog.control(cid).owner,
                                   item=item.name, actor=SUBMITTER)
                if row.timeline_flags:
                    row = annotate_evidence(engine, catalog, SUBMITTER, row.id, row.version, explanation=LATE_UPLOAD)
                decide_evidence(engine, APPROVER, row.id, row.version, "approve",
                                "SIMULATED: document read and accepted by the demo's control owner")
                count += 1
    return count


def simulate_quarter(ids: dict, period: Period, db: str, log=print,
                     before_scan: Optional[Callable[[int], None]] = None,
                     after_scan: Optional[Callable[[int], None]] = None) -> dict:
    """Runs for every day of `period` but the outage; returns counts of real scans and replays.
    `before_scan(day)`: called on each day of the storyline after its changes, before its scan (the
    demo reads the day's simulated CloudTrail there: demo/quarter_trail.py); `after_scan(day)`: on
    each such day after its scan (the on-call's incidents: demo/quarter_incidents.py). Every run is
    stored on the simulated day's alert clock (demo/clock.py): a check regressing fires in the period."""
    events, before = storyline(ids)
    before()
    by_day = {e.day: [x for x in events if x.day == e.day] for e in events}
    catalog, register, engine = load_catalog(), load_register(), open_engine(db)
    documents = demo_documents(engine, catalog, period)
    last = None
    scans = replays = 0
    for offset, day in enumerate(period.days()):
        if offset in OUTAGE:
            continue
        at = dt.datetime.combine(day, dt.time(6, 0), dt.timezone.utc)
        label = f"{LABEL} {period.label}, day {offset + 1}"
        for event in by_day.get(offset, []):
            event.apply()
            log(f"  day {offset + 1} ({day}): {event.account}: {event.what}")
        if before_scan is not None and offset in by_day:
            before_scan(offset)
        with alert_clock(at):
            if last is None or offset in by_day:
                last = run_scan(org_role=ROLE, regions=",".join(REGIONS), db=db, at=at, simulated=label)
                scans += 1
            else:
                params = {"org_role": ROLE, "regions": last.regions, "catalog": catalog.path, "simulated": label,
                          "replay_of_run": last.run_id,
                          "resource_types": sorted({s.resource_type for s in last.collection.scopes})}
                record_run(engine, catalog, register, last.collection, last.accounts, params, at,
                           at + dt.timedelta(seconds=last.seconds))
                replays += 1
        if after_scan is not None and offset in by_day:
            after_scan(offset)
    return {"scans": scans, "replays": replays, "outage_days": len(OUTAGE), "events": len(events),
            "documents": documents}
