"""API failures are evidence gaps: the affected checks are ERROR, never PASS, never absent."""
from botocore.exceptions import EndpointConnectionError

from tests.conftest import Fault, by_check, collect_current


class ThrottleOnSend:
    """Answers a JSON-protocol operation with HTTP 400 ThrottlingException at the HTTP layer, so
    botocore's retry handler sees it (registered ahead of moto's own handler)."""

    first = True

    def __init__(self, target):
        self.target, self.calls = target, 0

    def __call__(self, request=None, **kwargs):
        if request is None or request.headers.get("X-Amz-Target", b"") not in (self.target, self.target.encode()):
            return None
        self.calls += 1
        from botocore.awsrequest import AWSResponse

        class Raw:
            def stream(self, *a, **k):
                yield b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, Raw())


def _statuses(findings, check):
    return {f.resource_name: f.status for f in by_check(findings, check)}


def test_denied_list_call_makes_scope_error(aws, inject):
    aws.client("ec2").create_security_group(GroupName="g1", Description="d")
    fault = Fault("DescribeSecurityGroups", "UnauthorizedOperation", 403)
    inject(fault)
    collection, findings = collect_current()
    sg = by_check(findings, "ec2-sg-no-public-ingress")
    assert [f.status for f in sg] == ["ERROR"]
    assert "ec2:DescribeSecurityGroups" in sg[0].message and "UnauthorizedOperation" in sg[0].message
    gap = [g for g in collection.gaps if g.resource_type == "aws.ec2.security_group"]
    assert gap and gap[0].account == "123456789012" and gap[0].region == "us-east-1"
    # the rest of the scan completed
    assert by_check(findings, "iam-password-policy")[0].status == "FAIL"


def test_denied_detail_call_errors_only_that_resource(aws, inject):
    s3 = aws.client("s3")
    for name in ("readable-bucket", "locked-bucket"):
        s3.create_bucket(Bucket=name)
    inject(Fault("GetBucketPolicy", "AccessDenied", 403, match=lambda req: "locked-bucket" in str(req.get("url"))))
    _, findings = collect_current()
    statuses = _statuses(findings, "s3-tls-only-policy")
    assert statuses == {"readable-bucket": "FAIL", "locked-bucket": "ERROR"}
    locked = [f for f in by_check(findings, "s3-versioning") if f.resource_name == "locked-bucket"][0]
    assert locked.status == "ERROR" and "s3:GetBucketPolicy" in locked.message


def test_absent_configuration_is_not_a_gap(aws):
    aws.client("s3").create_bucket(Bucket="plain-bucket")
    collection, findings = collect_current()
    assert not collection.gaps
    assert _statuses(findings, "s3-default-encryption") == {"plain-bucket": "FAIL"}


def test_throttling_is_retried_then_error(aws, inject):
    aws.client("kms").create_key()
    fault = ThrottleOnSend("TrentService.ListKeys")
    inject(fault)
    from auditbook.collect.ratelimit import RateLimits
    _, findings = collect_current(rate_limits=RateLimits(throttle_attempts=3))
    assert fault.calls == 3  # throttling has its own attempt budget (AUDITBOOK_MAX_ATTEMPTS is for other errors)
    assert {f.status for f in by_check(findings, "kms-cmk-rotation")} == {"ERROR"}
    assert "ThrottlingException" in by_check(findings, "kms-cmk-rotation")[0].message


def test_not_implemented_is_error(aws, inject):
    aws.client("elbv2")
    inject(Fault("DescribeLoadBalancers", "NotImplemented", 501))
    _, findings = collect_current()
    assert {f.status for f in by_check(findings, "elb-listener-tls12")} == {"ERROR"}


def test_unreachable_endpoint_is_error(aws, inject):
    def unreachable(model=None, **_):
        if model is not None and model.name == "ListCertificates":
            raise EndpointConnectionError(endpoint_url="https://acm.eu-west-1.amazonaws.com/")
    inject(unreachable)
    _, findings = collect_current()
    errs = by_check(findings, "acm-certificate-not-expiring")
    assert [f.status for f in errs] == ["ERROR"] and "EndpointConnectionError" in errs[0].message


def test_gap_in_a_referenced_type_errors_dependent_check(aws, inject):
    aws.client("s3").create_bucket(Bucket="maybe-a-log-bucket")
    inject(Fault("DescribeTrails", "AccessDeniedException", 403))
    _, findings = collect_current()
    dependent = by_check(findings, "s3-audit-log-retention")
    assert [f.status for f in dependent] == ["ERROR"]
    assert "aws.cloudtrail.trail" in dependent[0].message
    assert {f.status for f in by_check(findings, "cloudtrail-multi-region-logging")} == {"ERROR"}


def test_unreachable_account_makes_every_check_error(aws):
    from auditbook.catalog.model import load_catalog
    from auditbook.collect.clients import ClientCache
    from auditbook.collect.plan import needed_types
    from auditbook.collect.runner import Runner
    from auditbook.collect.targets import assumed_target
    from auditbook.evaluate.evaluator import evaluate

    clients = ClientCache()
    clients.shared("sts", "us-east-1").meta.events.register("before-call", Fault("AssumeRole", "AccessDenied", 403))
    target = assumed_target(clients, "210987654321", "denied", "AuditRole")
    assert target.error and "AccessDenied" in target.error
    catalog = load_catalog()
    collection = Runner(workers=2).run([target], ["us-east-1"], needed_types(catalog))
    findings = evaluate(catalog, collection)
    assert findings and {f.status for f in findings} == {"ERROR"}
    assert {f.check for f in findings} == {c.id for c in catalog.checks}
