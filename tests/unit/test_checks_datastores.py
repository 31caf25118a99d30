"""Issue 15, datastores: KMS key deletion window, key policies open to "*", grants to other accounts; RDS /
Aurora IAM authentication and backups against backup_retention_days; EFS, ElastiCache, Redshift and
OpenSearch encryption (customer-managed keys when require_customer_managed_keys is on), transport, exposure,
backups and audit logs. In-process moto (FAIL naming the offending value, PASS, not applicable), the
policy readings behind them, and what moto cannot serve (botocore's Stubber)."""
import datetime as dt
import json
from pathlib import Path

import boto3
from botocore.stub import Stubber
from freezegun import freeze_time

from auditbook.catalog.model import load_catalog
from auditbook.collect.clients import ClientCache
from auditbook.collect.runner import Runner
from auditbook.collect.targets import Target, current_target
from auditbook.evaluate.evaluator import evaluate
from auditbook.plugins import resource_types
from collectors.efs import _file_system
from collectors.kms import _deletion_window, external_grants, open_policy_statements
from tests.catalog_edits import catalog_with_parameters as catalog_with
from tests.conftest import by_check, status_of

ROOT = Path(__file__).resolve().parents[2]
TYPES = ("aws.kms.key", "aws.rds.instance", "aws.rds.cluster", "aws.efs.file_system",
         "aws.elasticache.replication_group", "aws.elasticache.cache_cluster", "aws.redshift.cluster",
         "aws.opensearch.domain", "aws.iam.account")
OUTSIDE = "999999999999"


def scan(catalog=None):
    """Collect this area's types with the current (moto) credentials and evaluate the catalog."""
    clients = ClientCache(pool=4)
    rtypes = [resource_types()[name] for name in TYPES]
    collection = Runner(workers=2, clients=clients).run([current_target(clients)], ["us-east-1"], rtypes)
    assert collection.gaps == [] and all(not r.gaps for r in collection.records), \
        [g.reason() for g in collection.gaps] + [r.gaps for r in collection.records if r.gaps]
    return collection, evaluate(catalog or load_catalog(), collection)


def message_of(findings, check, name):
    found = by_check(findings, check, name)
    assert len(found) == 1 and found[0].status == "FAIL", [(f.status, f.message) for f in found]
    return found[0].message


def customer_key(aws, description="app data"):
    return aws.client("kms").create_key(Description=description)["KeyMetadata"]["Arn"]


def aws_managed_key(service):
    """An AWS-managed key by its reserved alias: moto's keys behind alias/aws/* say KeyManager CUSTOMER, so
    a key ARN would not do (the alias is recognised without a call)."""
    return f"alias/aws/{service}"


def key_policy(account, extra):
    root = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": "kms:*", "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [root, extra]})


# -- KMS -------------------------------------------------------------------------------------------------

