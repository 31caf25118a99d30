"""Issue 15 coverage, edge: the demo estate's planted violations and compliant twins for this area —
CloudFront distributions, WAFv2 web ACLs (REGIONAL and CLOUDFRONT) and their logging.

PLANTED / COMPLIANT: (check id, account name, resource name as in the finding) — the scan must FAIL
each planted one and PASS each twin (tests/unit/test_demo_estate.py). plant(accounts) builds them:
accounts is {account name: demo.estate.Account} (names: master, audit-logs, prod-us-east, staging).
This module must not import auditbook.demo.estate at module level (estate imports it).

The Shield Advanced checks do not apply in the demo (shield_advanced_required defaults to false);
tests/unit/test_checks_edge.py judges them with the parameter set to true."""
from __future__ import annotations

CLOUDFRONT_CHECKS = ("cloudfront-waf-attached", "cloudfront-waf-default-block", "cloudfront-waf-managed-rules",
                     "cloudfront-viewer-https", "cloudfront-viewer-tls", "cloudfront-origin-https",
                     "cloudfront-origin-tls", "cloudfront-logging")
WAF_CHECKS = ("logging", "metrics", "has-rules")

PLANTED: list[tuple[str, str, str]] = [
    # no web ACL, viewers on HTTP, the default certificate (TLSv1), an http-only origin, no logging
    *(("cloudfront-" + c, "staging", "staging-cdn-open") for c in
      ("waf-attached", "viewer-https", "viewer-tls", "origin-https", "logging")),
    # a web ACL that allows by default and only counts the common rule set; one cache behaviour on HTTP;
    # TLSv1.2_2018 (RSA key exchange); an origin that still offers TLSv1
    *(("cloudfront-" + c, "staging", "staging-cdn-weak") for c in
      ("waf-default-block", "waf-managed-rules", "viewer-https", "viewer-tls", "origin-tls")),
    ("wafv2-logging", "staging", "staging-api-acl"),
    ("wafv2-metrics", "staging", "staging-api-acl"),
    ("wafv2-has-rules", "staging", "staging-empty-acl"),
    ("wafv2-cloudfront-logging", "staging", "staging-cf-acl"),
    ("wafv2-cloudfront-metrics", "staging", "staging-cf-acl"),
    ("wafv2-cloudfront-has-rules", "staging", "staging-cf-empty-acl"),
]
COMPLIANT: list[tuple[str, str, str]] = [
    *((check, "prod-us-east", "prod-cdn") for check in CLOUDFRONT_CHECKS),
    *((f"wafv2-{c}", "prod-us-east", "prod-alb-acl") for c in WAF_CHECKS),
    *((f"wafv2-cloudfront-{c}", "prod-us-east", "prod-cf-acl") for c in WAF_CHECKS),
]

COMMON_RULES = "AWSManagedRulesCommonRuleSet"


def visibility(metric: str, metrics: bool = True) -> dict:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": metrics, "MetricName": metric}


def managed_rule(group: str, priority: int, count: bool = False, metrics: bool = True) -> dict:
    return {"Name": group, "Priority": priority, "OverrideAction": {"Count": {}} if count else {"None": {}},
            "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": group}},
            "VisibilityConfig": visibility(group, metrics)}


def rate_rule(name: str, priority: int, metrics: bool = True) -> dict:
    return {"Name": name, "Priority": priority, "Action": {"Block": {}},
            "Statement": {"RateBasedStatement": {"Limit": 2000, "AggregateKeyType": "IP"}},
            "VisibilityConfig": visibility(name, metrics)}


def web_acl(wafv2, name: str, scope: str, *, block: bool = True, rules=(), metrics: bool = True,
            log_to: str | None = None) -> str:
    """Create a web ACL (CLOUDFRONT scope: the client must be in us-east-1); its ARN."""
    arn = wafv2.create_web_acl(Name=name, Scope=scope, DefaultAction={"Block": {}} if block else {"Allow": {}},
                               VisibilityConfig=visibility(name, metrics), Rules=list(rules))["Summary"]["ARN"]
    if log_to:
        log_web_acl(wafv2, arn, log_to)
    return arn


def log_web_acl(wafv2, arn: str, destination: str) -> None:
    wafv2.put_logging_configuration(LoggingConfiguration={"ResourceArn": arn, "LogDestinationConfigs": [destination]})


def custom_origin(origin_id: str, domain: str, policy: str = "https-only", protocols=("TLSv1.2",)) -> dict:
    return {"Id": origin_id, "DomainName": domain, "CustomOriginConfig": {
        "HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": policy,
        "OriginSslProtocols": {"Quantity": len(protocols), "Items": list(protocols)}}}


