"""Resource policies as every collector reads them: one meaning of "public" (an Allow anyone can use,
no condition pinning it to accounts, an organisation or a network) and of "TLS only" (a Deny for
everyone when aws:SecureTransport is false) for SQS, SNS, Lambda, ECR, EFS and KMS key policies.
Helpers only: this module declares no resource type."""
from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Optional

# Condition keys that pin a public principal to the owner's accounts, organisation or network.
RESTRICTING_KEYS = frozenset(k.lower() for k in (
    "aws:SourceArn", "aws:SourceAccount", "aws:SourceOwner", "aws:SourceOrgID", "aws:SourceOrgPaths",
    "aws:PrincipalAccount", "aws:PrincipalArn", "aws:PrincipalOrgID", "aws:PrincipalOrgPaths",
    "aws:PrincipalServiceName", "aws:SourceVpc", "aws:SourceVpce", "aws:SourceIp", "aws:userid",
    "aws:username", "kms:CallerAccount"))


def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def policy_document(text) -> tuple[Optional[dict], bool]:
    """(the parsed policy or None, whether text was present but not a JSON object)."""
    if not text:
        return None, False
    if isinstance(text, dict):
        return text, False
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return None, True
    return (doc, False) if isinstance(doc, dict) else (None, True)


def _statements(doc: Optional[dict]) -> list[dict]:
    return [s for s in as_list((doc or {}).get("Statement")) if isinstance(s, dict)]


def is_public_principal(principal) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any("*" in as_list(principal.get(k)) for k in ("AWS", "CanonicalUser"))
    return False


def _open_value(value) -> bool:
    """A condition value that still lets anyone in: "*", any-address CIDRs, a wildcard account id or org
    id, or an ARN whose account is a wildcard (or that names no account, as S3's do, and has one)."""
    text = str(value)
    if text in ("0.0.0.0/0", "::/0"):
        return True
    if "*" not in text:
        return False
    parts = text.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn":
        return "*" in parts[4] or not parts[4]
    return True


def _restricting(condition) -> bool:
    """A condition that limits who can use the grant: a restricting key under a positive operator, with
    no open value ("StringNotEquals", "...IfExists", "Null", "*" and "arn:aws:sns:*:*:*" do not restrict)."""
    for operator, pairs in (condition or {}).items() if isinstance(condition, dict) else ():
        low = str(operator).lower()
        if "not" in low or low.endswith("ifexists") or low == "null" or not isinstance(pairs, dict):
            continue
        for key, values in pairs.items():
            if str(key).lower() in RESTRICTING_KEYS and values not in (None, "", []) \
                    and not any(_open_value(v) for v in as_list(values)):
                return True
    return False


def public_statements(doc: Optional[dict]) -> list[str]:
    """Allow statements anyone can use: a public Principal (or NotPrincipal) and no restricting condition;
    each as "<Sid>: Allow * <actions>"."""
    found = []
    for stmt in _statements(doc):
        if stmt.get("Effect") != "Allow":
            continue
        if not ("NotPrincipal" in stmt or is_public_principal(stmt.get("Principal"))):
            continue
        if _restricting(stmt.get("Condition")):
            continue
        actions = ", ".join(str(a) for a in as_list(stmt.get("Action") or stmt.get("NotAction"))) or "(no action)"
        found.append(f"{stmt.get('Sid') or 'statement'}: Allow * {actions}")
    return found


def _covers(stmt: dict, action: str) -> bool:
    if "NotAction" in stmt:
        return not any(fnmatchcase(action, str(p).lower()) for p in as_list(stmt["NotAction"]))
    return any(fnmatchcase(action, str(p).lower()) for p in as_list(stmt.get("Action")))


def _insecure_transport_condition(condition) -> bool:
    for operator in ("bool", "boolifexists"):
        pairs = {str(k).lower(): v for k, v in (condition or {}).items()}.get(operator) or {}
        secure = {str(k).lower(): v for k, v in pairs.items()}.get("aws:securetransport") if isinstance(pairs, dict) else None
        if [str(v).lower() for v in as_list(secure)] == ["false"]:
            return True
    return False


def denies_insecure_transport(doc: Optional[dict], actions: tuple[str, ...]) -> bool:
    """Some Deny statement for everyone, covering every one of `actions` (lower case), when
    aws:SecureTransport is false."""
    needed = set(actions)
    for stmt in _statements(doc):
        if stmt.get("Effect") != "Deny" or not is_public_principal(stmt.get("Principal")):
            continue
        if isinstance(stmt.get("Condition"), dict) and _insecure_transport_condition(stmt["Condition"]):
            needed -= {a for a in needed if _covers(stmt, a)}
    return not needed
