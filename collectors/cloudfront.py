"""CloudFront distributions: viewer and origin protocols, the viewer TLS security policy, standard logging
and the WAFv2 web ACL (CLOUDFRONT scope) attached to each.

CloudFront is a global service (one endpoint, read once per account). The attached web ACL is read with
GetWebACL in the CLOUDFRONT scope, which AWS serves only from us-east-1 (see collectors/wafv2.py)."""
import re

from auditbook.collect.spec import Call, ResourceType

HTTPS_VIEWER = ("https-only", "redirect-to-https")
# an S3 REST endpoint (bucket.s3.amazonaws.com, bucket.s3.eu-west-1.amazonaws.com, bucket.s3-eu-west-1…);
# a website endpoint (s3-website) is a custom origin and speaks only HTTP
S3_REST_DOMAIN = re.compile(r"\.s3(?:[.-](?!website)[a-z0-9.-]+)?\.amazonaws\.com(?:\.cn)?$")


def _items(container) -> list:
    """A CloudFront list ({Quantity, Items}) as a list; Items is absent when Quantity is 0."""
    return list((container or {}).get("Items") or [])


def _behaviours(config: dict) -> list[dict]:
    """Every cache behaviour with its path: the default one first ("default"), then each path pattern."""
    default = dict(config.get("DefaultCacheBehavior") or {}, PathPattern="default")
    return [default] + [dict(b) for b in _items(config.get("CacheBehaviors"))]


def _origin_protocol(origin: dict, viewer_policies: list[str]) -> tuple[bool, str]:
    """(reached over HTTPS, how): a custom origin's policy decides; an S3 (REST) origin and match-viewer
    follow the viewer — HTTPS only if every behaviour routed to the origin forces HTTPS (none routed: no
    traffic reaches it)."""
    viewer_https = all(p in HTTPS_VIEWER for p in viewer_policies)
    custom = origin.get("CustomOriginConfig")
    if custom is not None:
        policy = custom.get("OriginProtocolPolicy") or "none"
        if policy == "match-viewer":
            return viewer_https, "match-viewer" + ("" if viewer_https else ", viewer may use http")
        return policy == "https-only", policy
    if origin.get("S3OriginConfig") is not None or S3_REST_DOMAIN.search(origin.get("DomainName") or ""):
        return viewer_https, "s3" + ("" if viewer_https else " origin follows the viewer's http")
    if origin.get("VpcOriginConfig") is not None:
        return True, "vpc origin"
    return False, "unknown origin type"


def _routes(config: dict, behaviours: list[dict]) -> dict[str, list[str]]:
    """Origin id -> the viewer protocol policies of the behaviours that reach it (directly or through an
    origin group, whose members all may serve)."""
    groups = {g.get("Id"): [m.get("OriginId") for m in _items(g.get("Members"))]
              for g in _items(config.get("OriginGroups"))}
    routes: dict[str, list[str]] = {}
    for b in behaviours:
        target = b.get("TargetOriginId")
        for oid in groups.get(target) or [target]:
            routes.setdefault(oid, []).append(b.get("ViewerProtocolPolicy") or "allow-all")
    return routes


def _origins(config: dict, behaviours: list[dict]) -> tuple[list[str], list[dict]]:
    """(origins not reached over HTTPS as "id: why", each SSL/TLS protocol a custom HTTPS origin may use
    as {origin, protocol})."""
    plain, tls_protocols = [], []
    routes = _routes(config, behaviours)
    for origin in _items(config.get("Origins")):
        oid = origin.get("Id") or "?"
        https, how = _origin_protocol(origin, routes.get(oid, []))
        if not https:
            plain.append(f"{oid}: {how}")
        custom = origin.get("CustomOriginConfig") or {}
        if custom and https:
            tls_protocols += [{"origin": oid, "protocol": p} for p in _items(custom.get("OriginSslProtocols"))]
    return plain, tls_protocols


