"""WAFv2 web ACLs: default action, managed rule groups, logging and CloudWatch metrics.

Two resource types, one per WAF scope: REGIONAL web ACLs (ALB, API Gateway, …) read in each region, and
CLOUDFRONT web ACLs — a global resource that AWS serves only from the us-east-1 endpoint, read once per
account through the scan's global region (docs/collectors.md: the global region must be us-east-1 for
this type, or the read is an evidence gap)."""
from auditbook.collect.spec import Call, ResourceType
from collectors.cloudfront import managed_rule_groups

LIST_LIMIT = 100  # the API's largest page; 100 web ACLs per region is also the default account quota


def _metrics_off(acl: dict) -> list[str]:
    """What sends no CloudWatch metrics: "web ACL" itself, then each rule (by name) whose
    VisibilityConfig has CloudWatchMetricsEnabled false or missing."""
    off = [] if (acl.get("VisibilityConfig") or {}).get("CloudWatchMetricsEnabled") is True else ["web ACL"]
    groups = ("PreProcessFirewallManagerRuleGroups", "Rules", "PostProcessFirewallManagerRuleGroups")
    for rule in (r for key in groups for r in acl.get(key) or []):
        if (rule.get("VisibilityConfig") or {}).get("CloudWatchMetricsEnabled") is not True:
            off.append(f"rule {rule.get('Name') or '?'}")
    return off


def _web_acl(record: dict, _shared) -> dict:
    acl = record.get("web_acl") or {}
    record["default_action"] = next(iter(acl.get("DefaultAction") or {}), None)
    record["managed_rule_groups"] = managed_rule_groups(acl.get("Rules"))
    record["counting_rule_groups"] = managed_rule_groups(acl.get("Rules"), counting=True)
    record["rule_count"] = len(acl.get("Rules") or [])
    record["metrics_off"] = _metrics_off(acl) if acl else ["web ACL (not read)"]
    logging = record.get("logging") or {}
    record["log_destinations"] = list(logging.get("LogDestinationConfigs") or [])
    record["logging_enabled"] = bool(record["log_destinations"])
    return record


def _web_acl_type(name: str, scope: str, where: str) -> ResourceType:
    pinned = "us-east-1" if scope == "CLOUDFRONT" else None  # AWS serves the CLOUDFRONT scope there only
    return ResourceType(
        name=name, service="wafv2", scope=where,
        list=Call("list_web_acls", "wafv2:ListWebACLs", params={"Scope": scope, "Limit": LIST_LIMIT}, result="WebACLs",
                  region=pinned),
        details={
            "web_acl": Call("get_web_acl", "wafv2:GetWebACL", params={"Name": "{Name}", "Scope": scope, "Id": "{Id}"},
                            result="WebACL", region=pinned),
            "logging": Call("get_logging_configuration", "wafv2:GetLoggingConfiguration",
                            params={"ResourceArn": "{ARN}"}, result="LoggingConfiguration",
                            absent=("WAFNonexistentItemException",), region=pinned),
            "tags": Call("list_tags_for_resource", "wafv2:ListTagsForResource", params={"ResourceARN": "{ARN}"},
                         result="TagInfoForResource.TagList", region=pinned),
        },
        id="ARN", arn="{ARN}", display="Name", tags="tags", normalise=_web_acl,
        description=f"WAFv2 web ACLs in the {scope} scope (the GetWebACL answer under web_acl): default_action "
                    "(Block / Allow), managed_rule_groups (enforced, by name), counting_rule_groups (Count override), "
                    "rule_count, metrics_off (\"web ACL\" and \"rule <name>\" "
                    "without CloudWatch metrics), logging_enabled and log_destinations (null logging: none set).",
    )


RESOURCE_TYPES = [
    _web_acl_type("aws.wafv2.web_acl", "REGIONAL", "regional"),
    _web_acl_type("aws.wafv2.cloudfront_web_acl", "CLOUDFRONT", "global"),
]
