"""Checks the demo estate cannot plant (time, root state, clusters, org trails), under moto."""
from freezegun import freeze_time

from tests.conftest import by_check, collect_current, status_of


def test_access_key_age(aws):
    iam = aws.client("iam")
    for user in ("old-key", "new-key"):
        iam.create_user(UserName=user)
    with freeze_time("2025-01-01"):
        iam.create_access_key(UserName="old-key")
    iam.create_access_key(UserName="new-key")
    _, findings = collect_current()
    assert status_of(findings, "iam-access-key-age", "old-key") == "FAIL"
    assert status_of(findings, "iam-access-key-age", "new-key") == "PASS"


def test_inactive_old_key_is_fine(aws):
    iam = aws.client("iam")
    iam.create_user(UserName="retired")
    with freeze_time("2025-01-01"):
        key = iam.create_access_key(UserName="retired")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="retired", AccessKeyId=key, Status="Inactive")
    _, findings = collect_current()
    assert status_of(findings, "iam-access-key-age", "retired") == "PASS"


def test_root_mfa_and_root_keys(aws):
    from moto.iam.models import iam_backends
    _, findings = collect_current()
    assert status_of(findings, "iam-root-mfa", "account") == "FAIL"
    assert status_of(findings, "iam-root-no-access-keys", "account") == "PASS"
    backend = iam_backends["123456789012"]["global"].account_summary
    backend._account_mfa_enabled = 1  # moto has no API for root MFA or root keys
    backend._account_access_keys_present = 1
    _, findings = collect_current()
    assert status_of(findings, "iam-root-mfa", "account") == "PASS"
    assert status_of(findings, "iam-root-no-access-keys", "account") == "FAIL"


