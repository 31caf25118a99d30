"""moto ignores page size for these calls, so pagination is tested with botocore's Stubber."""
import boto3
import pytest
from botocore.stub import Stubber

from auditbook.collect.runner import Runner
from auditbook.collect.targets import Target
from auditbook.plugins import resource_types


def _runner_with(client, service, region="us-east-1"):
    runner = Runner(workers=2)
    runner.clients._clients[(service, region)] = client
    return runner


def test_security_groups_all_pages():
    ec2 = boto3.client("ec2", region_name="us-east-1")
    stub = Stubber(ec2)
    page = lambda ids, token=None: {"SecurityGroups": [{"GroupId": i, "GroupName": i, "IpPermissions": [],  # noqa: E731
                                                        "IpPermissionsEgress": []} for i in ids],
                                    **({"NextToken": token} if token else {})}
    stub.add_response("describe_security_groups", page(["sg-1", "sg-2"], "t1"), {})
    stub.add_response("describe_security_groups", page(["sg-3"], "t2"), {"NextToken": "t1"})
    stub.add_response("describe_security_groups", page(["sg-4"]), {"NextToken": "t2"})
    stub.add_response("describe_vpcs", {"Vpcs": []}, {})  # the groups' VPCs (egress outside them is judged)
    with stub:
        runner = _runner_with(ec2, "ec2")
        col = runner.run([Target("111111111111", "a", object())], ["us-east-1"],
                         [resource_types()["aws.ec2.security_group"]])
    stub.assert_no_pending_responses()
    assert sorted(r.id for r in col.records) == ["sg-1", "sg-2", "sg-3", "sg-4"]
    assert len(col.evidence) == 4  # each page kept as evidence, and the VPCs' answer
    assert len(col.records[0].evidence) == 3


@pytest.mark.parametrize("rtype,method,key,item", [
    ("aws.iam.user", "list_users", "Users", lambda i: {"UserName": f"u{i}", "UserId": f"AIDA{i:016d}", "Path": "/",
                                                        "Arn": f"arn:aws:iam::111111111111:user/u{i}",
                                                        "CreateDate": "2026-01-01T00:00:00Z"}),
    ("aws.kms.key", "list_keys", "Keys", lambda i: {"KeyId": f"k{i}", "KeyArn": f"arn:aws:kms:us-east-1:111111111111:key/k{i}"}),
])
def test_marker_pagination(rtype, method, key, item):
    spec = resource_types()[rtype]
    service = spec.service
    client = boto3.client(service, region_name="us-east-1")
    stub = Stubber(client)
    truncated = {"IsTruncated": True, "Marker": "m1"} if service == "iam" else {"Truncated": True, "NextMarker": "m1"}
    stub.add_response(method, {key: [item(1), item(2)], **truncated}, {})
    stub.add_response(method, {key: [item(3)]}, {"Marker": "m1"})
    bare = type(spec)(name=spec.name, service=spec.service, list=spec.list, id=spec.id, scope=spec.scope)
    with stub:
        region = "us-east-1"
        col = _runner_with(client, service, region).run([Target("111111111111", "a", object())], [region], [bare])
    stub.assert_no_pending_responses()
    assert len(col.records) == 3