def s3_origin(origin_id: str, bucket: str) -> dict:
    return {"Id": origin_id, "DomainName": f"{bucket}.s3.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}


def behaviour(origin_id: str, policy: str, path: str | None = None) -> dict:
    out = {"TargetOriginId": origin_id, "ViewerProtocolPolicy": policy,
           "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6"}  # AWS managed CachingOptimized
    return {"PathPattern": path, **out} if path else out


def distribution(cloudfront, name: str, *, origins: list, default: dict, behaviours=(), cert_arn=None,
                 tls_policy="TLSv1.2_2021", acl_arn=None, log_bucket=None) -> str:
    """Create a distribution tagged Name=name; cert_arn None: the default *.cloudfront.net certificate."""
    cert = ({"ACMCertificateArn": cert_arn, "SSLSupportMethod": "sni-only", "MinimumProtocolVersion": tls_policy,
             "CloudFrontDefaultCertificate": False} if cert_arn else {"CloudFrontDefaultCertificate": True})
    config = {"CallerReference": name, "Comment": name, "Enabled": True,
              "Origins": {"Quantity": len(origins), "Items": origins}, "DefaultCacheBehavior": default,
              "CacheBehaviors": {"Quantity": len(behaviours), "Items": list(behaviours)},
              "ViewerCertificate": cert, "WebACLId": acl_arn or ""}
    if log_bucket:
        config["Logging"] = {"Enabled": True, "IncludeCookies": False, "Bucket": f"{log_bucket}.s3.amazonaws.com",
                             "Prefix": f"{name}/"}
    return cloudfront.create_distribution_with_tags(DistributionConfigWithTags={
        "DistributionConfig": config, "Tags": {"Items": [{"Key": "Name", "Value": name}]}})["Distribution"]["ARN"]


def _waf_log_destination(acct, name: str) -> str:
    return f"arn:aws:firehose:us-east-1:{acct.id}:deliverystream/aws-waf-logs-{name}"


def _prod(acct) -> None:
    wafv2 = acct.c("wafv2", "us-east-1")
    alb_acl = next(a["ARN"] for a in wafv2.list_web_acls(Scope="REGIONAL")["WebACLs"] if a["Name"] == "prod-alb-acl")
    log_web_acl(wafv2, alb_acl, _waf_log_destination(acct, "prod-alb"))
    acl = web_acl(wafv2, "prod-cf-acl", "CLOUDFRONT", rules=[managed_rule(COMMON_RULES, 0), rate_rule("rate", 1)],
                  log_to=_waf_log_destination(acct, "prod-cf"))
    distribution(acct.c("cloudfront"), "prod-cdn", cert_arn=acct.certificate("cdn.example.test", 365), acl_arn=acl,
                 origins=[custom_origin("app", "app.example.test"), s3_origin("assets", "prod-cdn-assets")],
                 default=behaviour("app", "redirect-to-https"),
                 behaviours=[behaviour("assets", "https-only", "/static/*")], log_bucket="prod-access-logs")


def _staging(acct) -> None:
    regional = acct.c("wafv2", "us-east-1")
    web_acl(regional, "staging-api-acl", "REGIONAL", rules=[managed_rule(COMMON_RULES, 0, metrics=False)],
            metrics=False)
    web_acl(regional, "staging-empty-acl", "REGIONAL", log_to=_waf_log_destination(acct, "staging-empty"))
    acl = web_acl(regional, "staging-cf-acl", "CLOUDFRONT", block=False,
                  rules=[managed_rule(COMMON_RULES, 0, count=True), rate_rule("rate", 1, metrics=False)])
    web_acl(regional, "staging-cf-empty-acl", "CLOUDFRONT", log_to=_waf_log_destination(acct, "staging-cf-empty"))
    cloudfront = acct.c("cloudfront")
    distribution(cloudfront, "staging-cdn-open", origins=[custom_origin("app", "app.staging.example.test", "http-only")],
                 default=behaviour("app", "allow-all"))
    distribution(cloudfront, "staging-cdn-weak", cert_arn=acct.certificate("cdn.staging.example.test", 365),
                 tls_policy="TLSv1.2_2018", acl_arn=acl,
                 origins=[custom_origin("app", "app.staging.example.test", protocols=("TLSv1", "TLSv1.2"))],
                 default=behaviour("app", "redirect-to-https"), behaviours=[behaviour("app", "allow-all", "/legacy/*")],
                 log_bucket="staging-access-logs")


def plant(accounts: dict) -> None:
    """Build this area's resources in the simulated organisation."""
    _prod(accounts["prod-us-east"])
    _staging(accounts["staging"])
