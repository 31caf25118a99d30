"""AWS Config: whether a recorder records every resource type and is running, per region."""
from auditbook.collect.spec import Call, ResourceType


def _region(record, _shared):
    recorders = record.get("recorders") or []
    status = {s.get("name"): s for s in record.get("status") or []}
    running = [r for r in recorders if (status.get(r.get("name")) or {}).get("recording")]
    group = lambda r: r.get("recordingGroup") or {}  # noqa: E731
    record["recording"] = bool(running)
    record["records_all_resources"] = any(group(r).get("allSupported") for r in running)
    record["records_global_resources"] = any(group(r).get("allSupported") and group(r).get("includeGlobalResourceTypes")
                                             for r in running)
    return record


RESOURCE_TYPES = [
    ResourceType(
        name="aws.config.region", service="config", list=None,
        details={
            "recorders": Call("describe_configuration_recorders", "config:DescribeConfigurationRecorders",
                              result="ConfigurationRecorders"),
            "status": Call("describe_configuration_recorder_status", "config:DescribeConfigurationRecorderStatus",
                           result="ConfigurationRecordersStatus"),
        },
        normalise=_region, tags=None,
        description="One record per account and region: recording (a recorder is running), "
                    "records_all_resources (allSupported), records_global_resources (and global types).",
    ),
]