def _distribution(dist: dict, _shared) -> dict:
    config = dist.get("config") or {}
    behaviours = _behaviours(config)
    dist["viewer_protocol_policies"] = [f"{b['PathPattern']}: {b.get('ViewerProtocolPolicy') or 'allow-all'}"
                                        for b in behaviours]
    dist["http_viewer_behaviours"] = [f"{b['PathPattern']}: {b.get('ViewerProtocolPolicy') or 'allow-all'}"
                                      for b in behaviours if b.get("ViewerProtocolPolicy") not in HTTPS_VIEWER]
    cert = config.get("ViewerCertificate") or {}
    # with the *.cloudfront.net certificate CloudFront uses TLSv1 whatever MinimumProtocolVersion says
    default_cert = bool(cert.get("CloudFrontDefaultCertificate")) and not (
        cert.get("ACMCertificateArn") or cert.get("IAMCertificateId"))
    dist["default_certificate"] = default_cert
    dist["viewer_tls_policy"] = "TLSv1" if default_cert else (cert.get("MinimumProtocolVersion") or "TLSv1")
    dist["http_origins"], dist["origin_ssl_protocols"] = _origins(config, behaviours)
    logging = config.get("Logging") or {}
    dist["logging_enabled"] = bool(logging.get("Enabled") and logging.get("Bucket"))
    dist["logging_bucket"] = logging.get("Bucket") or None
    web_acl_id = config.get("WebACLId") or dist.get("WebACLId") or ""
    dist["web_acl_id"] = web_acl_id or None
    acl = dist.get("web_acl") or None
    dist["web_acl"] = acl
    dist["waf_default_action"] = next(iter((acl or {}).get("DefaultAction") or {}), None)
    dist["waf_managed_rule_groups"] = managed_rule_groups((acl or {}).get("Rules"))
    dist["waf_counting_rule_groups"] = managed_rule_groups((acl or {}).get("Rules"), counting=True)
    return dist


def managed_rule_groups(rules, counting: bool = False) -> list[str]:
    """The managed rule groups (by name) a web ACL's rules enforce — or, with `counting`, only count
    (OverrideAction Count: the group's matches are counted, never blocked)."""
    names = set()
    for rule in rules or []:
        group = (rule.get("Statement") or {}).get("ManagedRuleGroupStatement")
        if group is not None and ("Count" in (rule.get("OverrideAction") or {})) == counting:
            names.add(group.get("Name") or "?")
    return sorted(names)


def _log_deliveries(record: dict, _shared) -> dict:
    """delivering_arns: the CloudFront resources with a CloudWatch Logs delivery source (logging "v2")
    that has at least one delivery to a destination."""
    delivering = {d.get("deliverySourceName") for d in record.get("deliveries") or []}
    record["delivering_arns"] = sorted({arn for source in record.get("sources") or []
                                        if source.get("service") == "cloudfront" and source.get("name") in delivering
                                        for arn in source.get("resourceArns") or []})
    return record


RESOURCE_TYPES = [
    ResourceType(
        name="aws.cloudfront.distribution", service="cloudfront", scope="global",
        list=Call("list_distributions", "cloudfront:ListDistributions", result="DistributionList.Items"),
        details={
            "config": Call("get_distribution_config", "cloudfront:GetDistributionConfig", params={"Id": "{Id}"},
                           result="DistributionConfig"),
            "web_acl": Call("get_web_acl", "wafv2:GetWebACL", service="wafv2",
                            params={"ARN": "{WebACLId}", "Scope": "CLOUDFRONT"}, result="WebACL",
                            when="starts_with(WebACLId || '', 'arn:')", region="us-east-1"),
            "tags": Call("list_tags_for_resource", "cloudfront:ListTagsForResource", params={"Resource": "{ARN}"},
                         result="Tags.Items"),
        },
        id="Id", arn="{ARN}", tags="tags",
        display="(tags[?Key=='Name'].Value)[0] || Aliases.Items[0] || Id",
        normalise=_distribution,
        description="CloudFront distributions (the full DistributionConfig under config): viewer_protocol_policies and "
                    "http_viewer_behaviours (\"path: policy\" for the default and every cache behaviour), "
                    "viewer_tls_policy (TLSv1 with the default certificate), http_origins (origins not reached "
                    "over HTTPS; S3 and match-viewer origins follow the viewer), origin_ssl_protocols ({origin, protocol} "
                    "for each custom HTTPS origin), logging_enabled (standard logging to S3), web_acl (the WAFv2 web ACL, "
                    "CLOUDFRONT scope), waf_default_action, waf_managed_rule_groups "
                    "(enforced) and waf_counting_rule_groups (Count override).",
    ),
    ResourceType(
        name="aws.cloudfront.log_delivery", service="logs", scope="global", list=None, tags=None,
        details={
            "sources": Call("describe_delivery_sources", "logs:DescribeDeliverySources", result="deliverySources",
                            paginate=True, region="us-east-1"),
            "deliveries": Call("describe_deliveries", "logs:DescribeDeliveries", result="deliveries", paginate=True,
                               when="length(sources || `[]`) > `0`", region="us-east-1"),
        },
        normalise=_log_deliveries,
        description="One record per account: CloudWatch Logs delivery sources and deliveries (CloudFront "
                    "standard logging v2, configured in us-east-1 and read there); "
                    "delivering_arns lists the distributions whose access logs are delivered.",
    ),
]
