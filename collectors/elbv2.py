"""Application and network load balancers: listeners with their TLS protocols, and the WAF web ACL."""
from auditbook.collect.spec import Call, ResourceType

MODERN_TLS = {"TLSv1.2", "TLSv1.3"}


def _managed_groups(rules):
    out = []
    for rule in rules or []:
        stmt = rule.get("Statement") or {}
        if "ManagedRuleGroupStatement" in stmt:
            out.append(stmt["ManagedRuleGroupStatement"].get("Name"))
    return out


def _load_balancer(lb, shared):
    policies = {p["Name"]: p.get("SslProtocols", []) for p in shared.get("ssl_policies") or []}
    for listener in lb.get("listeners") or []:
        if listener.get("SslPolicy"):
            protocols = policies.get(listener["SslPolicy"])
            listener["SslProtocols"] = protocols
            listener["tls12_plus"] = None if protocols is None else bool(protocols) and set(protocols) <= MODERN_TLS
    acl = lb.get("web_acl") or None
    lb["web_acl"] = acl
    lb["waf_default_block"] = bool(acl and "Block" in (acl.get("DefaultAction") or {}))
    lb["waf_managed_rule_groups"] = _managed_groups((acl or {}).get("Rules"))
    attrs = {a.get("Key"): a.get("Value") for a in lb.get("attributes") or []}
    lb["access_logs_enabled"] = attrs.get("access_logs.s3.enabled") == "true"
    lb["access_logs_bucket"] = attrs.get("access_logs.s3.bucket") or None
    return lb


RESOURCE_TYPES = [
    ResourceType(
        name="aws.elbv2.load_balancer", service="elbv2",
        list=Call("describe_load_balancers", "elasticloadbalancing:DescribeLoadBalancers", result="LoadBalancers"),
        shared={"ssl_policies": Call("describe_ssl_policies", "elasticloadbalancing:DescribeSSLPolicies",
                                     result="SslPolicies", static=True)},
        details={
            "listeners": Call("describe_listeners", "elasticloadbalancing:DescribeListeners",
                              params={"LoadBalancerArn": "{LoadBalancerArn}"}, result="Listeners", paginate=True),
            "attributes": Call("describe_load_balancer_attributes",
                               "elasticloadbalancing:DescribeLoadBalancerAttributes",
                               params={"LoadBalancerArn": "{LoadBalancerArn}"}, result="Attributes"),
            "web_acl": Call("get_web_acl_for_resource", "wafv2:GetWebACLForResource",
                            params={"ResourceArn": "{LoadBalancerArn}"}, result="WebACL", service="wafv2",
                            when="Type=='application'", absent=("WAFNonexistentItemException",)),
        },
        id="LoadBalancerName", arn="{LoadBalancerArn}", normalise=_load_balancer,
        description="Load balancers; each listener with SslProtocols and tls12_plus (null if the policy is "
                    "unknown); web_acl is the associated WAFv2 web ACL (ALBs only); access_logs_enabled from the attributes.",
    ),
]
