"""Issue 15 coverage, more: the demo estate's planted violations and compliant twins for checks on
services already collected (load balancer attributes, DynamoDB, Secrets Manager, snapshots, EKS,
CloudTrail, Backup, RDS logs, ECR lifecycle, S3 bucket policies).

PLANTED / COMPLIANT: (check id, account name, resource name as in the finding) — the scan must FAIL
each planted one and PASS each twin (tests/unit/test_demo_estate.py). plant(accounts) builds them:
accounts is {account name: demo.estate.Account} (names: master, audit-logs, prod-us-east, staging).
This module must not import auditbook.demo.estate at module level (estate imports it).

Most of these checks judge resources the estate and the other areas already build: staging's are left
as they are (AWS's defaults: no deletion protection, no log exports, no lifecycle policy, unencrypted
snapshots, the default keys) and planted; prod-us-east's are brought into line here. staging also gets
an EKS cluster whose API endpoint is open to the internet (compliant otherwise) and a public-read
statement on its public-assets bucket; every account's backup vault is re-created with a
customer-managed key (staging's keeps the AWS-managed default)."""
from __future__ import annotations

import json

STAGING_ALBS = ("staging-alb", "staging-api-alb")

PLANTED: list[tuple[str, str, str]] = [
    *[("elb-deletion-protection", "staging", lb) for lb in STAGING_ALBS],
    *[("elb-drop-invalid-headers", "staging", lb) for lb in STAGING_ALBS],
    ("dynamodb-deletion-protection", "staging", "staging-sessions"),
    ("secretsmanager-cmk", "staging", "staging-db-password"),
    ("ec2-snapshot-encrypted", "staging", "staging-scratch-snap"),
    ("ec2-snapshot-encrypted", "staging", "staging-worker-ami-snap"),
    ("rds-snapshot-encrypted", "staging", "staging-db-snap"),
    ("rds-cluster-snapshot-encrypted", "staging", "staging-aurora-snap"),
    ("eks-endpoint-not-public", "staging", "staging-eks-public"),
    ("cloudtrail-log-file-validation", "staging", "staging-trail"),
    ("cloudtrail-kms-encrypted", "staging", "staging-trail"),
    ("backup-vault-cmk", "staging", "staging-vault"),
    ("rds-instance-log-exports", "staging", "staging-db"),
    ("ecr-lifecycle-policy", "staging", "staging-images"),
    ("s3-bucket-policy-not-public", "staging", "staging-public-assets"),
    ("rds-cluster-log-exports", "staging", "staging-aurora"),
]
COMPLIANT: list[tuple[str, str, str]] = [
    ("elb-deletion-protection", "prod-us-east", "prod-alb"),
    ("elb-drop-invalid-headers", "prod-us-east", "prod-alb"),
    ("dynamodb-deletion-protection", "prod-us-east", "prod-sessions"),
    ("secretsmanager-cmk", "prod-us-east", "prod-db-password"),
    ("ec2-snapshot-encrypted", "prod-us-east", "prod-app-data-snap"),
    ("rds-snapshot-encrypted", "prod-us-east", "prod-db-snap"),
    ("rds-cluster-snapshot-encrypted", "prod-us-east", "prod-aurora-snap"),
    ("eks-endpoint-not-public", "prod-us-east", "prod-eks"),
    ("cloudtrail-log-file-validation", "prod-us-east", "prod-us-east-trail"),
    ("cloudtrail-kms-encrypted", "prod-us-east", "prod-us-east-trail"),
    ("backup-vault-cmk", "prod-us-east", "prod-us-east-vault"),
    ("rds-instance-log-exports", "prod-us-east", "prod-db"),
    ("ecr-lifecycle-policy", "prod-us-east", "prod-images"),
    ("s3-bucket-policy-not-public", "prod-us-east", "prod-customer-data"),
    ("rds-cluster-log-exports", "prod-us-east", "prod-aurora"),
]

# moto makes every AMI's snapshot unencrypted, whatever the source volume (create_image, register_image and
# copy_image alike), so prod-worker-ami-snap fails although AWS would encrypt it like prod-worker-root: the
# demo cannot hold this check to "no FAIL outside PLANTED" (its planted FAILs and prod-app-data-snap's PASS
# are still asserted). Unit tests: tests/unit/test_checks_more.py.
SIMULATION_ARTEFACTS = {"ec2-snapshot-encrypted": "moto creates every AMI's snapshot unencrypted, whatever the "
                                                  "source volume (prod-worker-ami-snap fails)"}

