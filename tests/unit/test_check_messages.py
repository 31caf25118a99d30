"""Issue 15 §2 and §3: every check says what is wrong with the offending value (its `message:`), and the
thresholds of the existing checks are named parameters a company can set — a FAIL names the value it
found and the value in force, and the company's file changes both the verdict and the message."""
import datetime as dt
import json
import re

import pytest
import yaml
from freezegun import freeze_time

from auditbook.catalog.expressions import AuditFunctions, options
from auditbook.catalog.messages import compile_template
from auditbook.catalog.model import CatalogError, load_catalog
from auditbook.evaluate.evaluator import evaluate
from auditbook.evaluate.observed import rendered
from auditbook.plugins import resource_types
from tests.catalog_edits import write_catalog
from tests.conftest import by_check, collect_current, status_of

UNRESOLVED = "${"
# the checks that predate issue 15 (their messages are written against AWS's sparsest answers)
EXISTING_CHECKS = """
    acm-certificate-not-expiring backup-plan-exists backup-plan-retention backup-vault-lock
    cloudtrail-cloudwatch-logs cloudtrail-multi-region-logging cloudtrail-s3-data-events-audit-bucket
    config-global-resources config-recording-all-resources cw-alarm-cloudtrail-changes
    cw-alarm-console-login-without-mfa cw-alarm-iam-policy-changes cw-alarm-nacl-changes cw-alarm-root-usage
    cw-alarm-security-group-changes cw-alarm-unauthorized-api-calls dynamodb-kms-encryption dynamodb-pitr
    ebs-encryption-by-default ebs-volume-encrypted ec2-ami-not-public ec2-default-sg-no-rules
    ec2-instance-imdsv2 ec2-nacl-no-public-admin-ports ec2-sg-no-public-ingress ec2-snapshot-not-public
    eks-audit-logging eks-secrets-encryption elb-access-logs elb-internet-facing-waf guardduty-enabled
    iam-access-key-age iam-console-user-mfa iam-credentials-unused-45-days iam-password-policy
    iam-policy-no-full-admin iam-root-mfa iam-root-no-access-keys iam-user-no-admin-policy
    iam-user-no-inline-policies kms-key-pending-deletion logs-kms-encrypted logs-retention-365
    rds-cluster-deletion-protection rds-cluster-encrypted-cmk rds-cluster-not-public
    rds-cluster-snapshot-not-public rds-instance-auto-minor-upgrade rds-instance-deletion-protection
    rds-instance-encrypted-cmk rds-instance-multi-az-production rds-instance-not-public
    rds-instance-storage-autoscaling rds-snapshot-not-public s3-access-logging-sensitive
    s3-account-public-access-block s3-acls-disabled s3-audit-log-retention s3-bucket-public-access-block
    s3-default-encryption s3-tls-only-policy s3-versioning secretsmanager-rotation subnet-private-no-public-ip
    vpc-flow-logs-enabled kms-cmk-rotation ec2-sg-egress-restricted elb-listener-tls12
    subnet-private-egress-via-nat iam-role-external-trust rds-instance-backup-retention rds-cluster-backup-retention
""".split()


def _message(findings, check, name):
    [finding] = by_check(findings, check, name)
    assert finding.status == "FAIL", (check, name, finding.status, finding.message)
    return finding.message


def test_every_check_of_the_bundled_catalog_has_a_message():
    missing = [c.id for c in load_catalog().checks if not c.message]
    assert missing == []


def test_no_parameter_reference_is_left_unresolved():
    for check in load_catalog().checks:
        for text in (check.title, check.remediation, check.message or "", check.expect or "", check.applies or ""):
            assert UNRESOLVED not in text, (check.id, text)


def _sparsest(rtype):
    """A record of the type as AWS's sparsest answer leaves it: its id alone, then normalised."""
    raw = {rtype.id: "x"} if rtype.id and re.fullmatch(r"\w+", rtype.id) else {}
    return rtype.normalise(raw, {}) if rtype.normalise else raw


