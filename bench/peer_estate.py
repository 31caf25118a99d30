"""The small estate of the peers note (../shared/notes/peers.md), rebuilt for bench/fixed_cost.py: one
account (moto's 123456789012), two regions, 14 planted resources — 8 violations and 6 compliant twins
across S3, IAM, EC2/VPC, CloudTrail, KMS and RDS. Everything else a scan reads is what moto creates by
itself (default VPCs, subnets, security groups, network ACLs, route tables, ...)."""
from __future__ import annotations

import json

REGIONS = ["us-east-1", "eu-west-1"]
ACCOUNT = "123456789012"

# (what, name, region or None for global, VIOLATION | COMPLIANT)
PLANTED = [
    ("s3 bucket without versioning, public access block or TLS-only policy", "peer-public-assets", None, "VIOLATION"),
    ("s3 bucket versioned, blocked, TLS only", "peer-private-records", None, "COMPLIANT"),
    ("iam console user without MFA", "peer-console-nomfa", None, "VIOLATION"),
    ("iam console user with MFA", "peer-console-mfa", None, "COMPLIANT"),
    ("security group: SSH from 0.0.0.0/0", "peer-ssh-anywhere", "us-east-1", "VIOLATION"),
    ("security group: HTTPS from 10.0.0.0/8 only", "peer-https-internal", "us-east-1", "COMPLIANT"),
    ("VPC without flow logs", "peer-vpc-dark", "eu-west-1", "VIOLATION"),
    ("VPC with flow logs", "peer-vpc-logged", "eu-west-1", "COMPLIANT"),
    ("CloudTrail single-region trail", "peer-trail", "us-east-1", "VIOLATION"),
    ("KMS key without rotation", "peer-key-norotation", "us-east-1", "VIOLATION"),
    ("KMS key with rotation", "peer-key-rotated", "eu-west-1", "COMPLIANT"),
    ("RDS instance unencrypted and public", "peer-db-open", "us-east-1", "VIOLATION"),
    ("RDS instance encrypted and private", "peer-db-closed", "eu-west-1", "COMPLIANT"),
    ("EBS volume unencrypted", "peer-scratch", "eu-west-1", "VIOLATION"),
]


def _tls_only(bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def _tagged(kind: str, name: str) -> list[dict]:
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def build(session) -> int:
    """Creates PLANTED on the endpoint of `session` (AWS_ENDPOINT_URL); returns how many."""
    _storage(session)
    _identity(session)
    _network(session)
    _keys_trail_databases(session)
    return len(PLANTED)


def _storage(session) -> None:
    s3 = session.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="peer-public-assets")
    s3.create_bucket(Bucket="peer-private-records")
    s3.put_bucket_versioning(Bucket="peer-private-records", VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(Bucket="peer-private-records", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_policy(Bucket="peer-private-records", Policy=_tls_only("peer-private-records"))
    s3.create_bucket(Bucket="peer-trail-logs")  # the trail's destination (not counted as planted)


def _identity(session) -> None:
    iam = session.client("iam")
    for name, mfa in (("peer-console-nomfa", False), ("peer-console-mfa", True)):
        iam.create_user(UserName=name)
        iam.create_login_profile(UserName=name, Password="Bench-Passw0rd!-not-secret")
        if mfa:
            serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]["SerialNumber"]
            iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1="123456",
                                  AuthenticationCode2="654321")


def _network(session) -> None:
    us = session.client("ec2", region_name="us-east-1")
    default_vpc = us.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for name, port, cidr in (("peer-ssh-anywhere", 22, "0.0.0.0/0"), ("peer-https-internal", 443, "10.0.0.0/8")):
        group = us.create_security_group(GroupName=name, Description="bench", VpcId=default_vpc,
                                         TagSpecifications=_tagged("security-group", name))["GroupId"]
        us.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}])
    eu = session.client("ec2", region_name="eu-west-1")
    eu.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=_tagged("vpc", "peer-vpc-dark"))
    logged = eu.create_vpc(CidrBlock="10.30.0.0/16",
                           TagSpecifications=_tagged("vpc", "peer-vpc-logged"))["Vpc"]["VpcId"]
    made = eu.create_flow_logs(ResourceIds=[logged], ResourceType="VPC", TrafficType="ALL",
                               LogDestinationType="s3", LogDestination="arn:aws:s3:::peer-trail-logs")
    if made.get("Unsuccessful"):
        raise RuntimeError(f"flow log not created: {made['Unsuccessful']}")
    eu.create_volume(AvailabilityZone="eu-west-1a", Size=1, TagSpecifications=_tagged("volume", "peer-scratch"))


def _keys_trail_databases(session) -> None:
    session.client("cloudtrail", region_name="us-east-1").create_trail(
        Name="peer-trail", S3BucketName="peer-trail-logs", IsMultiRegionTrail=False)
    session.client("kms", region_name="us-east-1").create_key(
        Description="peer-key-norotation", Tags=[{"TagKey": "Name", "TagValue": "peer-key-norotation"}])
    kms_eu = session.client("kms", region_name="eu-west-1")
    key = kms_eu.create_key(Description="peer-key-rotated",
                            Tags=[{"TagKey": "Name", "TagValue": "peer-key-rotated"}])["KeyMetadata"]["KeyId"]
    kms_eu.enable_key_rotation(KeyId=key)
    for region, name, open_ in (("us-east-1", "peer-db-open", True), ("eu-west-1", "peer-db-closed", False)):
        encryption = {} if open_ else {"StorageEncrypted": True, "KmsKeyId": key}
        session.client("rds", region_name=region).create_db_instance(
            DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="bench", MasterUserPassword="Bench-Passw0rd-not-secret", AllocatedStorage=20,
            PubliclyAccessible=open_, BackupRetentionPeriod=0 if open_ else 14,
            DeletionProtection=not open_, **encryption)