LIFECYCLE = {"rules": [{"rulePriority": 1, "description": "expire untagged images after 14 days",
                        "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                      "countUnit": "days", "countNumber": 14},
                        "action": {"type": "expire"}}]}


def _protect_prod(prod) -> None:
    """prod-us-east: deletion protection and header hygiene on the ALB and the table, database logs
    exported, the repository's old images expired."""
    elb = prod.c("elbv2")
    alb = elb.describe_load_balancers(Names=["prod-alb"])["LoadBalancers"][0]["LoadBalancerArn"]
    elb.modify_load_balancer_attributes(LoadBalancerArn=alb, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"},
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}])
    prod.c("dynamodb").update_table(TableName="prod-sessions", DeletionProtectionEnabled=True)
    prod.c("rds").modify_db_instance(DBInstanceIdentifier="prod-db", ApplyImmediately=True,
                                     CloudwatchLogsExportConfiguration={"EnableLogTypes": ["postgresql", "upgrade"]})
    prod.c("ecr").put_lifecycle_policy(repositoryName="prod-images", lifecyclePolicyText=json.dumps(LIFECYCLE))


def _ami_snapshots(acct, prefix: str) -> None:
    """Name the snapshot behind the worker's AMI (create_image makes it untagged) after the AMI."""
    ec2 = acct.c("ec2")
    image = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [f"{prefix}-worker-ami"]}])["Images"][0]
    for mapping in image.get("BlockDeviceMappings") or []:
        snapshot = (mapping.get("Ebs") or {}).get("SnapshotId")
        if snapshot:
            ec2.create_tags(Resources=[snapshot], Tags=[{"Key": "Name", "Value": f"{prefix}-worker-ami-snap"}])


def _cluster_snapshots(staging, prod) -> None:
    """A manual snapshot of each account's Aurora cluster (staging's is unencrypted, prod's under its key)."""
    staging.c("rds").create_db_cluster_snapshot(DBClusterIdentifier="staging-aurora",
                                                DBClusterSnapshotIdentifier="staging-aurora-snap")
    prod.c("rds").create_db_cluster_snapshot(DBClusterIdentifier="prod-aurora",
                                             DBClusterSnapshotIdentifier="prod-aurora-snap")


def _vaults_with_keys(accounts: dict) -> None:
    """Re-create each account's vault (empty, so nothing is lost) under a customer-managed key, lock
    included: a vault's key cannot be changed. staging keeps the AWS-managed default key."""
    for name, acct in accounts.items():
        if name == "staging":
            continue
        backup, vault = acct.c("backup"), f"{acct.name}-vault"
        found = [v for v in backup.list_backup_vaults()["BackupVaultList"] if v["BackupVaultName"] == vault]
        if not found:
            continue
        lock = found[0].get("MinRetentionDays")
        backup.delete_backup_vault(BackupVaultName=vault)
        backup.create_backup_vault(BackupVaultName=vault, EncryptionKeyArn=acct.key(f"{acct.name}-backup"))
        if found[0].get("Locked") and lock:
            backup.put_backup_vault_lock_configuration(BackupVaultName=vault, MinRetentionDays=lock)


def _public_endpoint_cluster(staging) -> None:
    """An EKS cluster whose API endpoint anyone on the internet can reach (secrets encrypted, audit log on)."""
    ec2 = staging.c("ec2")
    subnet = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": ["staging-private-a"]}])["Subnets"][0]
    staging.c("eks").create_cluster(
        name="staging-eks-public", roleArn=f"arn:aws:iam::{staging.id}:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": [subnet["SubnetId"]], "endpointPublicAccess": True,
                            "publicAccessCidrs": ["0.0.0.0/0"]},
        encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": staging.key("staging-eks")}}],
        logging={"clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": True}]})


def _public_read(staging) -> None:
    bucket = "staging-public-assets"
    staging.c("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*"}]}))


def plant(accounts: dict) -> None:
    """Build this area's resources in the simulated organisation."""
    prod, staging = accounts["prod-us-east"], accounts["staging"]
    _protect_prod(prod)
    for acct, prefix in ((staging, "staging"), (prod, "prod")):
        _ami_snapshots(acct, prefix)
    _cluster_snapshots(staging, prod)
    _vaults_with_keys(accounts)
    _public_endpoint_cluster(staging)
    _public_read(staging)
