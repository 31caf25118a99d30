"""KMS keys with their rotation state, key policy (statements open to any principal) and grants
(principals of other accounts)."""
import datetime as dt
import re

from auditbook.collect.spec import Call, ResourceType
from collectors.policies import policy_document, public_statements

ROTATABLE = "KeyManager=='CUSTOMER' && KeySpec=='SYMMETRIC_DEFAULT' && Origin=='AWS_KMS' && KeyState=='Enabled'"
# the key policy and grants of customer-managed keys that can still be used (AWS writes AWS-managed keys' policies)
USABLE_CUSTOMER_KEY = ("metadata.KeyManager=='CUSTOMER' && metadata.KeyState!='PendingDeletion'"
                       " && metadata.KeyState!='PendingReplicaDeletion'")
ACCOUNT_IN_ARN = re.compile(r"^arn:[^:]+:[^:]*:[^:]*:(\d{12}):")


def _parse_time(value):
    if not value:
        return None
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def open_policy_statements(policy_text) -> list:
    """Allow statements of the key policy open to any principal without a restricting condition (the
    reading the messaging collectors share, collectors/sqs.py); an unreadable policy cannot be cleared."""
    doc, malformed = policy_document(policy_text)
    return ["(unreadable policy)"] if malformed else public_statements(doc)


def _grant_account(principal: str):
    if not principal:
        return None
    if re.fullmatch(r"\d{12}", principal):
        return principal
    found = ACCOUNT_IN_ARN.match(principal)
    return found.group(1) if found else None  # a service principal (rds.amazonaws.com) belongs to no account


def external_grants(grants, own_account) -> list:
    """Grants whose grantee is a principal of another account: {account, principal, operations, grant}."""
    out = []
    for grant in grants or []:
        principal = grant.get("GranteePrincipal") or ""
        account = _grant_account(principal)
        if account and account != own_account:
            out.append({"account": account, "principal": principal, "grant": grant.get("GrantId"),
                        "operations": sorted(grant.get("Operations") or [])})
    return out


def _lift_metadata(key, _shared):
    key.update(key.pop("metadata", None) or {})
    return key


def _deletion_window(key):
    """Most days the deletion window can be. A multi-Region primary waiting for its replicas reports it
    (PendingDeletionWindowInDays); otherwise the API gives the deletion date, not the window chosen, so
    it is bounded by the latest moment the deletion can have been scheduled (creation or last rotation)."""
    if key.get("PendingDeletionWindowInDays") is not None:
        return key["PendingDeletionWindowInDays"]
    deletion = _parse_time(key.get("DeletionDate"))
    starts = [t for t in (_parse_time(key.get("CreationDate")), _parse_time(key.get("last_rotated"))) if t]
    if deletion is None or not starts:
        return None
    return (deletion - max(starts)).days


def _key(key, _shared):
    rotations = key.get("rotations") or []
    dates = sorted(r["RotationDate"] for r in rotations if r.get("RotationDate"))
    key["rotation_enabled"] = bool((key.get("rotation") or {}).get("KeyRotationEnabled"))
    key["last_rotated"] = dates[-1] if dates else None
    key["customer_symmetric"] = (key.get("KeyManager") == "CUSTOMER" and key.get("KeySpec") == "SYMMETRIC_DEFAULT"
                                 and key.get("Origin") == "AWS_KMS")
    key["deletion_window_max_days"] = _deletion_window(key)
    key["public_policy_statements"] = open_policy_statements(key.get("policy"))
    key["external_grants"] = external_grants(key.get("grants"), key.get("AWSAccountId"))
    return key


RESOURCE_TYPES = [
    ResourceType(
        name="aws.kms.key", service="kms",
        list=Call("list_keys", "kms:ListKeys", result="Keys"),
        details={
            "metadata": Call("describe_key", "kms:DescribeKey", params={"KeyId": "{KeyId}"}, result="KeyMetadata"),
            "rotation": Call("get_key_rotation_status", "kms:GetKeyRotationStatus", params={"KeyId": "{KeyId}"},
                             when="metadata." + ROTATABLE.replace(" && ", " && metadata.")),
            "rotations": Call("list_key_rotations", "kms:ListKeyRotations", params={"KeyId": "{KeyId}"},
                              result="Rotations", when="rotation.KeyRotationEnabled", paginate=True),
            "policy": Call("get_key_policy", "kms:GetKeyPolicy", params={"KeyId": "{KeyId}", "PolicyName": "default"},
                           result="Policy", when=USABLE_CUSTOMER_KEY),
            "grants": Call("list_grants", "kms:ListGrants", params={"KeyId": "{KeyId}"}, result="Grants",
                           when=USABLE_CUSTOMER_KEY, paginate=True),
        },
        id="KeyId", arn="{KeyArn}", display="Description || KeyId",
        normalise=lambda k, s: _key(_lift_metadata(k, s), s),
        description="KMS keys: KeyMetadata fields at top level, rotation_enabled, last_rotated (latest rotation "
                    "date), deletion_window_max_days (pending deletion: the longest the window can have been), "
                    "public_policy_statements (Allow to any principal without an account / organisation / source "
                    "condition) and external_grants (grantees in other accounts) of usable customer-managed keys.",
    ),
]
