"""The CloudTrail write events kept for the change behind a finding: every write event (readOnly not
true, not a Get/List/Describe… call, not a data event) that names a resource, in a compact form — who (principal,
its type, the role session name), when, from where (source IP, user agent), which call, whether it
failed, the tags in the request, and the request parameters redacted like every stored record —
with the resources it touched, as the ARNs the collectors give them (collectors/*.py): the record's
`resources[].ARN`, and the ids its request and response name (groupId, bucketName, userName, …).

It runs where the log file is parsed (a parse worker, or the ingesting process): records here are
hostile too, and a write event of the wrong shape is an evidence gap (file, index, reason)."""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from auditbook.collect.evidence import canonical, digest, redact_cloudtrail
from auditbook.errors import one_line
from auditbook.monitor.cloudtrail_records import (
    LOG_KEY,
    MAX_DEPTH,
    MAX_TEXT,
    BadRecord,
    GapLog,
    event_id,
    event_time,
    too_deep,
)
from auditbook.store import changes as stored_changes
from auditbook.store.changes import (
    MAX_ACCOUNT,
    MAX_ERROR,
    MAX_FILE_SPAN,
    MAX_NAME,
    MAX_REGION,
    MAX_REQUEST,
    MAX_RESOURCE,
    MAX_SESSION,
    MAX_SOURCE,
    MAX_SOURCE_IP,
    MAX_TAGS,
    resource_key,
)

READ_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "BatchGet", "Search")
# calls CloudTrail logs as writes that use a resource without changing it: a role assumed (its record
# names the role), a sign-in, a key used to encrypt or decrypt (the rules still see every one of them)
NOT_CHANGES = {"sts.amazonaws.com": None, "signin.amazonaws.com": None,
               "kms.amazonaws.com": frozenset({"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey",
                                                "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair",
                                                "GenerateDataKeyPairWithoutPlaintext", "GenerateRandom", "Sign",
                                                "Verify", "GenerateMac", "VerifyMac"})}
MAX_RESOURCES = 50  # resources kept per event (a RunInstances of 50 instances names 50)
MAX_NODES = 400  # objects and lists of a request and response looked through for ids
GLOBAL = "global"  # the region of an account's global singletons (aws.iam.account, the S3 account block)

_EC2 = "arn:{p}:ec2:{region}:{account}:"
_EC2_PREFIXES = {"sg-": "security-group/", "vpc-": "vpc/", "subnet-": "subnet/", "vol-": "volume/",
                 "acl-": "network-acl/", "i-": "instance/"}
