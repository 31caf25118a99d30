"""The least-privilege IAM policy for a scan: exactly the actions the collectors declare."""
from __future__ import annotations

from auditbook.catalog.model import Catalog
from auditbook.collect.plan import needed_types

# what the scanning principal needs besides the collectors' read calls
ORG_ACTIONS = ["organizations:ListAccounts"]  # --org: list the organisation's accounts
ASSUME_ACTIONS = ["sts:AssumeRole"]  # --org / --accounts: reach each account's audit role
# sts:GetCallerIdentity needs no permission


def collector_actions(catalog: Catalog) -> list[str]:
    return sorted({a for rtype in needed_types(catalog) for a in rtype.actions()})


def policy_document(catalog: Catalog, org: bool = False) -> dict:
    """An identity policy for the audit role in each account (org=True adds what the scanning
    principal in the management account needs to discover and reach the others)."""
    statements = [{"Sid": "AuditbookReadEvidence", "Effect": "Allow", "Action": collector_actions(catalog),
                   "Resource": "*"}]
    if org:
        statements.append({"Sid": "AuditbookReachAccounts", "Effect": "Allow",
                           "Action": ORG_ACTIONS + ASSUME_ACTIONS, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}