@pytest.mark.parametrize("cid", EXISTING_CHECKS)
def test_each_existing_checks_message_renders_on_the_sparsest_record(cid):
    """Absent fields, null lists and empty accounts still give a sentence, never "(cannot be shown …)"."""
    check = next(c for c in load_catalog().checks if c.id == cid)
    record = _sparsest(resource_types()[check.resource])
    data = {"resources": [record], "all": [record]} if check.scope == "account" else record
    opts = options(AuditFunctions(dt.datetime.now(dt.timezone.utc), lambda rtype, field: []))
    for each in (data, {"resources": [], "all": []} if check.scope == "account" else {}):
        message = rendered(compile_template(check.message), each, opts)
        assert "cannot be shown" not in message and not message.startswith("not met:"), (cid, message)


def test_thresholds_of_the_existing_checks_are_parameters():
    catalog = load_catalog()
    reads = {c.id: c.parameters for c in catalog.checks}
    assert reads["iam-access-key-age"] == ["access_key_max_age_days"]
    assert reads["iam-credentials-unused-45-days"] == ["credentials_unused_max_days"]
    assert reads["iam-password-policy"] == ["password_min_length", "password_reuse_prevention"]
    assert reads["acm-certificate-not-expiring"] == ["certificate_min_days_left"]
    assert reads["logs-retention-365"] == ["log_retention_min_days"]
    assert reads["secretsmanager-rotation"] == ["secret_rotation_max_days"]
    assert reads["s3-audit-log-retention"] == ["audit_log_retention_days"]
    assert reads["backup-plan-retention"] == ["backup_retention_days"]
    assert reads["ec2-sg-no-public-ingress"] == ["internet_ingress_tcp_ports"]
    assert reads["rds-instance-encrypted-cmk"] == ["require_customer_managed_keys"]
    # the value in force is in the title the packet prints beside the check
    titles = {c.id: c.title for c in catalog.checks}
    assert titles["iam-access-key-age"] == "Active access keys are at most 90 days old"
    assert titles["backup-plan-retention"] == "Backup plan rules keep recovery points at least 30 days"


def test_security_group_message_names_protocol_port_and_source(aws):
    ec2 = aws.client("ec2")
    open_sg = ec2.create_security_group(GroupName="open", Description="d")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=open_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "udp", "FromPort": 1000, "ToPort": 2000, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    all_sg = ec2.create_security_group(GroupName="all-traffic", Description="d")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=all_sg, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    https_sg = ec2.create_security_group(GroupName="https-only", Description="d")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=https_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    _, findings = collect_current()
    assert _message(findings, "ec2-sg-no-public-ingress", "open") == \
        "tcp 22 open to 0.0.0.0/0, udp 1000-2000 open to ::/0 (allowed from the internet: tcp 443)"
    assert _message(findings, "ec2-sg-no-public-ingress", "all-traffic").startswith("all traffic open to 0.0.0.0/0")
    assert status_of(findings, "ec2-sg-no-public-ingress", "https-only") == "PASS"


def test_log_retention_message_gives_days_and_requirement(aws):
    logs = aws.client("logs")
    for name, days in (("short", 30), ("long", 400), ("forever", None)):
        logs.create_log_group(logGroupName=name)
        if days:
            logs.put_retention_policy(logGroupName=name, retentionInDays=days)
    _, findings = collect_current()
    assert _message(findings, "logs-retention-365", "short") == \
        "retention 30 days, required at least 365 (or never expire)"
    assert status_of(findings, "logs-retention-365", "long") == "PASS"
    assert status_of(findings, "logs-retention-365", "forever") == "PASS"


def test_access_key_age_message_names_the_key_and_its_age(aws):
    iam = aws.client("iam")
    iam.create_user(UserName="old-key")
    with freeze_time(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=120)):
        key = iam.create_access_key(UserName="old-key")["AccessKey"]["AccessKeyId"]
    iam.create_user(UserName="new-key")
    iam.create_access_key(UserName="new-key")
    _, findings = collect_current()
    assert _message(findings, "iam-access-key-age", "old-key") == \
        f"access key {key} is 120 days old, at most 90 allowed"
    assert status_of(findings, "iam-access-key-age", "new-key") == "PASS"


def test_unused_credentials_message_names_the_credential(aws):
    iam = aws.client("iam")
    with freeze_time(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=60)):
        iam.create_user(UserName="stale")
        key = iam.create_access_key(UserName="stale")["AccessKey"]["AccessKeyId"]
    _, findings = collect_current()
    assert _message(findings, "iam-credentials-unused-45-days", "stale") == \
        f"access key {key} unused for 60 days (never used), at most 45 allowed"