# per event source: the request/response keys (lower case) naming a resource, and the ARN each makes
# (the templates of collectors/*.py; a value that is already an ARN is taken as it is)
ID_KEYS: dict[str, dict[str, str]] = {
    "ec2.amazonaws.com": {"groupid": _EC2 + "security-group/{v}", "vpcid": _EC2 + "vpc/{v}",
                          "subnetid": _EC2 + "subnet/{v}", "volumeid": _EC2 + "volume/{v}",
                          "networkaclid": _EC2 + "network-acl/{v}", "instanceid": _EC2 + "instance/{v}",
                          "snapshotid": "arn:{p}:ec2:{region}::snapshot/{v}",
                          "imageid": "arn:{p}:ec2:{region}::image/{v}", "resourceid": "ec2-prefixed"},
    "s3.amazonaws.com": {"bucketname": "arn:{p}:s3:::{v}"},
    "iam.amazonaws.com": {"username": "arn:{p}:iam::{account}:user/{v}", "rolename": "arn:{p}:iam::{account}:role/{v}",
                          "groupname": "arn:{p}:iam::{account}:group/{v}", "policyarn": "arn"},
    "kms.amazonaws.com": {"keyid": "arn:{p}:kms:{region}:{account}:key/{v}"},
    "rds.amazonaws.com": {"dbinstanceidentifier": "arn:{p}:rds:{region}:{account}:db:{v}",
                          "dbclusteridentifier": "arn:{p}:rds:{region}:{account}:cluster:{v}",
                          "dbsnapshotidentifier": "arn:{p}:rds:{region}:{account}:snapshot:{v}",
                          "dbclustersnapshotidentifier": "arn:{p}:rds:{region}:{account}:cluster-snapshot:{v}"},
    "dynamodb.amazonaws.com": {"tablename": "arn:{p}:dynamodb:{region}:{account}:table/{v}"},
    "logs.amazonaws.com": {"loggroupname": "arn:{p}:logs:{region}:{account}:log-group:{v}:*"},
    "cloudtrail.amazonaws.com": {"name": "arn:{p}:cloudtrail:{region}:{account}:trail/{v}",
                                 "trailname": "arn:{p}:cloudtrail:{region}:{account}:trail/{v}"},
    "eks.amazonaws.com": {"name": "arn:{p}:eks:{region}:{account}:cluster/{v}",
                          "clustername": "arn:{p}:eks:{region}:{account}:cluster/{v}"},
    "elasticloadbalancing.amazonaws.com": {"loadbalancerarn": "arn"},
    "acm.amazonaws.com": {"certificatearn": "arn"},
    "secretsmanager.amazonaws.com": {"secretid": "arn"},
    "backup.amazonaws.com": {"backupvaultname": "arn:{p}:backup:{region}:{account}:backup-vault:{v}",
                             "backupplanid": "arn:{p}:backup:{region}:{account}:backup-plan:{v}"},
}
# calls on an account's singletons (collected with `list=None`: their ARN is "<account>/<region>")
SINGLETONS = {
    ("config.amazonaws.com", ""): "region", ("guardduty.amazonaws.com", ""): "region",
    ("ec2.amazonaws.com", "EnableEbsEncryptionByDefault"): "region",
    ("ec2.amazonaws.com", "DisableEbsEncryptionByDefault"): "region",
    ("ec2.amazonaws.com", "ModifyEbsDefaultKmsKeyId"): "region",
    ("monitoring.amazonaws.com", ""): "region", ("logs.amazonaws.com", "PutMetricFilter"): "region",
    ("logs.amazonaws.com", "DeleteMetricFilter"): "region",
    ("iam.amazonaws.com", "UpdateAccountPasswordPolicy"): GLOBAL,
    ("iam.amazonaws.com", "DeleteAccountPasswordPolicy"): GLOBAL,
    ("s3.amazonaws.com", "PutAccountPublicAccessBlock"): GLOBAL,
    ("s3.amazonaws.com", "DeleteAccountPublicAccessBlock"): GLOBAL,
}


def is_write(record: dict, name: str) -> bool:
    """A call that may change a resource's configuration: readOnly is not true, the name is not a
    read's, and it is a management event (a data event — an object put in a bucket, an item in a
    table, a function invoked — changes data, not the resource: never kept), nor one of NOT_CHANGES."""
    read_only = record.get("readOnly")
    if read_only is True or read_only == "true" or name.startswith(READ_PREFIXES):
        return False
    source = record.get("eventSource")
    if source in NOT_CHANGES and (NOT_CHANGES[source] is None or name in NOT_CHANGES[source]):
        return False
    return record.get("managementEvent") is not False and record.get("eventCategory") != "Data"


def _kind(value: Any) -> str:
    return "an object" if isinstance(value, dict) else "a list" if isinstance(value, list) else type(value).__name__


def _field(value: Any, name: str, limit: int, required: bool = False) -> str:
    """A field stored in a column: text (missing or null: empty), at most `limit` characters, printable."""
    if value is None or value == "":
        if required:
            raise BadRecord(f"{name}: missing or empty")
        return ""
    if value.__class__ is not str:
        raise BadRecord(f"{name}: {_kind(value)}, not text")
    if len(value) > limit:
        raise BadRecord(f"{name}: {len(value):,} characters, more than {limit}")
    if not value.isprintable():
        raise BadRecord(f"{name}: holds control or format characters")
    return value


