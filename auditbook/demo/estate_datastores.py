"""Issue 15 coverage, datastores: the demo estate's planted violations and compliant twins for this area.

PLANTED / COMPLIANT: (check id, account name, resource name as in the finding) — the scan must FAIL
each planted one and PASS each twin (tests/unit/test_demo_estate.py). plant(accounts) builds them:
accounts is {account name: demo.estate.Account} (names: master, audit-logs, prod-us-east, staging).
This module must not import auditbook.demo.estate at module level (estate imports it)."""
from __future__ import annotations

import json

STAGING, PROD = "staging", "prod-us-east"
OUTSIDE_ACCOUNT = "999999999999"  # an account outside the organisation (a partner)


def _both(check: str, failing: str, passing: str, fail_in: str = STAGING, pass_in: str = PROD):
    return [(check, fail_in, failing)], [(check, pass_in, passing)]


_PAIRS = [
    # KMS: the compliant twin of the window check is staging's 30-day key (a prod key pending deletion
    # would fail kms-key-pending-deletion, which every key pending deletion fails)
    _both("kms-key-deletion-window", "staging-short-window", "staging-retired", pass_in=STAGING),
    _both("kms-key-policy-no-public-principal", "staging-open-policy", "prod-org-shared"),
    _both("kms-key-grants-external", "staging-partner-grant", "prod-org-grant"),
    # RDS / Aurora
    _both("rds-instance-iam-auth", "staging-db", "prod-db"),
    _both("rds-cluster-iam-auth", "staging-aurora", "prod-aurora"),
    _both("rds-cluster-backup-retention", "staging-aurora", "prod-aurora"),
    _both("rds-cluster-deletion-protection", "staging-aurora", "prod-aurora"),
    _both("rds-cluster-encrypted-cmk", "staging-aurora", "prod-aurora"),
    # EFS
    _both("efs-encrypted-cmk", "staging-shared-fs", "prod-shared-fs"),
    _both("efs-tls-only-policy", "staging-shared-fs", "prod-shared-fs"),
    _both("efs-automatic-backups", "staging-shared-fs", "prod-shared-fs"),
    # ElastiCache
    _both("elasticache-at-rest-encryption", "staging-cache", "prod-cache"),
    _both("elasticache-transit-encryption", "staging-cache", "prod-cache"),
    _both("elasticache-authentication", "staging-cache", "prod-cache"),
    _both("elasticache-snapshot-retention", "staging-cache", "prod-cache"),
    _both("elasticache-cluster-transit-encryption", "staging-memcached", "prod-memcached"),
    # Redshift
    _both("redshift-encrypted-cmk", "staging-warehouse", "prod-warehouse"),
    _both("redshift-not-public", "staging-warehouse", "prod-warehouse"),
    _both("redshift-snapshot-retention", "staging-warehouse", "prod-warehouse"),
    _both("redshift-audit-logging", "staging-warehouse", "prod-warehouse"),
    # OpenSearch
    _both("opensearch-encrypted-cmk", "staging-search", "prod-search"),
    _both("opensearch-node-to-node-encryption", "staging-search", "prod-search"),
    _both("opensearch-https-tls12", "staging-search", "prod-search"),
    _both("opensearch-in-vpc", "staging-search", "prod-search"),
    _both("opensearch-audit-logs", "staging-search", "prod-search"),
]
PLANTED: list[tuple[str, str, str]] = [p for planted, _ in _PAIRS for p in planted] + [
    ("kms-key-pending-deletion", STAGING, "staging-short-window"),  # every key pending deletion fails it
    ("redshift-require-ssl", STAGING, "staging-warehouse"),
]
COMPLIANT: list[tuple[str, str, str]] = [c for _, compliant in _PAIRS for c in compliant]
# moto cannot change a cluster parameter group, so require_ssl stays false and every cluster fails
SIMULATION_ARTEFACTS = {"redshift-require-ssl": "moto cannot modify a Redshift cluster parameter group "
                                                "(require_ssl stays false); tested with botocore's Stubber"}


def plant(accounts: dict) -> None:
    """Build this area's resources in the simulated organisation."""
    staging, prod = accounts[STAGING], accounts[PROD]
    _keys(staging, prod, accounts["audit-logs"].id)
    prod_key = prod.c("kms").describe_key(KeyId="alias/prod-data")["KeyMetadata"]["Arn"]
    _databases(staging, prod)
    _file_systems(staging, prod, prod_key)
    _caches(staging, prod, prod_key)
    _warehouses(staging, prod, prod_key)
    _search(staging, prod, prod_key)


def _policy(account_id: str, extra: dict) -> str:
    root = {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}, "Action": "kms:*", "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [root, extra]})