def test_kms_rotation_older_than_a_year(aws):
    kms = aws.client("kms")
    with freeze_time("2024-06-01"):
        stale = kms.create_key(Description="stale")["KeyMetadata"]["KeyId"]
        kms.enable_key_rotation(KeyId=stale)
        kms.rotate_key_on_demand(KeyId=stale)
        fresh_old = kms.create_key(Description="rotated-recently")["KeyMetadata"]["KeyId"]
        kms.enable_key_rotation(KeyId=fresh_old)
    kms.rotate_key_on_demand(KeyId=fresh_old)
    new = kms.create_key(Description="new-key")["KeyMetadata"]["KeyId"]
    kms.enable_key_rotation(KeyId=new)
    kms.create_key(Description="asymmetric", KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    _, findings = collect_current()
    assert status_of(findings, "kms-cmk-rotation", "stale") == "FAIL"
    assert status_of(findings, "kms-cmk-rotation", "rotated-recently") == "PASS"
    assert status_of(findings, "kms-cmk-rotation", "new-key") == "PASS"
    assert by_check(findings, "kms-cmk-rotation", "asymmetric") == []  # rotation does not apply
    assert status_of(findings, "kms-key-pending-deletion", "new-key") == "PASS"


def test_rds_cluster_violations(aws):
    rds = aws.client("rds")
    rds.create_db_cluster(DBClusterIdentifier="weak-cluster", Engine="aurora-postgresql", MasterUsername="u",
                          MasterUserPassword="password-1234", BackupRetentionPeriod=1, DeletionProtection=False)
    _, findings = collect_current()
    for check in ("rds-cluster-encrypted-cmk", "rds-cluster-backup-retention", "rds-cluster-deletion-protection"):
        assert status_of(findings, check, "weak-cluster") == "FAIL", check
    assert status_of(findings, "rds-cluster-not-public", "weak-cluster") == "PASS"


def test_rds_cluster_public(aws):
    rds = aws.client("rds")
    rds.create_db_cluster(DBClusterIdentifier="open-cluster", Engine="mysql", MasterUsername="u",
                          MasterUserPassword="password-1234", PubliclyAccessible=True, DBClusterInstanceClass="db.m5d.large",
                          AllocatedStorage=100, StorageType="io1", Iops=1000)
    _, findings = collect_current()
    assert status_of(findings, "rds-cluster-not-public", "open-cluster") == "FAIL"


def test_aws_managed_key_is_not_cmk():
    """moto reports alias/aws/rds as a CUSTOMER key, so this runs on the record real AWS returns."""
    from collectors.rds import _encryption
    record = _encryption({"StorageEncrypted": True, "KmsKeyId": "arn:aws:kms:us-east-1:1:key/x",
                          "kms_key": {"KeyManager": "AWS"}}, {})
    assert record["encrypted_with_cmk"] is False
    record = _encryption({"StorageEncrypted": True, "kms_key": {"KeyManager": "CUSTOMER"}}, {})
    assert record["encrypted_with_cmk"] is True
    assert _encryption({"StorageEncrypted": False, "kms_key": None}, {})["encrypted_with_cmk"] is False


def test_org_trail_covers_member_account():
    """A member account with no trail of its own passes when the organisation trail qualifies."""
    from auditbook.catalog.model import load_catalog
    from auditbook.collect.records import Collection, Record, Scope
    from auditbook.evaluate.evaluator import evaluate
    good = {"IsMultiRegionTrail": True, "is_logging": True, "LogFileValidationEnabled": True, "KmsKeyId": "k",
            "IsOrganizationTrail": True, "S3BucketName": "b"}
    col = Collection(records=[Record("aws.cloudtrail.trail", "111111111111", "us-east-1", "t", "arn:t", good,
                                     scope_region="us-east-1")],
                     scopes=[Scope("111111111111", "us-east-1", "aws.cloudtrail.trail"),
                             Scope("222222222222", "us-east-1", "aws.cloudtrail.trail")])
    findings = {f.account: f.status for f in evaluate(load_catalog(), col) if f.check == "cloudtrail-multi-region-logging"}
    assert findings == {"111111111111": "PASS", "222222222222": "PASS"}
    col.records[0].data = dict(good, IsOrganizationTrail=False)
    findings = {f.account: f.status for f in evaluate(load_catalog(), col) if f.check == "cloudtrail-multi-region-logging"}
    assert findings == {"111111111111": "PASS", "222222222222": "FAIL"}


def test_subnet_tier_from_routes_without_tag(aws):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    routed = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", TagSpecifications=[
        {"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "routed-public"}]}])["Subnet"]["SubnetId"]
    rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=rt, SubnetId=routed)
    ec2.modify_subnet_attribute(SubnetId=routed, MapPublicIpOnLaunch={"Value": True})
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.2.0/24", TagSpecifications=[
        {"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "isolated"}]}])
    collection, findings = collect_current()
    tiers = {r.name: (r.data["tier"], r.data["tier_source"]) for r in collection.records if r.type == "aws.ec2.subnet"}
    assert tiers["routed-public"] == ("public", "routes") and tiers["isolated"] == ("private", "routes")
    assert by_check(findings, "subnet-private-no-public-ip", "routed-public") == []
    assert status_of(findings, "subnet-private-no-public-ip", "isolated") == "PASS"
    assert status_of(findings, "subnet-private-egress-via-nat", "isolated") == "PASS"


def test_audit_bucket_versioning_and_long_lifecycle_passes(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="seven-year-logs")
    s3.put_bucket_versioning(Bucket="seven-year-logs", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket="seven-year-logs", LifecycleConfiguration={"Rules": [{
        "ID": "r", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 2557}}]})
    s3.create_bucket(Bucket="not-a-log-bucket")
    aws.client("cloudtrail").create_trail(Name="main-trail", S3BucketName="seven-year-logs")
    _, findings = collect_current()
    assert status_of(findings, "s3-audit-log-retention", "seven-year-logs") == "PASS"
    assert by_check(findings, "s3-audit-log-retention", "not-a-log-bucket") == []


def test_ipv6_world_ingress_fails(aws):
    ec2 = aws.client("ec2")
    sg = ec2.create_security_group(GroupName="v6-open", Description="d")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    _, findings = collect_current()
    assert status_of(findings, "ec2-sg-no-public-ingress", "v6-open") == "FAIL"


def test_a_failing_finding_names_the_offending_rule(aws):
    """Issue 14 §4 / 15 §3: not "not met: <title>" alone, but what the security group holds — in the
    check's own words, else (a check without a message) what its expression found."""
    ec2 = aws.client("ec2")
    sg = ec2.create_security_group(GroupName="ssh-open", Description="d")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    _, findings = collect_current()
    [finding] = by_check(findings, "ec2-sg-no-public-ingress", "ssh-open")
    assert finding.status == "FAIL" and finding.message == "tcp 22 open to 0.0.0.0/0 (allowed from the internet: tcp 443)"


def test_a_check_without_a_message_says_what_its_expression_found(aws, tmp_path):
    from auditbook.catalog.model import load_catalog
    from auditbook.evaluate.evaluator import evaluate
    from tests.catalog_edits import check_of, write_catalog
    ec2 = aws.client("ec2")
    sg = ec2.create_security_group(GroupName="ssh-open", Description="d")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    collection, _ = collect_current()
    catalog = load_catalog(write_catalog(tmp_path, lambda raw: check_of(raw, "ec2-sg-no-public-ingress").pop("message")))
    [finding] = [f for f in evaluate(catalog, collection) if f.check == "ec2-sg-no-public-ingress"
                 and f.resource_name == "ssh-open"]
    assert finding.status == "FAIL" and "found public_ingress[?…] = [" in finding.message
    assert '"from_port": 22' in finding.message and "0.0.0.0/0" in finding.message
    assert finding.message.endswith("(expected length == 0)")


def test_a_gap_in_a_type_read_through_values_spares_records_the_applies_filter_leaves_out(tmp_path):
    """A check whose expect reads values() of a type with an evidence gap is ERROR on the records it is
    for — but a record its own `applies` (reading no gapped type) leaves out is not applicable, never an
    ERROR: a refused Shield read does not make every load balancer ERROR when Shield is not required."""
    import yaml

    from auditbook.catalog.model import load_catalog
    from auditbook.collect.records import Collection, Gap, Record, Scope
    from auditbook.evaluate.evaluator import evaluate
    from tests.catalog_edits import write_catalog
    alb = Record("aws.elbv2.load_balancer", "111111111111", "us-east-1", "web", "arn:alb/web",
                 {"LoadBalancerArn": "arn:alb/web", "Type": "application", "Scheme": "internet-facing"},
                 scope_region="us-east-1", name="web")
    refused = Gap("111111111111", "global", "aws.shield.account", "shield:DescribeSubscription", "AccessDenied", "no")
    collection = Collection(records=[alb], scopes=[Scope("111111111111", "us-east-1", "aws.elbv2.load_balancer"),
                                                   Scope("111111111111", "global", "aws.shield.account", refused)])
    shield = [f for f in evaluate(load_catalog(), collection) if f.check == "shield-alb-protected"]
    assert shield == []  # shield_advanced_required is false: not applicable, whatever the gap
    path = write_catalog(tmp_path)
    (tmp_path / "company-parameters.yaml").write_text(yaml.safe_dump({"version": 1, "parameters": {
        "shield_advanced_required": True}}))
    [finding] = [f for f in evaluate(load_catalog(path), collection) if f.check == "shield-alb-protected"]
    assert finding.status == "ERROR" and "depends on aws.shield.account" in finding.message
