"""Issue 15 coverage, declared: the demo estate's control tags (SOC2_Control = "CC6.1", as the seed's
Terraform sets them), added through the services' tag APIs to resources the other builders made, so the
Declared controls views have each case: declared resources failing their criterion in staging, declared
and passing in prod-us-east, a declared criterion no check evidences (PI1.1 has manual evidence only), a
tag value that is not a criterion id, and — everything else of the checked types — untagged.

No check is added, so PLANTED and COMPLIANT stay empty and every check's verdict is unchanged (tags are
only added, never replaced; no check scopes on this tag). DECLARED lists what the declared view must
say (tests/integration/test_declared_demo.py). This module must not import auditbook.demo.estate at
module level (estate imports it)."""
from __future__ import annotations

PLANTED: list[tuple[str, str, str]] = []
COMPLIANT: list[tuple[str, str, str]] = []
TAG_KEY = "SOC2_Control"
# (account name, resource name, criterion, state in the declared view)
DECLARED = [
    ("staging", "staging-public-assets", "CC6.6", "FAIL"),   # no public access block
    ("staging", "staging-public-assets", "C1.1", "FAIL"),
    ("staging", "ssh-anywhere", "CC6.6", "FAIL"),            # tcp 22 open to the world
    ("staging", "staging-scratch", "CC6.1", "FAIL"),         # an unencrypted volume
    ("prod-us-east", "prod-customer-data", "CC6.1", "PASS"),
    ("prod-us-east", "prod-customer-data", "C1.1", "PASS"),
    ("prod-us-east", "prod-customer-data", "PI1.1", "NOT_EVIDENCED"),  # no check of PI1.1 reads buckets
    ("prod-us-east", "web-https", "CC6.6", "PASS"),
    ("prod-us-east", "prod-app-data", "CC6.1", "PASS"),
]
# (account name, resource name): a control tag whose value is not a criterion id
INVALID = [("staging", "staging-customer-export")]


def tag_bucket(s3, bucket: str, value: str) -> None:
    """Add the control tag to a bucket, keeping its other tags (PutBucketTagging replaces the set)."""
    try:
        tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except s3.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchTagSet":
            raise
        tags = []
    kept = [t for t in tags if t["Key"] != TAG_KEY]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": kept + [{"Key": TAG_KEY, "Value": value}]})


def tag_ec2(ec2, kind: str, name: str, value: str) -> None:
    """Add the control tag to the EC2 resources of a kind (security-group, volume) named `name`."""
    found = {"security-group": lambda: [g["GroupId"] for g in ec2.describe_security_groups(
                 Filters=[{"Name": "tag:Name", "Values": [name]}])["SecurityGroups"]],
             "volume": lambda: [v["VolumeId"] for v in ec2.describe_volumes(
                 Filters=[{"Name": "tag:Name", "Values": [name]}])["Volumes"]]}[kind]()
    if not found:
        raise LookupError(f"demo: no {kind} named {name} to tag")
    ec2.create_tags(Resources=found, Tags=[{"Key": TAG_KEY, "Value": value}])


def plant(accounts: dict) -> None:
    """Tag the demo's resources with the criteria they declare."""
    staging, prod = accounts["staging"], accounts["prod-us-east"]
    tag_bucket(staging.c("s3"), "staging-public-assets", "CC6.6,C1.1")
    tag_bucket(staging.c("s3"), "staging-customer-export", "cc6.1, CC6.10")  # a typo: no criterion declared
    tag_ec2(staging.c("ec2"), "security-group", "ssh-anywhere", "CC6.6")
    tag_ec2(staging.c("ec2"), "volume", "staging-scratch", "CC6.1")
    tag_bucket(prod.c("s3"), "prod-customer-data", "CC6.1 C1.1 PI1.1")
    tag_ec2(prod.c("ec2"), "security-group", "web-https", "CC6.6")
    tag_ec2(prod.c("ec2"), "volume", "prod-app-data", "CC6.1")
