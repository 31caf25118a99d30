"""S3 buckets (their configuration, not their objects) and the account-level public access block."""
from auditbook.collect.spec import Call, ResourceType
from collectors.policies import policy_document, public_statements

PAB_FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _region(location):
    if not location:
        return "us-east-1"
    return "eu-west-1" if location == "EU" else location


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _denies_insecure_transport(policy):
    """A Deny for everyone on s3 actions when aws:SecureTransport is false."""
    for stmt in _as_list((policy or {}).get("Statement", [])):
        if not isinstance(stmt, dict) or stmt.get("Effect") != "Deny":
            continue
        principal = stmt.get("Principal")
        if principal not in ("*", {"AWS": "*"}) and principal != {"AWS": ["*"]}:
            continue
        actions = [a.lower() for a in _as_list(stmt.get("Action", []))]
        if not any(a in ("s3:*", "*") for a in actions):
            continue
        cond = stmt.get("Condition", {}).get("Bool", {})
        secure = {k.lower(): v for k, v in cond.items()}.get("aws:securetransport")
        if str(_as_list(secure)[0] if secure is not None else "").lower() == "false":
            return True
    return False


def _retention_days(rules):
    """Shortest expiry of current or noncurrent versions among enabled lifecycle rules (None: none)."""
    days = []
    for rule in rules or []:
        if rule.get("Status") != "Enabled":
            continue
        if (rule.get("Expiration") or {}).get("Days") is not None:
            days.append(rule["Expiration"]["Days"])
        if (rule.get("NoncurrentVersionExpiration") or {}).get("NoncurrentDays") is not None:
            days.append(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
    return min(days) if days else None


def _bucket(bucket, _shared):
    bucket["bucket_region"] = _region(bucket.get("location"))
    rules = (bucket.get("encryption") or {}).get("Rules", [])
    bucket["encryption_algorithms"] = sorted({
        r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules
    } - {None})
    bucket["versioning_status"] = (bucket.get("versioning") or {}).get("Status")
    pab = bucket.get("public_access_block") or {}
    bucket["public_access_blocked"] = all(pab.get(f) is True for f in PAB_FIELDS)
    policy, unreadable = policy_document(bucket.get("policy"))
    bucket["policy_document"] = policy
    bucket["public_statements"] = ["policy is not valid JSON"] if unreadable else public_statements(policy)
    bucket["tls_only_policy"] = _denies_insecure_transport(policy)
    bucket["object_lock_enabled"] = (bucket.get("object_lock") or {}).get("ObjectLockEnabled") == "Enabled"
    bucket["lifecycle_retention_days"] = _retention_days(bucket.get("lifecycle"))
    bucket["access_logging"] = bool((bucket.get("logging") or {}).get("TargetBucket"))
    # BucketOwnerEnforced is the only setting that turns ACLs off; no configuration means ACLs are on
    bucket["acls_disabled"] = bucket.get("ownership") == "BucketOwnerEnforced"
    return bucket


def _account_pab(record, _shared):
    pab = record.get("public_access_block") or {}
    record["public_access_blocked"] = all(pab.get(f) is True for f in PAB_FIELDS)
    return record


def _detail(method, action, result=None, absent=()):
    return Call(method, action, params={"Bucket": "{Name}"}, result=result, absent=tuple(absent))


RESOURCE_TYPES = [
    ResourceType(
        name="aws.s3.bucket", service="s3", scope="global",
        list=Call("list_buckets", "s3:ListAllMyBuckets", result="Buckets"),
        details={
            "location": _detail("get_bucket_location", "s3:GetBucketLocation", "LocationConstraint"),
            "encryption": _detail("get_bucket_encryption", "s3:GetEncryptionConfiguration",
                                  "ServerSideEncryptionConfiguration", ["ServerSideEncryptionConfigurationNotFoundError"]),
            "versioning": _detail("get_bucket_versioning", "s3:GetBucketVersioning"),
            "public_access_block": _detail("get_public_access_block", "s3:GetBucketPublicAccessBlock",
                                           "PublicAccessBlockConfiguration", ["NoSuchPublicAccessBlockConfiguration"]),
            "policy": _detail("get_bucket_policy", "s3:GetBucketPolicy", "Policy", ["NoSuchBucketPolicy"]),
            "lifecycle": _detail("get_bucket_lifecycle_configuration", "s3:GetLifecycleConfiguration", "Rules",
                                 ["NoSuchLifecycleConfiguration"]),
            "object_lock": _detail("get_object_lock_configuration", "s3:GetBucketObjectLockConfiguration",
                                   "ObjectLockConfiguration", ["ObjectLockConfigurationNotFoundError"]),
            "logging": _detail("get_bucket_logging", "s3:GetBucketLogging", "LoggingEnabled"),
            "ownership": _detail("get_bucket_ownership_controls", "s3:GetBucketOwnershipControls",
                                 "OwnershipControls.Rules[0].ObjectOwnership", ["OwnershipControlsNotFoundError"]),
            "tag_set": _detail("get_bucket_tagging", "s3:GetBucketTagging", "TagSet", ["NoSuchTagSet"]),
        },
        id="Name", arn="arn:{partition}:s3:::{Name}", normalise=_bucket, region_of="bucket_region", tags="tag_set",
        description="S3 buckets. A missing configuration (encryption, public access block, policy, lifecycle, "
                    "object lock) is recorded as null, never as an error; real AWS applies SSE-S3 by default "
                    "since 2023, so a null encryption means the API returned no configuration. public_statements: "
                    "bucket-policy Allow statements anyone can use (collectors/policies.py).",
    ),
    ResourceType(
        name="aws.s3.account_public_access_block", service="s3control", scope="global", list=None,
        details={"public_access_block": Call("get_public_access_block", "s3:GetAccountPublicAccessBlock",
                                             params={"AccountId": "{account}"}, result="PublicAccessBlockConfiguration",
                                             absent=("NoSuchPublicAccessBlockConfiguration",))},
        normalise=_account_pab,
        description="The account-wide S3 public access block (one record per account).",
    ),
]
