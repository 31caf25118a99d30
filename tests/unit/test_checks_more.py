"""Issue 15, more: checks on services already collected (load balancer attributes, DynamoDB and Secrets
Manager, EBS / RDS snapshots, EKS endpoints, CloudTrail trails, Backup vaults, RDS log exports, ECR
lifecycle, S3 bucket policies) on in-process moto — FAIL naming the offending value, PASS, not applicable
— and, where moto answers differently from AWS, botocore's Stubber with AWS's answer."""
import json
import shutil
from pathlib import Path

import boto3
from botocore.stub import Stubber

from auditbook.catalog.model import load_catalog
from auditbook.collect.clients import ClientCache
from auditbook.collect.runner import Runner
from auditbook.collect.targets import Target, current_target
from auditbook.evaluate.evaluator import evaluate
from auditbook.plugins import resource_types
from tests.conftest import by_check, status_of

ROOT = Path(__file__).resolve().parents[2]


def scan(types, catalog=None):
    """Collect `types` with the current (moto) credentials (no evidence gap allowed) and evaluate."""
    clients = ClientCache(pool=4)
    rtypes = [resource_types()[name] for name in types]
    collection = Runner(workers=2, clients=clients).run([current_target(clients)], ["us-east-1"], rtypes)
    assert collection.gaps == [] and all(not r.gaps for r in collection.records), collection.gaps
    return evaluate(catalog or load_catalog(), collection)


def message_of(findings, check, name):
    found = by_check(findings, check, name)
    assert len(found) == 1 and found[0].status == "FAIL", [(f.status, f.message) for f in found]
    return found[0].message


def catalog_with(tmp_path, values: dict):
    for name in ("controls.yaml", "company-controls.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "company-parameters.yaml").write_text(json.dumps({"version": 1, "parameters": values}))
    return load_catalog(tmp_path / "controls.yaml")


def customer_key(aws):
    return aws.client("kms").create_key(Description="data")["KeyMetadata"]["Arn"]


def subnets(aws):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
            for i, z in ((1, "a"), (2, "b"))]


# -- load balancers ---------------------------------------------------------------------------------------

def test_load_balancer_deletion_protection_and_invalid_headers(aws):
    elb, nets = aws.client("elbv2"), subnets(aws)
    guarded = elb.create_load_balancer(Name="guarded", Subnets=nets)["LoadBalancers"][0]["LoadBalancerArn"]
    elb.modify_load_balancer_attributes(LoadBalancerArn=guarded, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"},
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}])
    elb.create_load_balancer(Name="bare", Subnets=nets)  # AWS's defaults: both off
    elb.create_load_balancer(Name="net", Subnets=nets, Type="network")
    findings = scan(["aws.elbv2.load_balancer"])
    assert "deletion_protection.enabled: false" in message_of(findings, "elb-deletion-protection", "bare")
    assert "deletion_protection.enabled: false" in message_of(findings, "elb-deletion-protection", "net")
    assert status_of(findings, "elb-deletion-protection", "guarded") == "PASS"
    # moto, like AWS for an attribute at its default, may omit the key: absent is off
    assert "drop_invalid_header_fields.enabled: not set, false" in message_of(
        findings, "elb-drop-invalid-headers", "bare")
    assert status_of(findings, "elb-drop-invalid-headers", "guarded") == "PASS"
    assert by_check(findings, "elb-drop-invalid-headers", "net") == []  # an ALB-only attribute


# -- DynamoDB, Secrets Manager --------------------------------------------------------------------------------