def test_certificate_message_gives_days_left(aws):
    from auditbook.demo.estate_network import self_signed
    acm = aws.client("acm")
    for domain, days in (("soon.example.com", 10), ("later.example.com", 200)):
        cert, key = self_signed(domain, days)
        acm.import_certificate(Certificate=cert, PrivateKey=key)
    _, findings = collect_current()
    message = _message(findings, "acm-certificate-not-expiring", "soon.example.com")
    assert message.startswith("certificate expires ")
    assert message.endswith(": 9 days left, more than 30 required") or \
        message.endswith(": 10 days left, more than 30 required"), message
    assert status_of(findings, "acm-certificate-not-expiring", "later.example.com") == "PASS"


def test_secret_rotation_message_gives_state_and_days(aws):
    sm = aws.client("secretsmanager")
    with freeze_time(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=100)):
        sm.create_secret(Name="never-rotated", SecretString="not-a-real-secret")
    _, findings = collect_current()
    assert _message(findings, "secretsmanager-rotation", "never-rotated") == \
        "automatic rotation off; 100 days since the last rotation (or creation), at most 90 allowed"


def _plan(backup, name, days):
    backup.create_backup_plan(BackupPlan={"BackupPlanName": name, "Rules": [{
        "RuleName": f"{name}-rule", "TargetBackupVaultName": "v", "Lifecycle": {"DeleteAfterDays": days}}]})


def test_backup_plan_message_and_the_seeds_30_days(aws):
    """The seed keeps 30 days: a 30-day plan passes (the old fixed 35 failed it), 7 days fails."""
    backup = aws.client("backup")
    backup.create_backup_vault(BackupVaultName="v")
    _plan(backup, "weekly", 7)
    _plan(backup, "monthly", 30)
    _, findings = collect_current()
    assert _message(findings, "backup-plan-retention", "weekly") == \
        "rule weekly-rule keeps recovery points 7 days, required at least 30"
    assert status_of(findings, "backup-plan-retention", "monthly") == "PASS"


def test_password_policy_message_names_each_weak_field(aws):
    iam = aws.client("iam")
    _, findings = collect_current()
    assert _message(findings, "iam-password-policy", "account").startswith("password policy: no password policy is set")
    iam.update_account_password_policy(MinimumPasswordLength=8, RequireSymbols=False, RequireNumbers=True,
                                       RequireUppercaseCharacters=True, RequireLowercaseCharacters=True,
                                       PasswordReusePrevention=5)
    _, findings = collect_current()
    assert _message(findings, "iam-password-policy", "account") == (
        "password policy: minimum length 8, symbols optional, reuse prevention 5 "
        "(required: length 14, all 4 character classes, reuse prevention 24)")
    iam.update_account_password_policy(MinimumPasswordLength=14, RequireSymbols=True, RequireNumbers=True,
                                       RequireUppercaseCharacters=True, RequireLowercaseCharacters=True,
                                       PasswordReusePrevention=24)
    _, findings = collect_current()
    assert status_of(findings, "iam-password-policy", "account") == "PASS"


def test_s3_public_access_block_message_lists_the_settings_off(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="half-blocked")
    s3.put_public_access_block(Bucket="half-blocked", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False, "RestrictPublicBuckets": False})
    s3.create_bucket(Bucket="unconfigured")
    _, findings = collect_current()
    assert _message(findings, "s3-bucket-public-access-block", "half-blocked") == \
        "bucket-level Block Public Access settings off: BlockPublicPolicy, RestrictPublicBuckets"
    assert _message(findings, "s3-bucket-public-access-block", "unconfigured") == (
        "bucket-level Block Public Access settings off: BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, "
        "RestrictPublicBuckets")


