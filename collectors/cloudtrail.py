"""CloudTrail trails whose home is the region: logging status, event selectors, CloudWatch Logs delivery."""
from auditbook.collect.spec import Call, ResourceType


def _s3_data_buckets(selectors: dict) -> list:
    """Bucket ARNs (or "all") whose S3 object-level events the trail records."""
    out = []
    for sel in (selectors or {}).get("EventSelectors") or []:
        for res in sel.get("DataResources") or []:
            if res.get("Type") == "AWS::S3::Object":
                out += ["all" if v in ("arn:aws:s3", "arn:aws:s3:::") else v.rstrip("/").split("/")[0]
                        for v in res.get("Values") or []]
    for sel in (selectors or {}).get("AdvancedEventSelectors") or []:
        fields = {f.get("Field"): f for f in sel.get("FieldSelectors") or []}
        if "AWS::S3::Object" in (fields.get("resources.type") or {}).get("Equals", []) and \
                "Data" in (fields.get("eventCategory") or {}).get("Equals", []):
            arns = (fields.get("resources.ARN") or {}).get("StartsWith") or []
            out += [a.rstrip("/").split("/")[0] for a in arns] if arns else ["all"]
    return sorted(set(out))


def _destination(trail, shared) -> None:
    """trail_account: the account the trail records (its home, from the ARN); bucket_in_own_account: the
    log bucket is one of that account's own buckets (S3 lists only a caller's own buckets, so a bucket
    of another account never appears); archive_bucket: the bucket when it lives in another account."""
    parts = (trail.get("TrailARN") or "").split(":")
    trail["trail_account"] = parts[4] if len(parts) > 4 else None
    own = {b.get("Name") for b in shared.get("own_buckets") or []}
    bucket = trail.get("S3BucketName")
    trail["bucket_in_own_account"] = bucket in own
    trail["archive_bucket"] = bucket if bucket and bucket not in own else None


def _trail(trail, shared):
    _destination(trail, shared)
    status = trail.get("status") or {}
    trail["is_logging"] = bool(status.get("IsLogging"))
    trail["kms_encrypted"] = bool(trail.get("KmsKeyId"))  # SSE-KMS needs a customer-managed key; else SSE-S3
    trail["log_file_validation"] = trail.get("LogFileValidationEnabled") is True
    trail["s3_data_event_buckets"] = _s3_data_buckets(trail.get("event_selectors"))
    bucket = trail.get("S3BucketName")
    trail["logs_own_bucket_data_events"] = bool(bucket) and any(
        b in ("all", f"arn:aws:s3:::{bucket}") for b in trail["s3_data_event_buckets"])
    group_arn = trail.get("CloudWatchLogsLogGroupArn") or ""
    trail["cloudwatch_log_group"] = group_arn.split(":log-group:")[1].split(":")[0] if ":log-group:" in group_arn else None
    trail["cloudwatch_delivery"] = status.get("LatestCloudWatchLogsDeliveryTime")
    # an organisation trail's log group receives every member account's events
    trail["org_log_group"] = trail["cloudwatch_log_group"] if trail.get("IsOrganizationTrail") and trail["is_logging"] else None
    return trail


RESOURCE_TYPES = [
    ResourceType(
        name="aws.cloudtrail.trail", service="cloudtrail",
        list=Call("describe_trails", "cloudtrail:DescribeTrails", params={"includeShadowTrails": False},
                  result="trailList"),
        details={
            "status": Call("get_trail_status", "cloudtrail:GetTrailStatus", params={"Name": "{TrailARN}"}),
            "event_selectors": Call("get_event_selectors", "cloudtrail:GetEventSelectors",
                                    params={"TrailName": "{TrailARN}"}),
        },
        shared={"own_buckets": Call("list_buckets", "s3:ListAllMyBuckets", result="Buckets", service="s3")},
        id="TrailARN", arn="{TrailARN}", display="Name", normalise=_trail,
        description="Trails created in (homed in) each region; is_logging; s3_data_event_buckets (bucket ARNs "
                    "or all) and logs_own_bucket_data_events; cloudwatch_log_group and its last delivery; "
                    "trail_account, bucket_in_own_account and archive_bucket (where the log files go); kms_encrypted "
                    "(KmsKeyId set) and log_file_validation.",
    ),
]