def test_dynamodb_deletion_protection(aws):
    ddb = aws.client("dynamodb")
    table = dict(KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    ddb.create_table(TableName="kept", DeletionProtectionEnabled=True, **table)
    ddb.create_table(TableName="loose", **table)
    findings = scan(["aws.dynamodb.table"])
    assert "DeletionProtectionEnabled: false" in message_of(findings, "dynamodb-deletion-protection", "loose")
    assert status_of(findings, "dynamodb-deletion-protection", "kept") == "PASS"


def test_secrets_need_a_customer_managed_key(aws, tmp_path):
    sm, kms = aws.client("secretsmanager"), aws.client("kms")
    key = customer_key(aws)
    kms.create_alias(AliasName="alias/app-secrets", TargetKeyId=key)
    sm.create_secret(Name="default-key", SecretString="not-read")
    sm.create_secret(Name="aws-key", SecretString="not-read", KmsKeyId="alias/aws/secretsmanager")
    sm.create_secret(Name="cmk", SecretString="not-read", KmsKeyId=key)
    sm.create_secret(Name="cmk-alias", SecretString="not-read", KmsKeyId="alias/app-secrets")
    findings = scan(["aws.secretsmanager.secret"])
    check = "secretsmanager-cmk"
    assert "the default key alias/aws/secretsmanager (AWS-managed)" in message_of(findings, check, "default-key")
    assert "alias/aws/secretsmanager (AWS-managed); required: a customer-managed" in message_of(findings, check, "aws-key")
    assert status_of(findings, check, "cmk") == "PASS"
    assert status_of(findings, check, "cmk-alias") == "PASS"
    relaxed = scan(["aws.secretsmanager.secret"], catalog_with(tmp_path, {"require_customer_managed_keys": False}))
    assert {status_of(relaxed, check, name) for name in ("default-key", "aws-key", "cmk")} == {"PASS"}


# -- snapshots --------------------------------------------------------------------------------------------

def test_ebs_snapshots_are_encrypted(aws):
    ec2 = aws.client("ec2")
    plain = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    sealed = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, Encrypted=True, KmsKeyId=customer_key(aws))["VolumeId"]
    bad = ec2.create_snapshot(VolumeId=plain)["SnapshotId"]
    good = ec2.create_snapshot(VolumeId=sealed)["SnapshotId"]
    findings = scan(["aws.ec2.snapshot"])
    assert f"snapshot of volume {plain} is not encrypted (Encrypted: false)" in message_of(
        findings, "ec2-snapshot-encrypted", bad)
    assert status_of(findings, "ec2-snapshot-encrypted", good) == "PASS"


def test_rds_snapshots_are_encrypted(aws):
    rds, key = aws.client("rds"), customer_key(aws)
    login = dict(MasterUsername="app", MasterUserPassword="not-a-secret-1")
    rds.create_db_instance(DBInstanceIdentifier="plain-db", Engine="postgres", DBInstanceClass="db.t3.micro",
                           AllocatedStorage=20, **login)
    rds.create_db_instance(DBInstanceIdentifier="sealed-db", Engine="postgres", DBInstanceClass="db.t3.micro",
                           AllocatedStorage=20, StorageEncrypted=True, KmsKeyId=key, **login)
    rds.create_db_snapshot(DBInstanceIdentifier="plain-db", DBSnapshotIdentifier="plain-snap")
    rds.create_db_snapshot(DBInstanceIdentifier="sealed-db", DBSnapshotIdentifier="sealed-snap")
    rds.create_db_cluster(DBClusterIdentifier="plain-cluster", Engine="aurora-mysql", **login)
    rds.create_db_cluster(DBClusterIdentifier="sealed-cluster", Engine="aurora-postgresql", StorageEncrypted=True,
                          KmsKeyId=key, **login)
    rds.create_db_cluster_snapshot(DBClusterIdentifier="plain-cluster", DBClusterSnapshotIdentifier="plain-csnap")
    rds.create_db_cluster_snapshot(DBClusterIdentifier="sealed-cluster", DBClusterSnapshotIdentifier="sealed-csnap")
    findings = scan(["aws.rds.snapshot", "aws.rds.cluster_snapshot"])
    assert "snapshot of plain-db (postgres) is not encrypted (Encrypted: false)" in message_of(
        findings, "rds-snapshot-encrypted", "plain-snap")
    assert status_of(findings, "rds-snapshot-encrypted", "sealed-snap") == "PASS"
    assert "cluster snapshot of plain-cluster (aurora-mysql) is not encrypted (StorageEncrypted: false)" in message_of(
        findings, "rds-cluster-snapshot-encrypted", "plain-csnap")
    assert status_of(findings, "rds-cluster-snapshot-encrypted", "sealed-csnap") == "PASS"


# -- EKS --------------------------------------------------------------------------------------------------

