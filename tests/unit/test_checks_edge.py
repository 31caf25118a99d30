"""Edge checks (issue 15): CloudFront distributions, WAFv2 web ACLs in both scopes and Shield Advanced —
each FAILs a violating resource with a message naming the offending value, PASSes a compliant one and
is not applicable where its `applies` is false. What moto does not serve (S3OriginConfig in answers,
paged Shield protections, refused Shield calls) is tested on the normaliser or with botocore's Stubber."""
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from auditbook.collect.runner import Runner
from auditbook.collect.targets import Target
from auditbook.demo import estate_edge as edge
from auditbook.evaluate.evaluator import evaluate
from auditbook.plugins import resource_types
from collectors.cloudfront import _distribution
from collectors.wafv2 import _web_acl
from tests.catalog_edits import catalog_with_parameters
from tests.conftest import Fault, by_check, collect_current, status_of

ROOT = Path(__file__).resolve().parents[2]
LOGS = "arn:aws:firehose:us-east-1:123456789012:deliverystream/aws-waf-logs-test"


def message_of(findings, check, name):
    assert status_of(findings, check, name) == "FAIL"
    return by_check(findings, check, name)[0].message


def catalog_with(tmp_path, **values):
    """The bundled catalog with the company's parameters set to `values`."""
    return catalog_with_parameters(tmp_path, values)


def _acls(session):
    waf = session.client("wafv2", region_name="us-east-1")
    good = edge.web_acl(waf, "good-acl", "CLOUDFRONT", rules=[edge.managed_rule(edge.COMMON_RULES, 0)], log_to=LOGS)
    weak = edge.web_acl(waf, "weak-acl", "CLOUDFRONT", block=False,
                        rules=[edge.managed_rule(edge.COMMON_RULES, 0, count=True), edge.rate_rule("rate", 1, False)])
    return good, weak


def _distributions(session, good_acl, weak_acl):
    cf = session.client("cloudfront")
    cert = "arn:aws:acm:us-east-1:123456789012:certificate/cdn"
    arns = {"good": edge.distribution(
        cf, "good", cert_arn=cert, acl_arn=good_acl, log_bucket="logs",
        origins=[edge.custom_origin("app", "app.example.test"), edge.s3_origin("assets", "assets-bucket")],
        default=edge.behaviour("app", "redirect-to-https"), behaviours=[edge.behaviour("assets", "https-only", "/s/*")])}
    arns["open"] = edge.distribution(cf, "open", origins=[edge.custom_origin("app", "app.example.test", "http-only")],
                                     default=edge.behaviour("app", "allow-all"))
    arns["weak"] = edge.distribution(
        cf, "weak", cert_arn=cert, tls_policy="TLSv1.2_2018", acl_arn=weak_acl, log_bucket="logs",
        origins=[edge.custom_origin("app", "app.example.test", protocols=("TLSv1", "TLSv1.2")),
                 edge.s3_origin("assets", "assets-bucket")],
        default=edge.behaviour("app", "redirect-to-https"), behaviours=[edge.behaviour("assets", "allow-all", "/img/*")])
    return arns


def test_cloudfront_checks(aws):
    _distributions(aws, *_acls(aws))
    _, findings = collect_current()
    for check in edge.CLOUDFRONT_CHECKS:
        assert status_of(findings, check, "good") == "PASS", check
    assert "WebACLId none" in message_of(findings, "cloudfront-waf-attached", "open")
    assert by_check(findings, "cloudfront-waf-default-block", "open") == []  # no web ACL: not applicable
    assert by_check(findings, "cloudfront-waf-managed-rules", "open") == []
    assert "default action Allow, required Block" in message_of(findings, "cloudfront-waf-default-block", "weak")
    managed = message_of(findings, "cloudfront-waf-managed-rules", "weak")
    assert "count only: AWSManagedRulesCommonRuleSet" in managed and "required AWSManagedRulesCommonRuleSet" in managed
    assert "default: allow-all" in message_of(findings, "cloudfront-viewer-https", "open")
    assert "/img/*: allow-all" in message_of(findings, "cloudfront-viewer-https", "weak")
    assert "TLSv1 (the default *.cloudfront.net certificate" in message_of(findings, "cloudfront-viewer-tls", "open")
    assert "policy TLSv1.2_2018;" in message_of(findings, "cloudfront-viewer-tls", "weak")
    assert "app: http-only" in message_of(findings, "cloudfront-origin-https", "open")
    # an S3 origin follows the viewer: a behaviour on HTTP routed to it reaches S3 over HTTP
    assert "assets: s3 origin follows the viewer's http" in message_of(findings, "cloudfront-origin-https", "weak")
    assert "app TLSv1" in message_of(findings, "cloudfront-origin-tls", "weak")
    assert "TLSv1.2" not in message_of(findings, "cloudfront-origin-tls", "weak").split(": ", 1)[1]
    assert status_of(findings, "cloudfront-origin-tls", "open") == "PASS"  # no HTTPS origin to judge
    assert "standard logging off" in message_of(findings, "cloudfront-logging", "open")


