"""Application and network load balancers: listeners with their TLS protocols and ciphers, the WAF web ACL;
target groups with their protocol."""
from auditbook.collect.spec import Call, ResourceType

MODERN_TLS = {"TLSv1.2", "TLSv1.3"}


def forward_secret(cipher: str) -> bool:
    """Whether a cipher suite (OpenSSL / IANA name as ELB reports it) negotiates an ephemeral key
    exchange: every TLS 1.3 suite (TLS_…), and the TLS 1.2 ECDHE / DHE suites. RSA key exchange
    (AES128-GCM-SHA256 …) is not."""
    return cipher.startswith(("TLS_", "ECDHE-", "DHE-"))


def _managed_groups(rules):
    out = []
    for rule in rules or []:
        stmt = rule.get("Statement") or {}
        if "ManagedRuleGroupStatement" in stmt:
            out.append(stmt["ManagedRuleGroupStatement"].get("Name"))
    return out


def _listener_tls(listener: dict, policies: dict) -> None:
    """SslProtocols, tls12_plus, non_fs_ciphers, forward_secret_only from the policy DescribeSSLPolicies
    returns (all null when the policy is not among them); old_protocols: those below TLS 1.2."""
    policy = policies.get(listener["SslPolicy"])
    protocols = None if policy is None else policy.get("SslProtocols") or []
    ciphers = None if policy is None else [c.get("Name") for c in policy.get("Ciphers") or [] if c.get("Name")]
    listener["SslProtocols"] = protocols
    listener["tls12_plus"] = None if protocols is None else bool(protocols) and set(protocols) <= MODERN_TLS
    listener["old_protocols"] = None if protocols is None else sorted(set(protocols) - MODERN_TLS)
    listener["non_fs_ciphers"] = None if ciphers is None else [c for c in ciphers if not forward_secret(c)]
    listener["forward_secret_only"] = None if ciphers is None else bool(ciphers) and not listener["non_fs_ciphers"]


def _load_balancer(lb, shared):
    policies = {p["Name"]: p for p in shared.get("ssl_policies") or [] if p.get("Name")}
    for listener in lb.get("listeners") or []:
        if listener.get("SslPolicy"):
            _listener_tls(listener, policies)
    tls = [x for x in lb.get("listeners") or [] if x.get("Protocol") in ("HTTPS", "TLS")]
    lb["old_tls_listeners"] = [_said(x, x.get("old_protocols") if x.get("SslPolicy") in policies else "unknown policy")
                               for x in tls if x.get("tls12_plus") is not True]
    lb["non_fs_listeners"] = [_said(x, x.get("non_fs_ciphers") if x.get("SslPolicy") in policies else "unknown policy")
                              for x in tls if x.get("forward_secret_only") is not True]
    acl = lb.get("web_acl") or None
    lb["web_acl"] = acl
    lb["waf_default_block"] = bool(acl and "Block" in (acl.get("DefaultAction") or {}))
    lb["waf_managed_rule_groups"] = _managed_groups((acl or {}).get("Rules"))
    attrs = {a.get("Key"): a.get("Value") for a in lb.get("attributes") or []}
    lb["access_logs_enabled"] = attrs.get("access_logs.s3.enabled") == "true"
    lb["access_logs_bucket"] = attrs.get("access_logs.s3.bucket") or None
    # AWS omits an attribute at its default ("false" for both): absent is off
    lb["deletion_protection"] = str(attrs.get("deletion_protection.enabled")).lower() == "true"
    lb["drops_invalid_headers"] = str(attrs.get("routing.http.drop_invalid_header_fields.enabled")).lower() == "true"
    lb["attribute_values"] = attrs
    return lb


def _said(listener: dict, problem) -> dict:
    """A listener that falls short, for a FAIL message: port, policy and what the policy allows."""
    return {"port": listener.get("Port"), "policy": listener.get("SslPolicy") or "none",
            "allows": problem if isinstance(problem, str) else ", ".join(problem or [])}


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
        description="Load balancers; each listener with SslProtocols, tls12_plus, non_fs_ciphers and "
                    "forward_secret_only (null if the policy is unknown); old_tls_listeners / non_fs_listeners (port, "
                    "policy, allows) for messages; web_acl is the associated WAFv2 web ACL (ALBs only); "
                    "access_logs_enabled, deletion_protection, drops_invalid_headers (ALBs: routing.http.drop_invalid_"
                    "header_fields.enabled) from the attributes (absent: off); attribute_values maps each attribute "
                    "key to its value.",
    ),
    ResourceType(
        name="aws.elbv2.target_group", service="elbv2",
        list=Call("describe_target_groups", "elasticloadbalancing:DescribeTargetGroups", result="TargetGroups"),
        id="TargetGroupName", arn="{TargetGroupArn}", display="TargetGroupName", tags=None,
        description="Target groups: Protocol (HTTP, HTTPS, TCP, TLS, …; none for Lambda targets), TargetType, "
                    "LoadBalancerArns.",
    ),
]