def test_eks_endpoint_open_to_the_internet(aws):
    eks, nets = aws.client("eks"), subnets(aws)
    role = "arn:aws:iam::123456789012:role/eks"
    eks.create_cluster(name="private", roleArn=role, resourcesVpcConfig={"subnetIds": nets, "endpointPublicAccess": False,
                                                                         "endpointPrivateAccess": True})
    eks.create_cluster(name="office-only", roleArn=role, resourcesVpcConfig={
        "subnetIds": nets, "endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]})
    eks.create_cluster(name="unset", roleArn=role, resourcesVpcConfig={"subnetIds": nets, "endpointPublicAccess": True})
    eks.create_cluster(name="world", roleArn=role, resourcesVpcConfig={
        "subnetIds": nets, "endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24", "0.0.0.0/0"]})
    findings = scan(["aws.eks.cluster"])
    check = "eks-endpoint-not-public"
    # no CIDR list on a public endpoint means AWS's default, 0.0.0.0/0 (moto omits the field)
    assert "public and admits 0.0.0.0/0 (publicAccessCidrs: 0.0.0.0/0)" in message_of(findings, check, "unset")
    assert "admits 0.0.0.0/0 (publicAccessCidrs: 203.0.113.0/24, 0.0.0.0/0)" in message_of(findings, check, "world")
    assert status_of(findings, check, "private") == "PASS"
    assert status_of(findings, check, "office-only") == "PASS"


# -- CloudTrail ------------------------------------------------------------------------------------------

def test_trail_validation_and_kms_per_trail(aws):
    aws.client("s3").create_bucket(Bucket="trail-logs-bucket")
    ct = aws.client("cloudtrail")
    ct.create_trail(Name="bare-trail", S3BucketName="trail-logs-bucket")
    ct.create_trail(Name="sealed-trail", S3BucketName="trail-logs-bucket", EnableLogFileValidation=True,
                    KmsKeyId=customer_key(aws))
    findings = scan(["aws.cloudtrail.trail"])
    assert "log file validation is off (LogFileValidationEnabled: false) on the trail to bucket trail-logs-bucket" in \
        message_of(findings, "cloudtrail-log-file-validation", "bare-trail")
    assert "encrypted with SSE-S3 only (KmsKeyId: none)" in message_of(findings, "cloudtrail-kms-encrypted", "bare-trail")
    assert status_of(findings, "cloudtrail-log-file-validation", "sealed-trail") == "PASS"
    assert status_of(findings, "cloudtrail-kms-encrypted", "sealed-trail") == "PASS"


# -- Backup -----------------------------------------------------------------------------------------------

def test_backup_vault_key(aws, tmp_path):
    backup = aws.client("backup")
    backup.create_backup_vault(BackupVaultName="default-key-vault")
    backup.create_backup_vault(BackupVaultName="cmk-vault", EncryptionKeyArn=customer_key(aws))
    findings = scan(["aws.backup.vault"])
    assert "encrypted with the default key alias/aws/backup (AWS-managed); required: a customer-managed" in \
        message_of(findings, "backup-vault-cmk", "default-key-vault")
    assert status_of(findings, "backup-vault-cmk", "cmk-vault") == "PASS"
    relaxed = scan(["aws.backup.vault"], catalog_with(tmp_path, {"require_customer_managed_keys": False}))
    assert status_of(relaxed, "backup-vault-cmk", "default-key-vault") == "PASS"


def _stubbed_run(client, service, rtype, extra=()):
    clients = ClientCache(pool=2)
    clients._clients[(service, "us-east-1")] = client
    for name, other in extra:
        clients._clients[(name, "us-east-1")] = other
    return Runner(workers=1, clients=clients).run([Target("111111111111", "a", object())], ["us-east-1"],
                                                  [resource_types()[rtype]])


def test_backup_vault_keys_as_aws_reports_them():
    """AWS names the key of every vault (moto leaves it out unless one was given) and says AWS_OWNED_KMS_KEY
    for logically air-gapped vaults, whose key DescribeKey cannot read: that one is not asked for."""
    backup, kms = boto3.client("backup", region_name="us-east-1"), boto3.client("kms", region_name="us-east-1")
    aws_key = "arn:aws:kms:us-east-1:111111111111:key/11111111-2222-3333-4444-555555555555"
    vault = "arn:aws:backup:us-east-1:111111111111:backup-vault:{}".format
    with Stubber(backup) as b_stub, Stubber(kms) as k_stub:
        b_stub.add_response("list_backup_vaults", {"BackupVaultList": [
            {"BackupVaultName": "Default", "BackupVaultArn": vault("Default"), "EncryptionKeyArn": aws_key},
            {"BackupVaultName": "air-gapped", "BackupVaultArn": vault("air-gapped"),
             "VaultType": "LOGICALLY_AIR_GAPPED_BACKUP_VAULT", "EncryptionKeyType": "AWS_OWNED_KMS_KEY",
             "EncryptionKeyArn": "arn:aws:kms:us-east-1:999999999999:key/aws-owned"}]}, {})
        k_stub.add_response("describe_key", {"KeyMetadata": {"KeyId": aws_key, "Arn": aws_key, "KeyManager": "AWS"}},
                            {"KeyId": aws_key})
        collection = _stubbed_run(backup, "backup", "aws.backup.vault", [("kms", kms)])
        k_stub.assert_no_pending_responses()
    assert collection.gaps == [] and all(not r.gaps for r in collection.records)
    findings = evaluate(load_catalog(), collection)
    assert f"KMS key {aws_key} (AWS-managed)" in message_of(findings, "backup-vault-cmk", "Default")
    assert "AWS-owned key arn:aws:kms:us-east-1:999999999999:key/aws-owned" in message_of(
        findings, "backup-vault-cmk", "air-gapped")


# -- RDS log exports -----------------------------------------------------------------------------------------

def test_rds_log_exports(aws):
    rds = aws.client("rds")
    login = dict(MasterUsername="app", MasterUserPassword="not-a-secret-1")
    rds.create_db_instance(DBInstanceIdentifier="quiet-db", Engine="postgres", DBInstanceClass="db.t3.micro",
                           AllocatedStorage=20, **login)
    rds.create_db_instance(DBInstanceIdentifier="logged-db", Engine="postgres", DBInstanceClass="db.t3.micro",
                           AllocatedStorage=20, EnableCloudwatchLogsExports=["postgresql", "upgrade"], **login)
    rds.create_db_cluster(DBClusterIdentifier="logged-cluster", Engine="aurora-postgresql",
                          EnableCloudwatchLogsExports=["postgresql"], **login)
    rds.create_db_instance(DBInstanceIdentifier="member", Engine="aurora-postgresql", DBInstanceClass="db.r6g.large",
                           DBClusterIdentifier="logged-cluster")
    findings = scan(["aws.rds.instance", "aws.rds.cluster"])
    assert "no database log exported to CloudWatch Logs (postgres: EnabledCloudwatchLogsExports none)" in message_of(
        findings, "rds-instance-log-exports", "quiet-db")
    assert status_of(findings, "rds-instance-log-exports", "logged-db") == "PASS"
    assert by_check(findings, "rds-instance-log-exports", "member") == []  # the cluster exports its logs


# -- ECR, S3 ------------------------------------------------------------------------------------------------

def test_ecr_lifecycle_policy(aws):
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName="kept-forever")
    ecr.create_repository(repositoryName="pruned")
    ecr.put_lifecycle_policy(repositoryName="pruned", lifecyclePolicyText=json.dumps({"rules": [{
        "rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                         "countUnit": "days", "countNumber": 14}, "action": {"type": "expire"}}]}))
    findings = scan(["aws.ecr.repository"])
    assert "no lifecycle rule expires images (lifecycle policy: none)" in message_of(
        findings, "ecr-lifecycle-policy", "kept-forever")
    assert status_of(findings, "ecr-lifecycle-policy", "pruned") == "PASS"


def _bucket_policy(name, *statements):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": sid, "Effect": "Allow", "Principal": principal, "Action": "s3:GetObject",
         "Resource": f"arn:aws:s3:::{name}/*", **({"Condition": cond} if cond else {})}
        for sid, principal, cond in statements]})


def test_s3_bucket_policy_not_public(aws):
    s3 = aws.client("s3")
    for name in ("open-website", "org-shared", "service-logs", "no-policy"):
        s3.create_bucket(Bucket=name)
    s3.put_bucket_policy(Bucket="open-website", Policy=_bucket_policy("open-website", ("PublicRead", "*", None)))
    s3.put_bucket_policy(Bucket="org-shared", Policy=_bucket_policy(
        "org-shared", ("OrgRead", {"AWS": "*"}, {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}})))
    s3.put_bucket_policy(Bucket="service-logs", Policy=_bucket_policy(
        "service-logs", ("Logs", {"Service": "logging.s3.amazonaws.com"}, None)))
    findings = scan(["aws.s3.bucket"])
    check = "s3-bucket-policy-not-public"
    assert "the bucket policy lets anyone in: PublicRead: Allow * s3:GetObject" in message_of(findings, check, "open-website")
    for name in ("org-shared", "service-logs", "no-policy"):
        assert status_of(findings, check, name) == "PASS", name