def test_web_acl_that_cannot_be_read_is_an_error_never_a_pass(aws, inject):
    """AWS serves CLOUDFRONT-scope web ACLs only from us-east-1: a refused read is an evidence gap."""
    good, _ = _acls(aws)
    _distributions(aws, good, None)
    inject(Fault("GetWebACL", "WAFInvalidParameterException"))
    collection, findings = collect_current()
    assert {g.error for g in collection.gaps} == {"WAFInvalidParameterException"}
    for check in ("cloudfront-waf-attached", "cloudfront-waf-default-block", "cloudfront-waf-managed-rules"):
        assert status_of(findings, check, "good") == "ERROR"


def test_logging_through_a_cloudwatch_logs_delivery(aws):
    """Standard logging v2: a delivery source for the distribution's ACCESS_LOGS with a delivery counts;
    a source without a delivery does not."""
    cf = aws.client("cloudfront")
    origin = [edge.custom_origin("app", "app.example.test")]
    arns = {name: edge.distribution(cf, name, origins=origin, default=edge.behaviour("app", "https-only"))
            for name in ("delivered", "source-only")}
    logs = aws.client("logs", region_name="us-east-1")
    for name, arn in arns.items():
        logs.put_delivery_source(name=name, resourceArn=arn, logType="ACCESS_LOGS")
    destination = logs.put_delivery_destination(name="cf-logs", deliveryDestinationConfiguration={
        "destinationResourceArn": "arn:aws:s3:::cf-logs-bucket"})["deliveryDestination"]["arn"]
    logs.create_delivery(deliverySourceName="delivered", deliveryDestinationArn=destination)
    _, findings = collect_current()
    assert status_of(findings, "cloudfront-logging", "delivered") == "PASS"
    assert "no CloudWatch Logs delivery" in message_of(findings, "cloudfront-logging", "source-only")


@pytest.mark.parametrize("scope,prefix,region", [("REGIONAL", "wafv2-", "eu-west-1"),
                                                 ("CLOUDFRONT", "wafv2-cloudfront-", "us-east-1")])
def test_web_acl_checks(aws, scope, prefix, region):
    waf = aws.client("wafv2", region_name=region)
    edge.web_acl(waf, "good", scope, rules=[edge.managed_rule(edge.COMMON_RULES, 0)], log_to=LOGS)
    edge.web_acl(waf, "quiet", scope, metrics=False, rules=[edge.rate_rule("rate", 0, metrics=False),
                                                              edge.managed_rule(edge.COMMON_RULES, 1)])
    edge.web_acl(waf, "empty", scope, log_to=LOGS)
    _, findings = collect_current(regions=("us-east-1", "eu-west-1"))
    for check in ("logging", "metrics", "has-rules"):
        assert status_of(findings, prefix + check, "good") == "PASS"
    assert "quiet has no logging configuration" in message_of(findings, prefix + "logging", "quiet")
    assert message_of(findings, prefix + "metrics", "quiet").endswith("metrics off for: web ACL, rule rate")
    assert "empty has no rules (default action Block)" in message_of(findings, prefix + "has-rules", "empty")
    assert status_of(findings, prefix + "metrics", "empty") == "PASS"


