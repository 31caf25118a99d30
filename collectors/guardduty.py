"""GuardDuty: whether a detector is enabled in each region."""
from auditbook.collect.spec import Call, ResourceType


def _region(record, _shared):
    record["enabled"] = (record.get("detector") or {}).get("Status") == "ENABLED"
    return record


RESOURCE_TYPES = [
    ResourceType(
        name="aws.guardduty.region", service="guardduty", list=None,
        details={
            "detector_ids": Call("list_detectors", "guardduty:ListDetectors", result="DetectorIds", paginate=True),
            "detector": Call("get_detector", "guardduty:GetDetector", params={"DetectorId": "{detector_ids[0]}"},
                             when="detector_ids[0]"),
        },
        normalise=_region, tags=None,
        description="One record per account and region: detector_ids, the detector, enabled (status ENABLED).",
    ),
]
