"""`auditbook policy` and least privilege: a whole scan of the demo organisation (in-process moto)
makes no API call whose IAM action the collectors do not declare."""
import json

import boto3
from typer.testing import CliRunner

from auditbook.cli.main import registered_app

app = registered_app()
from auditbook.collect.policy import ASSUME_ACTIONS, ORG_ACTIONS

# IAM action for an API operation, from the AWS Service Authorization Reference: the service prefix
# differs from the boto3 name for some services, and S3 names several actions differently.
PREFIX = {"elbv2": "elasticloadbalancing", "s3control": "s3", "efs": "elasticfilesystem", "opensearch": "es"}
RENAMED = {
    "s3:ListBuckets": "s3:ListAllMyBuckets",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "s3:GetObjectLockConfiguration": "s3:GetBucketObjectLockConfiguration",
    "s3control:GetPublicAccessBlock": "s3:GetAccountPublicAccessBlock",
}
NO_PERMISSION_NEEDED = {"sts:GetCallerIdentity"}


def iam_action(service_op: str) -> str:
    if service_op in RENAMED:
        return RENAMED[service_op]
    service, op = service_op.split(":")
    return f"{PREFIX.get(service, service)}:{op}"


def test_policy_command_prints_the_declared_actions():
    result = CliRunner().invoke(app, ["policy"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    actions = doc["Statement"][0]["Action"]
    assert "ec2:DescribeSecurityGroups" in actions and "iam:GetCredentialReport" in actions
    assert actions == sorted(set(actions)) and all(":" in a and "*" not in a for a in actions)
    org = json.loads(CliRunner().invoke(app, ["policy", "--org"]).output)
    assert org["Statement"][1]["Action"] == ORG_ACTIONS + ASSUME_ACTIONS


def test_whole_scan_stays_within_the_declared_actions(aws, tmp_path):
    from auditbook.catalog.model import load_catalog
    from auditbook.collect.policy import collector_actions
    from auditbook.demo.estate import REGIONS, ROLE, build
    from auditbook.scan import run_scan

    build(boto3.Session(region_name="us-east-1"), log=lambda m: None)
    result = run_scan(org_role=ROLE, regions=",".join(REGIONS), db=f"sqlite:///{tmp_path}/p.db")
    assert not result.collection.gaps
    made = {iam_action(op) for op in result.collection.calls_by_operation}
    allowed = set(collector_actions(load_catalog())) | set(ORG_ACTIONS) | set(ASSUME_ACTIONS) | NO_PERMISSION_NEEDED
    assert made - allowed == set()
    assert len(made) > 50  # the scan really exercised the collectors
