"""Issue 15 coverage, applogs: the application's audit log group in the demo estate — SIMULATED
structured JSON audit events (data access, system changes, admin actions, with user, source IP, user
agent and time) in prod's `/app/audit`, and the checks on the group itself.

PLANTED / COMPLIANT: (check id, account name, resource name as in the finding) — the scan must FAIL
each planted one and PASS each twin (tests/unit/test_demo_estate.py). plant(accounts) builds them:
accounts is {account name: demo.estate.Account} (names: master, audit-logs, prod-us-east, staging).
This module must not import auditbook.demo.estate at module level (estate imports it).

ingest_demo(ids, engine, estate.ROLE) reads prod's events once, as `auditbook app-audit ingest` would with
demo_config(ids, role): populations for CC6.3 / CC8.1 and the app_events alerts (a burst of denied reads,
an admin action out of hours)."""
from __future__ import annotations

import datetime as dt
import json

LOG_GROUP = "/app/audit"  # the parameter app_audit_log_groups' default
APP_CHECKS = ("logs-app-audit-retention", "logs-app-audit-kms")

PLANTED: list[tuple[str, str, str]] = [
    # staging's audit log group: 90 days, no KMS key (so the generic log-group checks fail on it too)
    *((check, "staging", LOG_GROUP) for check in APP_CHECKS),
    ("logs-retention-365", "staging", LOG_GROUP),
    ("logs-kms-encrypted", "staging", LOG_GROUP),
]
COMPLIANT: list[tuple[str, str, str]] = [
    *((check, "prod-us-east", LOG_GROUP) for check in APP_CHECKS),
    ("logs-retention-365", "prod-us-east", LOG_GROUP),
    ("logs-kms-encrypted", "prod-us-east", LOG_GROUP),
]
STREAM = "app-1/audit"


def audit_event(at: dt.datetime, event_type: str, user: str, action: str, outcome: str = "success",
                resource: str = "", ip: str = "10.0.12.7") -> dict:
    """One structured audit event as the seed's application writes it (app_audit_config's defaults)."""
    return {"event_type": event_type, "user": user, "source_ip": ip, "user_agent": "soc2-app/2.3 (python-requests)",
            "timestamp": at.isoformat().replace("+00:00", "Z"), "action": action, "outcome": outcome,
            "resource": resource, "request_id": f"req-{int(at.timestamp() * 1000)}"}


def simulated_events(now: dt.datetime) -> list[dict]:
    """SIMULATED: a working day's events over the last hours — reads, a deploy's system changes, a
    burst of denied reads by one user, and an admin action at 03:00 UTC (outside the change window)."""
    start = now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=3)
    events = [audit_event(start + dt.timedelta(minutes=2 * i), "data_access", user, "GET /api/customers/{id}",
                          resource=f"customer/{1000 + i}")
              for i, user in enumerate(["alice@example.com", "bob@example.com"] * 20)]
    events += [audit_event(start + dt.timedelta(minutes=30, seconds=20 * i), "system_change", "deploy-bot",
                           "PUT /api/config/feature-flags", resource=f"flag/{name}")
               for i, name in enumerate(("new-billing", "export-v2", "sso-only"))]
    events += [audit_event(start + dt.timedelta(minutes=90, seconds=30 * i), "data_access", "mallory@example.com",
                           "GET /api/customers/export", outcome="denied", ip="203.0.113.50")
               for i in range(8)]
    night = (now - dt.timedelta(days=1)).replace(hour=3, minute=12, second=0, microsecond=0)
    events.append(audit_event(night, "admin_action", "carol@example.com", "POST /admin/users/grant-role",
                              resource="user/dave@example.com role/admin"))
    return sorted(events, key=lambda e: e["timestamp"])


def audit_group(acct, *, compliant: bool, events=()) -> None:
    logs, tags = acct.c("logs"), {"SOC2_Control": "CC7.2"}
    if compliant:
        logs.create_log_group(logGroupName=LOG_GROUP, kmsKeyId=acct.key("app-audit-logs"), tags=tags)
        logs.put_retention_policy(logGroupName=LOG_GROUP, retentionInDays=400)
    else:
        logs.create_log_group(logGroupName=LOG_GROUP, tags=tags)
        logs.put_retention_policy(logGroupName=LOG_GROUP, retentionInDays=90)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=STREAM)
    if events:
        logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=STREAM, logEvents=[
            {"timestamp": int(dt.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp() * 1000),
             "message": json.dumps(e)} for e in events])


def plant(accounts: dict) -> None:
    """Build this area's resources in the simulated organisation."""
    audit_group(accounts["staging"], compliant=False)
    audit_group(accounts["prod-us-east"], compliant=True,
                 events=simulated_events(dt.datetime.now(dt.timezone.utc)))


def demo_config(ids: dict, role: str):
    """app-audit.yml of the demo: prod's audit log group, read through the organisation's `role`
    (demo.estate.ROLE: passed in, as estate imports this module)."""
    from auditbook.monitor.app_audit_config import AppAuditConfig
    return AppAuditConfig.model_validate({"sources": [
        {"log_group": LOG_GROUP, "region": "us-east-1", "role": f"arn:aws:iam::{ids['prod-us-east']}:role/{role}"}]})


def ingest_demo(ids: dict, engine, role: str) -> dict:
    """One `auditbook app-audit ingest` of the demo's audit log group with the bundled rules."""
    from auditbook.monitor.app_audit import ingest
    from auditbook.monitor.rules import load_rules
    return ingest(engine, demo_config(ids, role), load_rules())
