"""CloudTrail trails whose home is the region, with their logging status."""
from auditbook.spec import Call, ResourceType


def _trail(trail, _shared):
    trail["is_logging"] = bool((trail.get("status") or {}).get("IsLogging"))
    return trail


RESOURCE_TYPES = [
    ResourceType(
        name="aws.cloudtrail.trail", service="cloudtrail",
        list=Call("describe_trails", "cloudtrail:DescribeTrails", params={"includeShadowTrails": False},
                  result="trailList"),
        details={"status": Call("get_trail_status", "cloudtrail:GetTrailStatus", params={"Name": "{TrailARN}"})},
        id="TrailARN", arn="{TrailARN}", display="Name", normalise=_trail,
        description="Trails created in (homed in) each region; is_logging from the trail status.",
    ),
]
