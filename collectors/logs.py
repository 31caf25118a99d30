"""CloudWatch Logs log groups (retention, encryption) and the CIS-style security metric filters with
alarms (per account and region)."""
import re

from auditbook.collect.spec import Call, ResourceType

# event -> every pattern fragment a metric filter must contain (whitespace and quotes ignored)
SECURITY_EVENTS = {
    "unauthorized-api-calls": [r"\$\.errorCode=\*UnauthorizedOperation", r"\$\.errorCode=AccessDenied\*"],
    "console-login-without-mfa": [r"\$\.eventName=ConsoleLogin", r"\$\.additionalEventData\.MFAUsed!=Yes"],
    "root-usage": [r"\$\.userIdentity\.type=Root", r"\$\.userIdentity\.invokedBy NOT EXISTS",
                   r"\$\.eventType!=AwsServiceEvent"],
    "security-group-changes": [r"\$\.eventName=AuthorizeSecurityGroupIngress", r"\$\.eventName=RevokeSecurityGroupIngress",
                               r"\$\.eventName=CreateSecurityGroup", r"\$\.eventName=DeleteSecurityGroup"],
    "nacl-changes": [r"\$\.eventName=CreateNetworkAcl", r"\$\.eventName=CreateNetworkAclEntry",
                     r"\$\.eventName=DeleteNetworkAcl", r"\$\.eventName=ReplaceNetworkAclEntry"],
    "iam-policy-changes": [r"\$\.eventName=PutUserPolicy", r"\$\.eventName=AttachRolePolicy",
                           r"\$\.eventName=CreatePolicy", r"\$\.eventName=DeletePolicy"],
    "cloudtrail-changes": [r"\$\.eventName=StopLogging", r"\$\.eventName=DeleteTrail", r"\$\.eventName=UpdateTrail"],
}


# the CIS AWS Foundations Benchmark filter pattern for each event (what the demo installs)
CIS_FILTER_PATTERNS = {
    "unauthorized-api-calls": '{ ($.errorCode = "*UnauthorizedOperation") || ($.errorCode = "AccessDenied*") }',
    "console-login-without-mfa": '{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }',
    "root-usage": '{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS '
                  '&& $.eventType != "AwsServiceEvent" }',
    "security-group-changes": "{ ($.eventName = AuthorizeSecurityGroupIngress) || ($.eventName = AuthorizeSecurityGroupEgress)"
                              " || ($.eventName = RevokeSecurityGroupIngress) || ($.eventName = RevokeSecurityGroupEgress)"
                              " || ($.eventName = CreateSecurityGroup) || ($.eventName = DeleteSecurityGroup) }",
    "nacl-changes": "{ ($.eventName = CreateNetworkAcl) || ($.eventName = CreateNetworkAclEntry)"
                    " || ($.eventName = DeleteNetworkAcl) || ($.eventName = DeleteNetworkAclEntry)"
                    " || ($.eventName = ReplaceNetworkAclEntry) || ($.eventName = ReplaceNetworkAclAssociation) }",
    "iam-policy-changes": "{($.eventName=DeleteGroupPolicy)||($.eventName=DeleteRolePolicy)||($.eventName=DeleteUserPolicy)"
                          "||($.eventName=PutGroupPolicy)||($.eventName=PutRolePolicy)||($.eventName=PutUserPolicy)"
                          "||($.eventName=CreatePolicy)||($.eventName=DeletePolicy)||($.eventName=CreatePolicyVersion)"
                          "||($.eventName=DeletePolicyVersion)||($.eventName=AttachRolePolicy)||($.eventName=DetachRolePolicy)"
                          "||($.eventName=AttachUserPolicy)||($.eventName=DetachUserPolicy)||($.eventName=AttachGroupPolicy)"
                          "||($.eventName=DetachGroupPolicy)}",
    "cloudtrail-changes": "{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail)"
                          " || ($.eventName = StartLogging) || ($.eventName = StopLogging) }",
}


def _squash(text: str) -> str:
    """A filter pattern with quotes and whitespace removed, so spacing and quoting styles compare equal."""
    return re.sub(r'["\s]+', "", text or "")


_REQUIRED = {event: [re.compile(_squash(p)) for p in parts] for event, parts in SECURITY_EVENTS.items()}


def matched_events(pattern: str) -> list[str]:
    """The security events a metric filter pattern watches for (every required fragment present)."""
    text = _squash(pattern)
    return [event for event, parts in _REQUIRED.items() if all(p.search(text) for p in parts)]


def _monitoring(record, _shared):
    """monitored: each security event with an alarm (that notifies someone) on a metric filter for it."""
    alarms = record.get("alarms") or []
    alarmed = {(a.get("Namespace"), a.get("MetricName")) for a in alarms
               if a.get("ActionsEnabled", True) and a.get("AlarmActions")}
    out = []
    for flt in record.get("metric_filters") or []:
        events = matched_events(flt.get("filterPattern"))
        for tr in flt.get("metricTransformations") or []:
            if (tr.get("metricNamespace"), tr.get("metricName")) in alarmed:
                out += [{"event": e, "log_group": flt.get("logGroupName"), "filter": flt.get("filterName"),
                         "metric": tr.get("metricName")} for e in events]
    record["monitored"] = out
    record["monitored_events"] = sorted({m["event"] for m in out})
    return record


RESOURCE_TYPES = [
    ResourceType(
        name="aws.logs.log_group", service="logs",
        list=Call("describe_log_groups", "logs:DescribeLogGroups", result="logGroups"),
        id="logGroupName", arn="{arn}", display="logGroupName", tags=None,
        description="Log groups; retentionInDays is null when events never expire; kmsKeyId when encrypted with KMS.",
    ),
    ResourceType(
        name="aws.logs.security_monitoring", service="logs", list=None,
        details={
            "metric_filters": Call("describe_metric_filters", "logs:DescribeMetricFilters", result="metricFilters",
                                   paginate=True),
            "alarms": Call("describe_alarms", "cloudwatch:DescribeAlarms", result="MetricAlarms", paginate=True,
                           params={"AlarmTypes": ["MetricAlarm"]}, service="cloudwatch"),
        },
        normalise=_monitoring, tags=None,
        description="Per account and region: metric filters and alarms; monitored lists each security event "
                    "(unauthorized API calls, console sign-in without MFA, root usage, security group / NACL / "
                    "IAM policy / CloudTrail changes) whose filter feeds a metric with an alarm that has actions.",
    ),
]