def _keys(staging, prod, audit_account: str) -> None:
    short = staging.key("staging-short-window")
    staging.c("kms").schedule_key_deletion(KeyId=short.split("/")[-1], PendingWindowInDays=7)
    use = ["kms:Decrypt", "kms:DescribeKey"]
    opened = staging.key("staging-open-policy")
    staging.c("kms").put_key_policy(KeyId=opened, PolicyName="default", Policy=_policy(staging.id, {
        "Sid": "AnyoneMayDecrypt", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": use, "Resource": "*"}))
    shared = prod.key("prod-org-shared")
    prod.c("kms").put_key_policy(KeyId=shared, PolicyName="default", Policy=_policy(prod.id, {
        "Sid": "OrganisationMayDecrypt", "Effect": "Allow", "Principal": "*", "Action": use, "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-demo"}}}))
    partner = staging.key("staging-partner-grant")
    staging.c("kms").create_grant(KeyId=partner, GranteePrincipal=f"arn:aws:iam::{OUTSIDE_ACCOUNT}:role/partner",
                                  Operations=["Decrypt"])
    internal = prod.key("prod-org-grant")
    prod.c("kms").create_grant(KeyId=internal, GranteePrincipal=f"arn:aws:iam::{audit_account}:role/log-reader",
                               Operations=["Decrypt"])


def _databases(staging, prod) -> None:
    prod.c("rds").modify_db_instance(DBInstanceIdentifier="prod-db", EnableIAMDatabaseAuthentication=True,
                                     ApplyImmediately=True)
    # prod-aurora is created with IAM authentication (estate._prod): moto's modify_db_cluster ignores the flag
    staging.c("rds").create_db_cluster(DBClusterIdentifier="staging-aurora", Engine="aurora-mysql",
                                       MasterUsername="app", MasterUserPassword="demo-password-not-secret",
                                       BackupRetentionPeriod=3, DeletionProtection=False)


def _file_systems(staging, prod, prod_key: str) -> None:
    staging.c("efs").create_file_system(CreationToken="staging-shared-fs", Encrypted=False,
                                        Tags=[{"Key": "Name", "Value": "staging-shared-fs"}])
    fs = prod.c("efs").create_file_system(CreationToken="prod-shared-fs", Encrypted=True, KmsKeyId=prod_key,
                                          Backup=True, Tags=[{"Key": "Name", "Value": "prod-shared-fs"}])
    prod.c("efs").put_file_system_policy(FileSystemId=fs["FileSystemId"], Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "DenyUnencryptedTransport", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))


def _caches(staging, prod, prod_key: str) -> None:
    common = dict(Engine="redis", CacheNodeType="cache.t3.micro")
    staging.c("elasticache").create_replication_group(ReplicationGroupId="staging-cache",
                                                      ReplicationGroupDescription="staging cache", **common)
    prod.c("elasticache").create_replication_group(
        ReplicationGroupId="prod-cache", ReplicationGroupDescription="prod cache", AtRestEncryptionEnabled=True,
        KmsKeyId=prod_key, TransitEncryptionEnabled=True, AuthToken="demo-token-not-a-secret-0123",
        SnapshotRetentionLimit=7, **common)
    memcached = dict(Engine="memcached", CacheNodeType="cache.t3.micro", NumCacheNodes=1)
    staging.c("elasticache").create_cache_cluster(CacheClusterId="staging-memcached", **memcached)
    prod.c("elasticache").create_cache_cluster(CacheClusterId="prod-memcached", TransitEncryptionEnabled=True,
                                               **memcached)


def _warehouses(staging, prod, prod_key: str) -> None:
    common = dict(NodeType="dc2.large", ClusterType="single-node", MasterUsername="app",
                  MasterUserPassword="Demo-password-not-secret1")
    staging.c("redshift").create_cluster(ClusterIdentifier="staging-warehouse", PubliclyAccessible=True,
                                         AutomatedSnapshotRetentionPeriod=1, **common)
    prod.c("redshift").create_cluster(ClusterIdentifier="prod-warehouse", PubliclyAccessible=False, Encrypted=True,
                                      KmsKeyId=prod_key, AutomatedSnapshotRetentionPeriod=35, **common)
    prod.c("redshift").enable_logging(ClusterIdentifier="prod-warehouse", BucketName="prod-access-logs",
                                      S3KeyPrefix="redshift/")


def _search(staging, prod, prod_key: str) -> None:
    staging.c("opensearch").create_domain(DomainName="staging-search")
    subnet = prod.c("ec2").describe_subnets()["Subnets"][0]["SubnetId"]
    group = f"arn:aws:logs:us-east-1:{prod.id}:log-group:/aws/opensearch/prod-search/audit"
    prod.c("opensearch").create_domain(
        DomainName="prod-search", EncryptionAtRestOptions={"Enabled": True, "KmsKeyId": prod_key},
        NodeToNodeEncryptionOptions={"Enabled": True},
        DomainEndpointOptions={"EnforceHTTPS": True, "TLSSecurityPolicy": "Policy-Min-TLS-1-2-PFS-2023-10"},
        VPCOptions={"SubnetIds": [subnet]}, AdvancedSecurityOptions={"Enabled": True,
                                                                     "InternalUserDatabaseEnabled": False},
        LogPublishingOptions={"AUDIT_LOGS": {"CloudWatchLogsLogGroupArn": group, "Enabled": True}})