def _shield_estate(session):
    """A protected and an unprotected distribution and internet-facing ALB, an internal ALB."""
    cf = session.client("cloudfront")
    origin = [edge.custom_origin("app", "app.example.test")]
    arns = {name: edge.distribution(cf, name, origins=origin, default=edge.behaviour("app", "https-only"))
            for name in ("cdn-protected", "cdn-bare")}
    ec2, elb = session.client("ec2"), session.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]
               ["SubnetId"] for i, z in ((1, "a"), (2, "b"))]
    for name, scheme in (("alb-protected", "internet-facing"), ("alb-bare", "internet-facing"),
                         ("alb-internal", "internal")):
        arns[name] = elb.create_load_balancer(Name=name, Subnets=subnets, Scheme=scheme,
                                              Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    return arns


def test_shield_checks_apply_only_when_required(aws, tmp_path):
    arns = _shield_estate(aws)
    shield = aws.client("shield")
    collection, findings = collect_current()
    for check in ("shield-advanced-subscription", "shield-cloudfront-protected", "shield-alb-protected"):
        assert by_check(findings, check) == []  # shield_advanced_required defaults to false
    required = catalog_with(tmp_path, shield_advanced_required=True)
    findings = evaluate(required, collection)
    assert "subscribed false" in message_of(findings, "shield-advanced-subscription", "account")
    shield.create_subscription()
    for name in ("cdn-protected", "alb-protected"):
        shield.create_protection(Name=name, ResourceArn=arns[name])
    collection, _ = collect_current()
    assert not collection.gaps
    findings = evaluate(required, collection)
    assert status_of(findings, "shield-advanced-subscription", "account") == "PASS"
    assert status_of(findings, "shield-cloudfront-protected", "cdn-protected") == "PASS"
    assert arns["cdn-bare"] in message_of(findings, "shield-cloudfront-protected", "cdn-bare")
    assert status_of(findings, "shield-alb-protected", "alb-protected") == "PASS"
    assert arns["alb-bare"] in message_of(findings, "shield-alb-protected", "alb-bare")
    assert by_check(findings, "shield-alb-protected", "alb-internal") == []  # internal: not applicable


def _stubbed_shield(responses):
    client = boto3.client("shield", region_name="us-east-1")
    stub = Stubber(client)
    for method, response, params in responses:
        if isinstance(response, str):
            stub.add_client_error(method, service_error_code=response, http_status_code=400)
        else:
            stub.add_response(method, response, params)
    runner = Runner(workers=2)
    runner.clients._clients[("shield", "us-east-1")] = client
    with stub:
        col = runner.run([Target("111111111111", "a", object())], ["us-east-1"], [resource_types()["aws.shield.account"]])
    stub.assert_no_pending_responses()
    return col


def test_shield_protections_read_on_every_page():
    """moto returns every protection at once; AWS pages them with NextToken."""
    arn = "arn:aws:cloudfront::111111111111:distribution/E{}"
    page = lambda n, token=None: {"Protections": [{"Id": f"{n:036d}", "ResourceArn": arn.format(n)}],  # noqa: E731
                                  **({"NextToken": token} if token else {})}
    limits = {"ProtectionLimits": {"ProtectedResourceTypeLimits": []}, "ProtectionGroupLimits": {
        "MaxProtectionGroups": 1, "PatternTypeLimits": {"ArbitraryPatternLimits": {"MaxMembers": 1}}}}
    col = _stubbed_shield([("describe_subscription", {"Subscription": {"AutoRenew": "ENABLED",
                                                                         "SubscriptionLimits": limits}}, {}),
                           ("list_protections", page(1, "t1"), {}),
                           ("list_protections", page(2), {"NextToken": "t1"})])
    assert col.records[0].data["protected_arns"] == [arn.format(1), arn.format(2)]


def test_shield_unsubscribed_is_a_value_and_a_refusal_is_a_gap():
    col = _stubbed_shield([("describe_subscription", "ResourceNotFoundException", {})])
    assert col.records[0].data["subscribed"] is False and not col.gaps  # protections: not asked
    col = _stubbed_shield([("describe_subscription", "AccessDeniedException", {})])
    assert [(g.call, g.error) for g in col.gaps] == [("shield:DescribeSubscription", "AccessDeniedException")]


def _config(origins, behaviours=(), cert=None):
    default, *others = behaviours or [{"TargetOriginId": origins[0]["Id"], "ViewerProtocolPolicy": "https-only"}]
    return {"config": {"Origins": {"Quantity": len(origins), "Items": origins}, "DefaultCacheBehavior": default,
                       "CacheBehaviors": {"Quantity": len(others), "Items": [dict(b, PathPattern=f"/{i}/*") for i, b
                                                                            in enumerate(others)]},
                       "ViewerCertificate": cert or {}}}


def test_origin_protocols_as_aws_returns_them():
    """AWS answers S3 origins with S3OriginConfig (moto drops it), match-viewer, VPC origins and
    origin groups (behaviours target the group; its members serve)."""
    s3 = {"Id": "s3", "DomainName": "b.s3.eu-west-1.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}
    site = {"Id": "site", "DomainName": "b.s3-website-us-east-1.amazonaws.com",
            "CustomOriginConfig": {"OriginProtocolPolicy": "http-only"}}
    match = {"Id": "mv", "DomainName": "x.example.test", "CustomOriginConfig": {"OriginProtocolPolicy": "match-viewer"}}
    vpc = {"Id": "vpc", "DomainName": "internal", "VpcOriginConfig": {"VpcOriginId": "vo-1"}}
    https = lambda o: {"TargetOriginId": o, "ViewerProtocolPolicy": "redirect-to-https"}  # noqa: E731
    plain = lambda o: {"TargetOriginId": o, "ViewerProtocolPolicy": "allow-all"}  # noqa: E731
    out = _distribution(_config([s3, site, match, vpc], [https("s3"), https("site"), https("mv"), https("vpc")]), {})
    assert out["http_origins"] == ["site: http-only"]
    out = _distribution(_config([s3, match], [https("s3"), plain("mv")]), {})
    assert out["http_origins"] == ["mv: match-viewer, viewer may use http"]
    unused = _distribution(_config([match, s3], [https("mv")]), {})  # no behaviour reaches s3: no traffic
    assert unused["http_origins"] == []
    grouped = _config([match, s3], [https("mv"), plain("group")])
    grouped["config"]["OriginGroups"] = {"Quantity": 1, "Items": [{"Id": "group", "Members": {
        "Quantity": 2, "Items": [{"OriginId": "mv"}, {"OriginId": "s3"}]}}]}
    assert _distribution(grouped, {})["http_origins"] == ["mv: match-viewer, viewer may use http",
                                                          "s3: s3 origin follows the viewer's http"]


def test_viewer_tls_policy_of_the_default_certificate():
    default = _distribution(_config([{"Id": "a", "DomainName": "a"}], cert={
        "CloudFrontDefaultCertificate": True, "MinimumProtocolVersion": "TLSv1.2_2021"}), {})
    assert default["viewer_tls_policy"] == "TLSv1" and default["default_certificate"]
    custom = _distribution(_config([{"Id": "a", "DomainName": "a"}], cert={
        "ACMCertificateArn": "arn:aws:acm:us-east-1:1:certificate/x", "MinimumProtocolVersion": "TLSv1.2_2021"}), {})
    assert custom["viewer_tls_policy"] == "TLSv1.2_2021" and not custom["default_certificate"]


def test_web_acl_metrics_cover_firewall_manager_groups_and_missing_settings():
    acl = {"VisibilityConfig": {"CloudWatchMetricsEnabled": True}, "DefaultAction": {"Allow": {}},
           "Rules": [{"Name": "r1", "VisibilityConfig": {"CloudWatchMetricsEnabled": True}}, {"Name": "r2"}],
           "PreProcessFirewallManagerRuleGroups": [{"Name": "fms", "VisibilityConfig": {
               "CloudWatchMetricsEnabled": False}}]}
    out = _web_acl({"web_acl": acl, "logging": None}, {})
    assert out["metrics_off"] == ["rule fms", "rule r2"]
    assert out["default_action"] == "Allow" and out["logging_enabled"] is False


def test_cloudfront_scope_calls_go_to_us_east_1_whatever_region_is_scanned(aws, monkeypatch):
    """AWS serves WAF's CLOUDFRONT scope and CloudFront's log deliveries from us-east-1 only: a scan of
    other regions still reads them there (spec.Call.region), never from the region it was given."""
    from botocore.client import BaseClient
    good, _ = _acls(aws)
    _distributions(aws, good, None)
    seen, original = [], BaseClient._make_api_call

    def recording(client, operation, params):
        seen.append((client.meta.service_model.service_name, operation, params.get("Scope"), client.meta.region_name))
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    _, findings = collect_current(regions=("eu-west-1",))
    pinned = [s for s in seen if s[2] == "CLOUDFRONT" or s[1] in ("DescribeDeliverySources", "DescribeDeliveries")]
    assert {s[1] for s in pinned} >= {"ListWebACLs", "GetWebACL", "DescribeDeliverySources"}
    assert {s[3] for s in pinned} == {"us-east-1"}
    assert {s[3] for s in seen if s[2] == "REGIONAL"} == {"eu-west-1"}
    assert status_of(findings, "cloudfront-waf-attached", "good") == "PASS"