def test_kms_deletion_window_bounded_by_the_keys_creation(aws):
    kms = aws.client("kms")
    created = dt.datetime.now(dt.timezone.utc)
    with freeze_time(created - dt.timedelta(days=100)):
        old = kms.create_key(Description="old-key")["KeyMetadata"]["KeyId"]
    short = kms.create_key(Description="short-window")["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=short, PendingWindowInDays=7)
    full = kms.create_key(Description="full-window")["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=full, PendingWindowInDays=30)
    kms.schedule_key_deletion(KeyId=old, PendingWindowInDays=7)
    kms.create_key(Description="in-use")
    _, findings = scan()
    message = message_of(findings, "kms-key-deletion-window", "short-window")
    assert "at most 7 days, required 30" in message
    assert status_of(findings, "kms-key-deletion-window", "full-window") == "PASS"
    # scheduled long after creation: the API cannot show the 7-day window, so no false FAIL is made
    assert status_of(findings, "kms-key-deletion-window", "old-key") == "PASS"
    assert by_check(findings, "kms-key-deletion-window", "in-use") == []


def test_kms_deletion_window_minimum_is_the_companys(aws, tmp_path):
    kms = aws.client("kms")
    key = kms.create_key(Description="ten-days")["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=10)
    collection, findings = scan()
    assert status_of(findings, "kms-key-deletion-window", "ten-days") == "FAIL"
    relaxed = evaluate(catalog_with(tmp_path, {"kms_deletion_window_min_days": 7}), collection)
    assert status_of(relaxed, "kms-key-deletion-window", "ten-days") == "PASS"


def test_kms_deletion_window_of_a_primary_waiting_for_replicas():
    assert _deletion_window({"KeyState": "PendingReplicaDeletion", "PendingDeletionWindowInDays": 9}) == 9
    assert _deletion_window({"DeletionDate": "2026-01-31T00:00:00Z", "CreationDate": "2026-01-01T00:00:00Z",
                             "last_rotated": "2026-01-20T00:00:00Z"}) == 11


def test_kms_key_policy_open_to_anyone(aws):
    kms = aws.client("kms")
    account = aws.client("sts").get_caller_identity()["Account"]
    use = ["kms:Decrypt", "kms:Encrypt"]
    opened = kms.create_key(Description="open")["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=opened, PolicyName="default", Policy=key_policy(account, {
        "Sid": "Anyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": use, "Resource": "*"}))
    conditioned = kms.create_key(Description="org-only")["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=conditioned, PolicyName="default", Policy=key_policy(account, {
        "Sid": "Org", "Effect": "Allow", "Principal": "*", "Action": use, "Resource": "*",
        "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}}}))
    kms.create_key(Description="default-policy")
    retired = kms.create_key(Description="retired")["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=retired, PendingWindowInDays=30)
    _, findings = scan()
    assert "Anyone: Allow * kms:Decrypt, kms:Encrypt" in message_of(findings, "kms-key-policy-no-public-principal", "open")
    assert status_of(findings, "kms-key-policy-no-public-principal", "org-only") == "PASS"
    assert status_of(findings, "kms-key-policy-no-public-principal", "default-policy") == "PASS"
    assert by_check(findings, "kms-key-policy-no-public-principal", "retired") == []  # cannot be used
    aws_keys = [f for f in by_check(findings, "kms-key-policy-no-public-principal") if f.resource_name.startswith(
        "Default key")]
    assert aws_keys == []  # AWS-managed keys' policies are AWS's


def test_key_policy_statement_conditions():
    public_statements = open_policy_statements

    def stmt(**extra):
        return json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", **extra}]})
    assert public_statements(stmt()) == ["statement: Allow * kms:Decrypt"]
    assert public_statements(stmt(Condition={"StringEquals": {"kms:CallerAccount": "111111111111"}})) == []
    assert public_statements(stmt(Condition={"ArnLike": {"aws:SourceArn": "arn:aws:s3:::bucket"}})) == []
    # kms:ViaService alone: any account's principal can call the service with the key
    assert public_statements(stmt(Condition={"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}))
    # a wildcard value, a negated operator or IfExists does not restrict
    assert public_statements(stmt(Condition={"StringLike": {"aws:PrincipalAccount": "*"}}))
    assert public_statements(stmt(Condition={"StringNotEquals": {"aws:PrincipalAccount": "111111111111"}}))
    assert public_statements(stmt(Condition={"StringEqualsIfExists": {"aws:PrincipalOrgID": "o-1"}}))
    assert public_statements(json.dumps({"Statement": [{"Effect": "Allow", "NotPrincipal": {"AWS": "x"},
                                                        "Action": "kms:*"}]})) == ["statement: Allow * kms:*"]
    assert public_statements(json.dumps({"Statement": {"Effect": "Deny", "Principal": "*", "Action": "*"}})) == []
    assert public_statements("{not json") == ["(unreadable policy)"]


def test_kms_grants_to_other_accounts(aws):
    kms = aws.client("kms")
    account = aws.client("sts").get_caller_identity()["Account"]
    shared = kms.create_key(Description="shared")["KeyMetadata"]["KeyId"]
    kms.create_grant(KeyId=shared, GranteePrincipal=f"arn:aws:iam::{OUTSIDE}:role/partner", Operations=["Decrypt"])
    kms.create_grant(KeyId=shared, GranteePrincipal=f"arn:aws:iam::{account}:role/app", Operations=["Decrypt"])
    own = kms.create_key(Description="own")["KeyMetadata"]["KeyId"]
    kms.create_grant(KeyId=own, GranteePrincipal=f"arn:aws:iam::{account}:role/app", Operations=["Encrypt"])
    _, findings = scan()
    assert f"arn:aws:iam::{OUTSIDE}:role/partner" in message_of(findings, "kms-key-grants-external", "shared")
    assert status_of(findings, "kms-key-grants-external", "own") == "PASS"  # judged: no grant leaves the account


def test_grants_to_accounts_of_the_scanned_estate_pass():
    grants = [{"GrantId": "g1", "GranteePrincipal": "arn:aws:iam::222222222222:role/reader", "Operations": ["Decrypt"]},
              {"GrantId": "g2", "GranteePrincipal": "rds.us-east-1.amazonaws.com", "Operations": ["Decrypt"]},
              {"GrantId": "g3", "GranteePrincipal": "333333333333", "Operations": ["Encrypt"]}]
    found = external_grants(grants, "111111111111")
    assert [(g["account"], g["grant"]) for g in found] == [("222222222222", "g1"), ("333333333333", "g3")]
    assert external_grants(grants, "222222222222")[0]["account"] == "333333333333"


# -- RDS / Aurora ------------------------------------------------------------------------------------------

def test_rds_iam_auth_and_backups_against_the_companys_retention(aws, tmp_path):
    rds = aws.client("rds")
    base = dict(DBInstanceClass="db.t3.micro", MasterUsername="a", MasterUserPassword="password-123",
                AllocatedStorage=20)
    rds.create_db_instance(DBInstanceIdentifier="pg-password", Engine="postgres", BackupRetentionPeriod=7, **base)
    rds.create_db_instance(DBInstanceIdentifier="mysql-iam", Engine="mysql", BackupRetentionPeriod=30,
                           EnableIAMDatabaseAuthentication=True, **base)
    rds.create_db_instance(DBInstanceIdentifier="sqlserver", Engine="sqlserver-ex", **base)
    cluster = dict(MasterUsername="a", MasterUserPassword="password-123")
    rds.create_db_cluster(DBClusterIdentifier="aurora-password", Engine="aurora-postgresql",
                          BackupRetentionPeriod=14, **cluster)
    rds.create_db_cluster(DBClusterIdentifier="aurora-iam", Engine="aurora-mysql", BackupRetentionPeriod=35,
                          EnableIAMDatabaseAuthentication=True, **cluster)
    collection, findings = scan()
    assert "off (postgres)" in message_of(findings, "rds-instance-iam-auth", "pg-password")
    assert status_of(findings, "rds-instance-iam-auth", "mysql-iam") == "PASS"
    assert by_check(findings, "rds-instance-iam-auth", "sqlserver") == []  # SQL Server has no IAM auth
    assert "off (aurora-postgresql)" in message_of(findings, "rds-cluster-iam-auth", "aurora-password")
    assert status_of(findings, "rds-cluster-iam-auth", "aurora-iam") == "PASS"
    assert message_of(findings, "rds-instance-backup-retention", "pg-password") == \
        "backup retention 7 days, required 30"
    assert status_of(findings, "rds-instance-backup-retention", "mysql-iam") == "PASS"
    assert message_of(findings, "rds-cluster-backup-retention", "aurora-password") == \
        "backup retention 14 days, required 30"
    assert status_of(findings, "rds-cluster-backup-retention", "aurora-iam") == "PASS"
    weekly = evaluate(catalog_with(tmp_path, {"backup_retention_days": 7}), collection)
    assert status_of(weekly, "rds-instance-backup-retention", "pg-password") == "PASS"
    assert status_of(weekly, "rds-cluster-backup-retention", "aurora-password") == "PASS"


# -- EFS ---------------------------------------------------------------------------------------------------

def tls_deny(action="*", principal=None):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": principal or {"AWS": "*"}, "Action": action,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def test_efs_encryption_transport_and_backups(aws, tmp_path):
    efs = aws.client("efs")
    named = lambda n: [{"Key": "Name", "Value": n}]  # noqa: E731
    efs.create_file_system(CreationToken="1", Tags=named("plain"))
    efs.create_file_system(CreationToken="2", Encrypted=True, KmsKeyId=aws_managed_key("elasticfilesystem"),
                           Tags=named("aws-key"))
    good = efs.create_file_system(CreationToken="3", Encrypted=True, KmsKeyId=customer_key(aws), Backup=True,
                                  Tags=named("locked"))["FileSystemId"]
    efs.put_file_system_policy(FileSystemId=good, Policy=tls_deny())
    collection, findings = scan()
    assert "encryption at rest off;" in message_of(findings, "efs-encrypted-cmk", "plain")
    assert "(AWS-managed)" in message_of(findings, "efs-encrypted-cmk", "aws-key")
    assert status_of(findings, "efs-encrypted-cmk", "locked") == "PASS"
    assert "(policy: none)" in message_of(findings, "efs-tls-only-policy", "plain")
    assert status_of(findings, "efs-tls-only-policy", "locked") == "PASS"
    assert message_of(findings, "efs-automatic-backups", "plain") == "automatic backups DISABLED"
    assert status_of(findings, "efs-automatic-backups", "locked") == "PASS"
    any_key = evaluate(catalog_with(tmp_path, {"require_customer_managed_keys": False}), collection)
    assert status_of(any_key, "efs-encrypted-cmk", "aws-key") == "PASS"
    assert status_of(any_key, "efs-encrypted-cmk", "plain") == "FAIL"


def denies_insecure_transport(policy):
    return _file_system({"policy": policy}, {})["tls_only_policy"]


def test_efs_tls_policy_reading():
    assert denies_insecure_transport(tls_deny())
    assert denies_insecure_transport(tls_deny(action=["elasticfilesystem:ClientMount"], principal="*"))
    assert denies_insecure_transport(tls_deny(action="elasticfilesystem:Client*"))
    assert not denies_insecure_transport(tls_deny(action="elasticfilesystem:ClientWrite"))  # mounts still allowed
    assert not denies_insecure_transport(tls_deny(principal={"AWS": "arn:aws:iam::111111111111:root"}))
    allow = json.loads(tls_deny())
    allow["Statement"][0]["Effect"] = "Allow"
    assert not denies_insecure_transport(json.dumps(allow))
    assert not denies_insecure_transport(None) and not denies_insecure_transport("{oops")


# -- ElastiCache -----------------------------------------------------------------------------------------

def test_elasticache_replication_groups(aws, tmp_path):
    ec = aws.client("elasticache")
    common = dict(Engine="redis", CacheNodeType="cache.t3.micro")
    ec.create_replication_group(ReplicationGroupId="open-cache", ReplicationGroupDescription="d", **common)
    ec.create_replication_group(ReplicationGroupId="default-key", ReplicationGroupDescription="d",
                                AtRestEncryptionEnabled=True, TransitEncryptionEnabled=True,
                                TransitEncryptionMode="preferred", SnapshotRetentionLimit=1, **common)
    ec.create_replication_group(ReplicationGroupId="closed-cache", ReplicationGroupDescription="d",
                                AtRestEncryptionEnabled=True, KmsKeyId=customer_key(aws), TransitEncryptionEnabled=True,
                                AuthToken="test-token-0123456789", SnapshotRetentionLimit=7, **common)
    collection, findings = scan()
    assert "encryption at rest off;" in message_of(findings, "elasticache-at-rest-encryption", "open-cache")
    assert "on (AWS-owned key)" in message_of(findings, "elasticache-at-rest-encryption", "default-key")
    assert status_of(findings, "elasticache-at-rest-encryption", "closed-cache") == "PASS"
    assert "transit encryption off" in message_of(findings, "elasticache-transit-encryption", "open-cache")
    assert "mode preferred" in message_of(findings, "elasticache-transit-encryption", "default-key")
    assert status_of(findings, "elasticache-transit-encryption", "closed-cache") == "PASS"
    assert "no AUTH token" in message_of(findings, "elasticache-authentication", "open-cache")
    assert status_of(findings, "elasticache-authentication", "closed-cache") == "PASS"
    assert message_of(findings, "elasticache-snapshot-retention", "open-cache") == \
        "snapshot retention 0 days, required 1"
    assert status_of(findings, "elasticache-snapshot-retention", "default-key") == "PASS"
    weekly = evaluate(catalog_with(tmp_path, {"cache_snapshot_retention_days": 7,
                                              "require_customer_managed_keys": False}), collection)
    assert status_of(weekly, "elasticache-snapshot-retention", "default-key") == "FAIL"
    assert status_of(weekly, "elasticache-snapshot-retention", "closed-cache") == "PASS"
    assert status_of(weekly, "elasticache-at-rest-encryption", "default-key") == "PASS"


def test_elasticache_standalone_clusters(aws):
    ec = aws.client("elasticache")
    memcached = dict(Engine="memcached", CacheNodeType="cache.t3.micro", NumCacheNodes=1)
    ec.create_cache_cluster(CacheClusterId="plain-memcached", **memcached)
    ec.create_cache_cluster(CacheClusterId="tls-memcached", TransitEncryptionEnabled=True, **memcached)
    _, findings = scan()
    assert "transit encryption off (memcached" in message_of(
        findings, "elasticache-cluster-transit-encryption", "plain-memcached")
    assert status_of(findings, "elasticache-cluster-transit-encryption", "tls-memcached") == "PASS"


def _stubbed_run(stubs: dict, rtype):
    """Run one resource type against Stubber-backed clients ({service: client}) as account 111111111111."""
    clients = ClientCache(pool=2)
    for service, client in stubs.items():
        clients._clients[(service, "us-east-1")] = client
    return Runner(workers=1, clients=clients).run([Target("111111111111", "a", object())], ["us-east-1"],
                                                  [resource_types()[rtype]])


def test_elasticache_rbac_user_groups_count_as_authentication_and_members_are_not_judged_twice():
    """moto has no user groups (DescribeUserGroups is missing) and does not list a replication group's
    member clusters; the Stubber answers as AWS does."""
    client = boto3.client("elasticache", region_name="us-east-1")
    arn = "arn:aws:elasticache:us-east-1:111111111111:{}".format
    stub = Stubber(client)
    stub.add_response("describe_replication_groups", {"ReplicationGroups": [{
        "ReplicationGroupId": "rbac", "ARN": arn("replicationgroup:rbac"), "AtRestEncryptionEnabled": True,
        "TransitEncryptionEnabled": True, "TransitEncryptionMode": "required", "AuthTokenEnabled": False,
        "UserGroupIds": ["app-users"], "SnapshotRetentionLimit": 5}]}, {})
    stub.add_response("list_tags_for_resource", {"TagList": [{"Key": "SOC2_Control", "Value": "CC6.1"}]},
                      {"ResourceName": arn("replicationgroup:rbac")})
    with stub:
        collection = _stubbed_run({"elasticache": client}, "aws.elasticache.replication_group")
    stub.assert_no_pending_responses()
    findings = evaluate(load_catalog(), collection)
    assert collection.records[0].tags == {"SOC2_Control": "CC6.1"}
    assert status_of(findings, "elasticache-authentication", "rbac") == "PASS"
    assert status_of(findings, "elasticache-transit-encryption", "rbac") == "PASS"

    stub = Stubber(client)
    stub.add_response("describe_cache_clusters", {"CacheClusters": [
        {"CacheClusterId": "rbac-001", "ARN": arn("cluster:rbac-001"), "ReplicationGroupId": "rbac",
         "Engine": "redis", "TransitEncryptionEnabled": False}]}, {})
    with stub:
        collection = _stubbed_run({"elasticache": client}, "aws.elasticache.cache_cluster")
    stub.assert_no_pending_responses()  # a member's tags are not read: the group's are
    assert by_check(evaluate(load_catalog(), collection), "elasticache-cluster-transit-encryption") == []


# -- Redshift -----------------------------------------------------------------------------------------------

def test_redshift_clusters(aws, tmp_path):
    rs = aws.client("redshift")
    common = dict(NodeType="dc2.large", ClusterType="single-node", MasterUsername="a", MasterUserPassword="Passw0rd1")
    rs.create_cluster(ClusterIdentifier="open-warehouse", PubliclyAccessible=True, **common)
    rs.create_cluster(ClusterIdentifier="closed-warehouse", Encrypted=True, KmsKeyId=customer_key(aws),
                      AutomatedSnapshotRetentionPeriod=35, PubliclyAccessible=False, **common)
    rs.enable_logging(ClusterIdentifier="closed-warehouse", BucketName="logs")
    _, findings = scan()
    assert "encryption at rest off;" in message_of(findings, "redshift-encrypted-cmk", "open-warehouse")
    assert status_of(findings, "redshift-encrypted-cmk", "closed-warehouse") == "PASS"
    assert "publicly accessible at open-warehouse." in message_of(findings, "redshift-not-public", "open-warehouse")
    assert status_of(findings, "redshift-not-public", "closed-warehouse") == "PASS"
    assert message_of(findings, "redshift-snapshot-retention", "open-warehouse") == \
        "automated snapshot retention 1 days, required 30"
    assert status_of(findings, "redshift-snapshot-retention", "closed-warehouse") == "PASS"
    assert message_of(findings, "redshift-audit-logging", "open-warehouse") == "audit logging is off"
    assert status_of(findings, "redshift-audit-logging", "closed-warehouse") == "PASS"
    # moto's parameter groups always hold require_ssl=false (see the Stubber test below)
    assert "parameter group default.redshift-1.0" in message_of(findings, "redshift-require-ssl", "open-warehouse")


def test_redshift_require_ssl_read_from_every_page_of_the_parameter_group():
    """moto cannot modify a cluster parameter group; the Stubber answers as AWS does, over two pages."""
    client = boto3.client("redshift", region_name="us-east-1")
    stub = Stubber(client)
    clusters = [{"ClusterIdentifier": name, "Encrypted": False, "PubliclyAccessible": False,
                 "AutomatedSnapshotRetentionPeriod": 35,
                 "ClusterParameterGroups": [{"ParameterGroupName": group}]}
                for name, group in (("tls-warehouse", "tls-only"), ("lax-warehouse", "lax"))]
    stub.add_response("describe_clusters", {"Clusters": clusters}, {})
    stub.add_response("describe_cluster_parameters", {
        "Parameters": [{"ParameterName": "datestyle", "ParameterValue": "ISO, MDY"}], "Marker": "m"},
        {"ParameterGroupName": "tls-only"})
    stub.add_response("describe_cluster_parameters", {
        "Parameters": [{"ParameterName": "require_ssl", "ParameterValue": "TRUE"}]},
        {"ParameterGroupName": "tls-only", "Marker": "m"})
    stub.add_response("describe_logging_status", {"LoggingEnabled": True}, {"ClusterIdentifier": "tls-warehouse"})
    stub.add_response("describe_cluster_parameters", {
        "Parameters": [{"ParameterName": "require_ssl", "ParameterValue": "false"}]}, {"ParameterGroupName": "lax"})
    stub.add_response("describe_logging_status", {"LoggingEnabled": False}, {"ClusterIdentifier": "lax-warehouse"})
    with stub:
        collection = _stubbed_run({"redshift": client}, "aws.redshift.cluster")
    stub.assert_no_pending_responses()
    findings = evaluate(load_catalog(), collection)
    assert status_of(findings, "redshift-require-ssl", "tls-warehouse") == "PASS"
    assert message_of(findings, "redshift-require-ssl", "lax-warehouse") == \
        "require_ssl is not true in parameter group lax"


# -- OpenSearch --------------------------------------------------------------------------------------------

def test_opensearch_domains(aws, tmp_path):
    search = aws.client("opensearch")
    search.create_domain(DomainName="open-search")
    search.create_domain(DomainName="tls10-search", DomainEndpointOptions={
        "EnforceHTTPS": True, "TLSSecurityPolicy": "Policy-Min-TLS-1-0-2019-07"})
    search.create_domain(
        DomainName="closed-search", EncryptionAtRestOptions={"Enabled": True, "KmsKeyId": customer_key(aws)},
        NodeToNodeEncryptionOptions={"Enabled": True}, VPCOptions={"SubnetIds": ["subnet-12345678"]},
        DomainEndpointOptions={"EnforceHTTPS": True, "TLSSecurityPolicy": "Policy-Min-TLS-1-2-PFS-2023-10"},
        LogPublishingOptions={"AUDIT_LOGS": {"Enabled": True, "CloudWatchLogsLogGroupArn":
                                             "arn:aws:logs:us-east-1:123456789012:log-group:audit"}})
    collection, findings = scan()
    assert "encryption at rest off;" in message_of(findings, "opensearch-encrypted-cmk", "open-search")
    assert status_of(findings, "opensearch-encrypted-cmk", "closed-search") == "PASS"
    assert message_of(findings, "opensearch-node-to-node-encryption", "open-search") == "node-to-node encryption is off"
    assert status_of(findings, "opensearch-node-to-node-encryption", "closed-search") == "PASS"
    assert "HTTPS not enforced" in message_of(findings, "opensearch-https-tls12", "open-search")
    assert "TLS policy Policy-Min-TLS-1-0-2019-07" in message_of(findings, "opensearch-https-tls12", "tls10-search")
    assert status_of(findings, "opensearch-https-tls12", "closed-search") == "PASS"
    assert "public endpoint open-search." in message_of(findings, "opensearch-in-vpc", "open-search")
    assert status_of(findings, "opensearch-in-vpc", "closed-search") == "PASS"
    assert message_of(findings, "opensearch-audit-logs", "open-search") == "audit logs are not published"
    assert status_of(findings, "opensearch-audit-logs", "closed-search") == "PASS"
    pfs_only = evaluate(catalog_with(tmp_path, {"opensearch_tls_policies": ["Policy-Min-TLS-1-2-PFS-2023-10"]}),
                        collection)
    assert status_of(pfs_only, "opensearch-https-tls12", "closed-search") == "PASS"


def test_no_secret_reaches_a_record(aws):
    aws.client("elasticache").create_replication_group(
        ReplicationGroupId="tokened", ReplicationGroupDescription="d", Engine="redis", CacheNodeType="cache.t3.micro",
        TransitEncryptionEnabled=True, AuthToken="super-secret-token-0123")
    aws.client("redshift").create_cluster(ClusterIdentifier="pw", NodeType="dc2.large", ClusterType="single-node",
                                          MasterUsername="a", MasterUserPassword="Sup3r-secret-pw")
    collection, _ = scan()
    text = json.dumps([r.data for r in collection.records], default=str)
    assert "super-secret-token-0123" not in text and "Sup3r-secret-pw" not in text
