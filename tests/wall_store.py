"""A store for the wall screen (tests/posture_store.py's three daily runs, plus alerts and incidents):

  alerts     the two CheckRegressed alerts of the runs (high: sg-a1 in run 2, sg-b1 in run 3) and
             ALERTS below, fired at known ages — one critical, not acknowledged (the banner), and
             more open alerts than the wall lists (so it shows "+N more"); one resolved (not shown)
  incidents  a critical one opened three hours ago and not acknowledged (its SLA is breached), and a
             low one opened now (due in about a day), assigned to someone with a hostile name
"""
from __future__ import annotations

import datetime as dt
from typing import Optional

from tests.posture_store import build as build_runs

EVIL = "<img src=x onerror=alert(1)>"
ALERTS = [  # (rule, severity, minutes ago, summary); {odd}: EVIL in the tests' store
    ("RootAccountUsage", "critical", 5, "root signed in from {odd}"),
    ("AccessKeyCreated", "medium", 300, "access key created for ci-bot"),
    ("SecurityGroupOpened", "high", 30, "port 22 opened to the world"),
    ("ConsoleLoginNoMfa", "medium", 20, "console login without MFA"),
    ("TrailStopped", "high", 600, "CloudTrail logging stopped"),
    ("BucketPolicyChanged", "low", 900, "bucket policy changed"),
    ("IamPolicyAttached", "low", 60, "AdministratorAccess attached"),
    ("KmsKeyDisabled", "medium", 45, "KMS key disabled"),
    ("VpcFlowLogsDeleted", "low", 15, "flow logs deleted"),
]
RESOLVED = ("NetworkAclChanged", "critical", 10, "network ACL changed")


def build(db: str, last: Optional[dt.datetime] = None, simulated: Optional[str] = None, hostile: bool = True) -> dict:
    """The store at `db`: {"runs": {n: run id}, "alerts": {rule: id}, "incidents": {"breached", "on_time"}}.
    hostile: the alert summary, an incident's title and its assignee carry EVIL (False: plain text, for
    the documentation's screenshot)."""
    from auditbook.auth import Actor
    from auditbook.monitor import alerts
    from auditbook.store.db import open_engine
    from auditbook.store.session import writing
    runs = build_runs(db, last=last, simulated=simulated)
    engine, now = open_engine(db), dt.datetime.now(dt.timezone.utc)
    ids = {}
    with writing(engine) as session:
        for rule, severity, minutes, summary in [*ALERTS, RESOLVED]:
            at = now - dt.timedelta(minutes=minutes)
            ids[rule] = alerts.fire(session, rule=rule, labels={"account": "111111111111"}, severity=severity,
                                    soc2_control="CC7.2", at=at,
                                    summary=summary.format(odd=EVIL if hostile else "203.0.113.7"))["id"]
        alerts.resolve(session, RESOLVED[0], {"account": "111111111111"}, now)
    analyst = Actor("ana@soc.example", "analyst")
    breached = _incident_at(engine, analyst, now - dt.timedelta(hours=3), title="Root account used",
                            severity="critical", assignee=None)
    on_time = _incident_at(engine, analyst, now, title=f"Tag drift {EVIL if hostile else 'on prod buckets'}",
                           severity="low", assignee=f"bob {EVIL}" if hostile else "bob")
    return {"runs": runs, "alerts": ids, "incidents": {"breached": breached, "on_time": on_time}}


def _incident_at(engine, actor, at: dt.datetime, **fields) -> int:
    """An incident created at `at` (the service stamps the time it runs: it is run at `at`)."""
    from auditbook.monitor import incidents
    real = incidents.now
    incidents.now = lambda: at
    try:
        return incidents.create(engine, actor, **fields)["id"]
    finally:
        incidents.now = real