def _caller_text(value: Any, limit: int = MAX_TEXT) -> str:
    """Text the caller chose (a user agent): kept with control characters made spaces and cut with a
    note, so a hostile value can neither hide the event nor reach a terminal as is."""
    if value is None or value.__class__ is not str:
        return "" if value is None else f"({_kind(value)}, not text)"
    if len(value) <= limit and value.isprintable():
        return value  # most are: no character to replace
    text = one_line(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"


def session_name(principal_type: str, arn: str) -> str:
    """The role session name of an assumed role (`…:assumed-role/ROLE/SESSION`); '' otherwise."""
    if principal_type != "AssumedRole" or ":assumed-role/" not in arn:
        return ""
    parts = arn.split(":assumed-role/", 1)[1].split("/", 1)
    return parts[1][:MAX_SESSION] if len(parts) == 2 else ""  # arn is printable (_field)


def partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def _nodes(value: Any):
    """(key lower-cased, value) of every mapping entry in a request or response, breadth first, at most
    MAX_NODES objects and lists looked through."""
    queue, seen = [value], 0
    while queue and seen < MAX_NODES:
        item = queue.pop(0)
        seen += 1
        if item.__class__ is dict:
            for key, child in item.items():
                if key.__class__ is str:
                    yield key.lower(), child
                if child.__class__ is dict or child.__class__ is list:
                    queue.append(child)
        elif item.__class__ is list:
            queue.extend(c for c in item if c.__class__ is dict or c.__class__ is list)


def _arn_of(template: str, value: str, where: dict) -> Optional[str]:
    if value.startswith("arn:"):
        return value if template != "ec2-prefixed" else None
    if template == "arn":
        return None
    if template == "ec2-prefixed":
        kind = next((k for prefix, k in _EC2_PREFIXES.items() if value.startswith(prefix)), None)
        return (_EC2 + kind + "{v}").format(v=value, **where) if kind else None
    if template.startswith("arn:{p}:kms:") and value.startswith("alias/"):
        return None  # an alias: the key's ARN is in the record's resources
    return template.format(v=value, **where)


def touched(record: dict, request: Any, response: Any, account: str, region: str, source: str,
            name: str) -> list[str]:
    """The resource keys (store.changes.resource_key) a write event touched, at most MAX_RESOURCES."""
    found: dict[str, None] = {}
    resources = record.get("resources")
    for item in resources if resources.__class__ is list else ():
        arn = item.get("ARN") if item.__class__ is dict else None
        if arn.__class__ is str and arn.startswith("arn:"):
            found[arn] = None
    keys = ID_KEYS.get(source, {})
    where = {"p": partition(region), "region": region, "account": account}
    for part in (request, response):
        for key, value in _nodes(part) if keys else ():
            template = keys.get(key)
            if template and value.__class__ is str and 0 < len(value) <= MAX_RESOURCE and value.isprintable():
                arn = _arn_of(template, value, where)
                if arn:
                    found[arn] = None
    scope = SINGLETONS.get((source, name)) or SINGLETONS.get((source, ""))
    if scope:
        found[f"{account}/{region if scope == 'region' else GLOBAL}"] = None
    out = [resource_key(k) for k in found if len(k) <= MAX_RESOURCE]
    return list(dict.fromkeys(out))[:MAX_RESOURCES]


def request_tags(request: Any) -> Optional[dict]:
    """The tags a request carries ({key: value}, at most MAX_TAGS): every object of exactly a key and
    a value (`{"key": …, "value": …}` in any letter case) in the (redacted) request parameters."""
    tags: dict = {}
    for _key, value in _nodes(request):
        if value.__class__ is list:
            for item in value:
                if item.__class__ is dict and len(item) == 2 and {k.lower() for k in item if k.__class__ is str} == {"key", "value"}:
                    pair = {k.lower(): v for k, v in item.items()}
                    if pair["key"].__class__ is str and pair["value"].__class__ is str and len(tags) < MAX_TAGS:
                        tags[_caller_text(pair["key"], 128)] = _caller_text(pair["value"], 256)
    return tags or None


def stored_request(source: str, request: Any) -> tuple[Any, Optional[dict]]:
    """(the request parameters redacted, what is stored of them: the redacted parameters, or their size
    and SHA-256 when they are larger than MAX_REQUEST bytes)."""
    if request is None:
        return None, None
    if too_deep(request, MAX_DEPTH - 1):
        raise BadRecord(f"requestParameters: nested more than {MAX_DEPTH} levels deep")
    redacted = redact_cloudtrail({"eventSource": source, "requestParameters": request})["requestParameters"]
    try:
        body = canonical(redacted)
    except ValueError as exc:  # a lone surrogate, a number JSON cannot hold
        raise BadRecord(f"requestParameters: cannot be stored as JSON: {type(exc).__name__}")
    if len(body) <= MAX_REQUEST:
        return redacted, redacted if isinstance(redacted, dict) else {"value": redacted}
    return redacted, {"omitted": f"{len(body):,} bytes, more than {MAX_REQUEST:,}", "sha256": digest(body)}


def _identity(record: dict) -> dict:
    who = record.get("userIdentity")
    if who is None:
        return {}
    if who.__class__ is not dict:
        raise BadRecord(f"userIdentity: {_kind(who)}, not an object")
    return who


def change_of(record: dict, latest: dt.datetime, where: str, default_account: str = "") -> Optional[dict]:
    """The write event a record is, in the form it is stored (store.changes.insert_changes), or None
    when it names no resource; BadRecord when a field it keeps has the wrong shape. `latest`: the
    latest eventTime believed (cloudtrail_records.latest_event_time); `where`: the file it was read from."""
    who = _identity(record)
    name, source = record.get("eventName"), record.get("eventSource")
    if name.__class__ is not str or source.__class__ is not str:
        return None  # cheap_fields has made it a gap already
    raw_account, raw_region = record.get("recipientAccountId") or who.get("accountId"), record.get("awsRegion")
    request, response = record.get("requestParameters"), record.get("responseElements")
    keys = touched(record, request, response, raw_account if raw_account.__class__ is str else default_account,
                   raw_region if raw_region.__class__ is str else "", source, name)
    if not keys:
        return None
    account = _field(raw_account, "recipientAccountId", MAX_ACCOUNT) or default_account
    if not account:
        raise BadRecord("recipientAccountId: missing or empty")
    region = _field(raw_region, "awsRegion", MAX_REGION, required=True)
    principal_type = _field(who.get("type"), "userIdentity.type", 40)
    arn = _field(who.get("arn"), "userIdentity.arn", MAX_TEXT)
    principal = arn or _field(who.get("principalId"), "userIdentity.principalId", MAX_TEXT) or principal_type
    redacted, kept = stored_request(source, request)
    return {"event_id": event_id(record.get("eventID")), "at": event_time(record.get("eventTime"), latest),
            "account": account, "region": region, "event_source": _field(source, "eventSource", MAX_NAME),
            "event_name": _field(name, "eventName", MAX_NAME), "principal": principal,
            "principal_type": principal_type, "session_name": session_name(principal_type, arn),
            "source_ip": _field(record.get("sourceIPAddress"), "sourceIPAddress", MAX_SOURCE_IP),
            "user_agent": _caller_text(record.get("userAgent")),
            "error_code": _field(record.get("errorCode"), "errorCode", MAX_ERROR),
            "tags": request_tags(redacted), "request": kept, "source": where[:MAX_SOURCE],
            "simulated": record.get("auditbookSimulated") is True, "resources": keys}


def write_events(writes: list[tuple[int, dict]], latest: dt.datetime, where: str, log: GapLog,
                 default_account: str = "") -> list[dict]:
    """The stored form of each write event (index, record) that names a resource; a bad one is a gap in `log`."""
    out = []
    for index, record in writes:
        try:
            change = change_of(record, latest, where, default_account)
        except BadRecord as exc:
            log.add(index, str(exc))
            continue
        if change is not None:
            out.append(change)
    return out


def file_span(first: Optional[str], last: Optional[str], latest: dt.datetime) -> Optional[tuple[dt.datetime, dt.datetime]]:
    """The times a log file covers, from the smallest and largest eventTime text of its records (ISO
    8601 in UTC sorts as text): None when either is not a believable time. A span longer than a day
    is cut to the day before its last event (a file holds minutes of events)."""
    if first is None or last is None:
        return None
    try:
        start, end = event_time(first, latest), event_time(last, latest)
    except BadRecord:
        return None
    return max(start, end - MAX_FILE_SPAN), end


def lookup_spans(since: dt.datetime, until: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """A LookupEvents call's time range, as coverage rows of at most a day each (store.changes.coverage
    looks back a day from the interval asked for)."""
    spans, start = [], since
    while start < until:
        end = min(until, start + MAX_FILE_SPAN)
        spans.append((start, end))
        start = end
    return spans


def keep_file_changes(session, bucket: str, key: str, changes: list[dict], span: Optional[tuple], records: int,
                      gaps: list) -> None:
    """A log file's write events, and what it covers (the account and region its key names, from its
    first to its last event), stored in the unit of work that marks it read."""
    where = f"{bucket}/{key}"[:MAX_SOURCE]
    for change in changes:
        change["source"] = where
    stored_changes.insert_changes(session, changes)
    named = LOG_KEY.search(key)
    if span and named and len(named.group(2)) <= MAX_REGION:
        stored_changes.add_coverage(session, [{"account": named.group(1), "region": named.group(2),
                                               "first_at": span[0], "last_at": span[1], "source": where,
                                               "records": records, "unread": sum(g.index is not None for g in gaps)}])
