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
import re
from typing import Any

REDACTED = "***REDACTED***"

SECRET_KEYS = frozenset(
    k.lower()
    for k in (
        "SecretAccessKey", "SessionToken", "Password", "MasterUserPassword", "NewPassword",
        "OldPassword", "PrivateKey", "SecretString", "SecretBinary", "Credentials",
        "UserData", "AuthToken", "KeyMaterial", "Plaintext", "CiphertextBlob", "Variables",
        "ClientSecret", "Passphrase", "SharedSecret", "PreSharedKey",
        # CloudFront origin custom headers and WAF byte matches: the origin-verify secret between the two
        "HeaderValue", "SearchString", "RegexString",
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


# a URL anywhere in a text: a scheme (jdbc:postgresql:// too), then everything up to white space or a quote
URL_IN_TEXT = re.compile(r"\b(?P<scheme>[a-z][a-z0-9+.-]*(?::[a-z][a-z0-9+.-]*)*://)(?P<rest>[^\s\"'<>]+)",
                         re.IGNORECASE)
# keys whose URL's path is a token (webhooks, API destinations), and hosts whose paths always are
WEBHOOK_KEY_ENDINGS = ("endpoint", "webhook", "webhookurl", "hookurl")
WEBHOOK_HOSTS = re.compile(r"(^|\.)(hooks\.slack\.com|webhook\.office\.com|outlook\.office\.com|discord(app)?\.com|"
                           r"events\.pagerduty\.com)$", re.IGNORECASE)


def _without_secrets(found: re.Match, keep_path: bool) -> str:
    rest = found["rest"]
    cut = min([i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0] or [len(rest)])
    authority, tail = rest[:cut], rest[cut:]
    user, _, host = authority.rpartition("@")
    cut = min([i for i in (tail.find("?"), tail.find("#")) if i >= 0] or [len(tail)])
    path, query = tail[:cut], tail[cut:]
    if (not keep_path or WEBHOOK_HOSTS.search(host.split(":")[0])) and path.strip("/"):
        path = "/" + REDACTED
    return (found["scheme"] + (REDACTED + "@" if user else "") + host + path
            + ("?" + REDACTED if query else ""))


def redact_url(text: str, keep_path: bool = True) -> str:
    """`text` with every URL in it stripped of the parts that carry credentials: user information, the
    query and fragment (presigned signatures, tokens) and — unless `keep_path`, and always for known
    webhook hosts — the path (Slack-style webhooks: the path is the token)."""
    if "://" not in text:
        return text
    return URL_IN_TEXT.sub(lambda found: _without_secrets(found, keep_path), text)


def _webhook_key(key: str) -> bool:
    return key.lower().endswith(WEBHOOK_KEY_ENDINGS)


def _redacted_value(key: str, value: Any, keys: frozenset) -> Any:
    if key.lower() in keys and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, str) and "://" in value:
        return redact_url(value, keep_path=not _webhook_key(key))
    return redact(value, keys)


def redact(value: Any, keys: frozenset = SECRET_KEYS) -> Any:
    """Copy of value with the values of secret fields (names in `keys`, lower case) replaced, at any
    depth, and URLs without their credentials (redact_url). API evidence uses SECRET_KEYS; CloudTrail
    records add a few names of their own (redact_cloudtrail, below)."""
    if isinstance(value, dict):
        return {k: _redacted_value(str(k), v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, keys) for v in value]
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
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


# CloudTrail records (auditbook.monitor.cloudtrail) are evidence too: the same names, plus a few that only
# appear in CloudTrail's requestParameters / responseElements, and Parameter Store's `value` (a
# parameter's content) in every record of ssm.amazonaws.com.
CLOUDTRAIL_SECRET_KEYS = SECRET_KEYS | frozenset(
    k.lower() for k in ("ServicePassword", "SecretHash", "AccessToken", "RefreshToken", "IdToken",
                        "AuthParameters", "ChallengeResponses")
)
PARAMETER_STORE_KEYS = CLOUDTRAIL_SECRET_KEYS | {"value"}
# Containers of environment variables, arguments and settings (ECS/Batch `environment` and `secrets`,
# CodeBuild `environmentVariables[Override]`, App Runner `runtimeEnvironmentVariables`, SageMaker and
# Lambda `Environment`, Amplify `environmentVariables`, Beanstalk `optionSettings`, Glue
# `defaultArguments`, …): every value in them is redacted, their names kept. In a list of name/value
# objects the name fields (NAME_KEYS) are kept; in a map the keys are the names.
ENV_CONTAINERS = frozenset(
    k.lower() for k in ("environment", "environmentVariables", "environmentVariablesOverride",
                        "runtimeEnvironmentVariables", "runtimeEnvironmentSecrets", "secrets", "secretOptions",
                        "optionSettings", "defaultArguments", "arguments", "nonOverridableArguments")
)
CLOUDFORMATION_CONTAINERS = ENV_CONTAINERS | {"parameters", "parameteroverrides"}  # a stack's parameters
NAME_KEYS = frozenset(k.lower() for k in ("name", "parameterKey", "optionName", "namespace", "resourceName"))
VALUE_KEYS = frozenset(k.lower() for k in ("value", "parameterValue", "optionValue"))
# a name/value object anywhere whose name says it holds a secret has its value redacted
SECRET_NAME = re.compile(r"pass|pwd|secret|token|credential|private|auth|api[-_.]?key|access[-_.]?key|"
                         r"key(?:$|[-_.:/ ])|cookie|session|signature|conn(?:ection)?[-_.]?str|dsn",
                         re.IGNORECASE)
# a field of a CloudTrail record whose own name ends like a secret's (an HTTP `Authorization` header, EMR's
# `fs.s3a.secret.key`, Firehose's `accessKey`, Amplify's `oauthToken`, `clientSecret`, `dbPassword`, …)
# has its text or number redacted, wherever it is and whatever the service; names that only point at a
# secret (`secretId`, `accessKeyId`, `passwordPolicy`) do not end like one and are kept
SECRET_FIELD = re.compile(r"(?:password|passwd|passphrase|pwd|secret|token|credentials?|authorization|"
                          r"api[-_.]?key|access[-_.]?key|secret[-_.]?(?:access[-_.]?)?key|private[-_.]?key|"
                          r"cookie|signature|conn(?:ection)?[-_.]?str(?:ing)?|dsn)$", re.IGNORECASE)
# top-level parts of a record that are objects when CloudTrail writes them: text there is redacted
# whole (JSON in a string would hide every secret name from the rules above)
CLOUDTRAIL_PAYLOADS = ("requestParameters", "responseElements", "additionalEventData", "serviceEventDetails")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _env_values(value: Any, named: bool = False) -> Any:
    """An environment-like container with every value redacted and every name kept (`named`: an
    element of a list, whose NAME_KEYS fields are names)."""
    if isinstance(value, dict):
        return {k: (v if named and str(k).lower() in NAME_KEYS and isinstance(v, str) else _env_values(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_env_values(v, named=True) for v in value]
    return value if _empty(value) else REDACTED


SECRET_NAME_KEYS = NAME_KEYS | {"key", "parametername"}  # keys whose value may name a secret


def _secret_named(value: dict) -> bool:
    return any(str(k).lower() in SECRET_NAME_KEYS and isinstance(v, str) and SECRET_NAME.search(v)
               for k, v in value.items())


def _secret_field(name: str, value: Any) -> bool:
    """A text or number under a name that ends like a secret's (SECRET_FIELD)."""
    return isinstance(value, (str, int, float)) and not isinstance(value, bool) and bool(SECRET_FIELD.search(name))


def _redact_record(value: Any, keys: frozenset, containers: frozenset) -> Any:
    if isinstance(value, list):
        return [_redact_record(v, keys, containers) for v in value]
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    if not isinstance(value, dict):
        return value
    secret_value = _secret_named(value)
    out = {}
    for k, v in value.items():
        name = str(k).lower()
        if _empty(v):
            out[k] = v
        elif name in keys or (secret_value and name in VALUE_KEYS) or _secret_field(name, v):
            out[k] = REDACTED
        elif name in containers:
            out[k] = _env_values(v)
        elif _webhook_key(name) and isinstance(v, str):
            out[k] = redact_url(v, keep_path=False)
        else:
            out[k] = _redact_record(v, keys, containers)
    return out


def redact_cloudtrail(record: Any) -> Any:
    """A CloudTrail record as it may be stored, shown or exported: secret fields (by name, and any
    text or number under a name ending like a secret's: SECRET_FIELD), the values in
    environment-like containers and the values of secret-named name/value pairs replaced at any
    depth; a request or response logged as text replaced whole. eventSource is compared without
    regard to case."""
    if not isinstance(record, dict):
        return redact(record, CLOUDTRAIL_SECRET_KEYS)
    source = record.get("eventSource")
    source = source.lower() if isinstance(source, str) else ""
    keys = PARAMETER_STORE_KEYS if source == "ssm.amazonaws.com" else CLOUDTRAIL_SECRET_KEYS
    containers = CLOUDFORMATION_CONTAINERS if source == "cloudformation.amazonaws.com" else ENV_CONTAINERS
    kept = _redact_record(record, keys, containers)
    for part in CLOUDTRAIL_PAYLOADS:
        if isinstance(kept.get(part), str) and kept[part]:
            kept[part] = REDACTED
    return kept
