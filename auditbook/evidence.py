"""Raw API responses as evidence: redacted, canonical JSON, content-addressed by SHA-256.

Redaction (documented in docs/evidence.md) replaces the value of any key whose name is in
SECRET_KEYS (case-insensitive) with REDACTED, at any depth, before hashing. ResponseMetadata is
dropped: it changes on every call and says nothing about the resource.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

REDACTED = "***REDACTED***"

SECRET_KEYS = frozenset(
    k.lower()
    for k in (
        "SecretAccessKey", "SessionToken", "Password", "MasterUserPassword", "NewPassword",
        "OldPassword", "PrivateKey", "SecretString", "SecretBinary", "Credentials",
        "UserData", "AuthToken", "KeyMaterial", "Plaintext", "CiphertextBlob", "Variables",
        "ClientSecret", "Passphrase", "SharedSecret", "PreSharedKey",
    )
)


def _plain(value: Any) -> Any:
    """Turn botocore values into JSON types: datetimes to ISO 8601 UTC, bytes to base64."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if hasattr(value, "read"):  # streaming bodies are never evidence
        return REDACTED
    return value


def redact(value: Any, keys: frozenset = SECRET_KEYS) -> Any:
    """Copy of value with the values of secret fields (names in `keys`, lower case) replaced, at any
    depth. API evidence uses SECRET_KEYS; CloudTrail records add a few names of their own
    (redact_cloudtrail, below)."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if str(k).lower() in keys and v not in (None, "", [], {}) else redact(v, keys))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, keys) for v in value]
    return value


def clean_response(response: dict) -> Any:
    """A boto3 response as evidence: ResponseMetadata dropped, JSON types, secrets redacted."""
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    return redact(_plain(body))


def canonical(value: Any) -> bytes:
    """The exact bytes that are hashed: sorted keys, fixed separators, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# CloudTrail records (auditbook.cloudtrail) are evidence too: the same names, plus a few that only
# appear in CloudTrail's requestParameters / responseElements, and Parameter Store's `value` (a
# parameter's content) in every record of ssm.amazonaws.com.
CLOUDTRAIL_SECRET_KEYS = SECRET_KEYS | frozenset(
    k.lower() for k in ("ServicePassword", "SecretHash", "AccessToken", "RefreshToken", "IdToken",
                        "AuthParameters", "ChallengeResponses")
)
PARAMETER_STORE_KEYS = CLOUDTRAIL_SECRET_KEYS | {"value"}


def redact_cloudtrail(record: Any) -> Any:
    """A CloudTrail record as it may be stored, shown or exported: secrets replaced, at any depth."""
    source = record.get("eventSource") if isinstance(record, dict) else None
    return redact(record, PARAMETER_STORE_KEYS if source == "ssm.amazonaws.com" else CLOUDTRAIL_SECRET_KEYS)