def test_tls_only_message_tells_a_missing_policy_from_an_insufficient_one(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="no-policy")
    s3.create_bucket(Bucket="allow-policy")
    s3.put_bucket_policy(Bucket="allow-policy", Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::allow-policy/*"}]}))
    _, findings = collect_current()
    tail = " no Deny for all principals on s3:* when aws:SecureTransport is false"
    assert _message(findings, "s3-tls-only-policy", "no-policy") == "no bucket policy, so" + tail
    assert _message(findings, "s3-tls-only-policy", "allow-policy") == "the bucket policy has" + tail


def _company_values(tmp_path, values: dict):
    """A catalog copy whose company parameters file sets `values`."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_catalog(tmp_path)
    name = yaml.safe_load(path.read_text())["parameters_file"]
    (tmp_path / name).write_text(yaml.safe_dump({"version": 1, "parameters": values}))
    return load_catalog(path)


def test_company_parameters_change_verdict_and_message(aws, tmp_path):
    logs = aws.client("logs")
    for name, days in (("month", 30), ("week", 7)):
        logs.create_log_group(logGroupName=name)
        logs.put_retention_policy(logGroupName=name, retentionInDays=days)
    collection, findings = collect_current()
    assert status_of(findings, "logs-retention-365", "month") == "FAIL"
    catalog = _company_values(tmp_path, {"log_retention_min_days": 30, "backup_retention_days": 30})
    assert catalog.parameters["log_retention_min_days"].source == "company-parameters.yaml"
    findings = evaluate(catalog, collection)
    assert status_of(findings, "logs-retention-365", "month") == "PASS"
    assert _message(findings, "logs-retention-365", "week") == "retention 7 days, required at least 30 (or never expire)"
    title = next(c.title for c in catalog.checks if c.id == "logs-retention-365")
    assert title == "Log groups keep events at least 30 days (or never expire)"


def test_company_ports_list_opens_a_port_and_says_so(aws, tmp_path):
    ec2 = aws.client("ec2")
    sg = ec2.create_security_group(GroupName="mail", Description="d")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 25, "ToPort": 25, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    collection, findings = collect_current()
    assert _message(findings, "ec2-sg-no-public-ingress", "mail").startswith("tcp 25 open to 0.0.0.0/0")
    allowed = evaluate(_company_values(tmp_path / "a", {"internet_ingress_tcp_ports": ["25", "443"]}), collection)
    assert status_of(allowed, "ec2-sg-no-public-ingress", "mail") == "PASS"
    closed = evaluate(_company_values(tmp_path / "b", {"internet_ingress_tcp_ports": []}), collection)
    assert _message(closed, "ec2-sg-no-public-ingress", "mail") == \
        "tcp 25 open to 0.0.0.0/0, tcp 443 open to 0.0.0.0/0 (allowed from the internet: tcp (none))"


def test_rds_any_encryption_passes_when_the_company_does_not_require_cmk(aws, tmp_path):
    rds, kms = aws.client("rds"), aws.client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    common = dict(DBInstanceClass="db.t3.micro", Engine="postgres", MasterUsername="a",
                  MasterUserPassword="password-123", AllocatedStorage=20)
    rds.create_db_instance(DBInstanceIdentifier="plain", StorageEncrypted=False, **common)
    rds.create_db_instance(DBInstanceIdentifier="cmk", StorageEncrypted=True, KmsKeyId=key, **common)
    collection, findings = collect_current()
    assert _message(findings, "rds-instance-encrypted-cmk", "plain") == \
        "storage not encrypted (customer-managed key required: true)"
    assert status_of(findings, "rds-instance-encrypted-cmk", "cmk") == "PASS"
    # an AWS-managed key: fails while a customer-managed key is required, passes when the company drops it
    record = next(r for r in collection.records if r.type == "aws.rds.instance" and r.id == "cmk")
    record.data["kms_key_manager"], record.data["encrypted_with_cmk"] = "AWS", False
    findings = evaluate(load_catalog(), collection)
    assert _message(findings, "rds-instance-encrypted-cmk", "cmk").startswith("storage encrypted with key ")
    assert _message(findings, "rds-instance-encrypted-cmk", "cmk").endswith(
        " managed by AWS (customer-managed key required: true)")
    relaxed = evaluate(_company_values(tmp_path, {"require_customer_managed_keys": False}), collection)
    assert status_of(relaxed, "rds-instance-encrypted-cmk", "cmk") == "PASS"
    assert status_of(relaxed, "rds-instance-encrypted-cmk", "plain") == "FAIL"


@pytest.mark.parametrize("name,value,reason", [
    ("password_reuse_prevention", 30, "must be at most 24 (value 30)"),
    ("access_key_max_age_days", "ninety", "must be a whole number"),
    ("internet_ingress_tcp_ports", "443", "must be a list"),
])
def test_a_bad_company_value_is_refused_naming_file_field_and_value(tmp_path, name, value, reason):
    with pytest.raises(CatalogError) as exc:
        _company_values(tmp_path, {name: value})
    assert f"company-parameters.yaml: field parameters.{name}: {reason}" in str(exc.value)
