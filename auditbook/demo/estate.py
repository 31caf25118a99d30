"""The simulated organisation for `auditbook demo`: four accounts, two regions, compliant resources
and planted violations. PLANTED and COMPLIANT list what a correct scan must report (the tests hold
the scanner to them); docs/demo.md describes them for people.
"""
from __future__ import annotations

import datetime as dt
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from auditbook.collect.clients import strip_account_prefix
from collectors.logs import CIS_FILTER_PATTERNS, SECURITY_EVENTS

REGIONS = ["us-east-1", "eu-west-1"]
ROLE = "OrganizationAccountAccessRole"
ACCOUNT_NAMES = ["audit-logs", "prod-us-east", "staging"]  # plus the management account

# (check id, account name, resource name as it appears in the finding's resource) — must FAIL
PLANTED = [
    ("ec2-sg-no-public-ingress", "staging", "ssh-anywhere"),
    ("ec2-sg-egress-restricted", "staging", "ssh-anywhere"),
    ("vpc-flow-logs-enabled", "staging", "staging-vpc"),
    ("subnet-private-no-public-ip", "staging", "staging-private-a"),
    ("subnet-private-egress-via-nat", "staging", "staging-private-a"),
    ("elb-internet-facing-waf", "staging", "staging-alb"),
    ("elb-listener-tls12", "staging", "staging-alb"),
    ("acm-certificate-not-expiring", "staging", "staging.example.test"),
    ("kms-cmk-rotation", "staging", "staging-no-rotation"),
    ("kms-key-pending-deletion", "staging", "staging-retired"),
    ("rds-instance-encrypted-cmk", "staging", "staging-db"),
    ("rds-instance-backup-retention", "staging", "staging-db"),
    ("rds-instance-not-public", "staging", "staging-db"),
    ("rds-instance-deletion-protection", "staging", "staging-db"),
    ("s3-default-encryption", "staging", "staging-public-assets"),
    ("s3-versioning", "staging", "staging-public-assets"),
    ("s3-bucket-public-access-block", "staging", "staging-public-assets"),
    ("s3-tls-only-policy", "staging", "staging-public-assets"),
    ("s3-audit-log-retention", "staging", "staging-trail-logs"),
    ("s3-account-public-access-block", "staging", "account"),
    ("iam-console-user-mfa", "staging", "dev-console"),
    ("iam-password-policy", "staging", "account"),
    ("cloudtrail-multi-region-logging", "staging", "account"),
    ("ebs-volume-encrypted", "staging", "staging-scratch"),
    ("ebs-encryption-by-default", "staging", "eu-west-1"),
    # coverage checks
    ("ec2-instance-imdsv2", "staging", "staging-worker"),
    ("ec2-snapshot-not-public", "staging", "staging-scratch-snap"),
    ("ec2-ami-not-public", "staging", "staging-worker-ami"),
    ("ec2-default-sg-no-rules", "staging", "default"),
    ("ec2-sg-egress-restricted", "staging", "default"),
    ("ebs-volume-encrypted", "staging", "staging-worker-root"),
    ("ec2-nacl-no-public-admin-ports", "staging", "staging-default-acl"),
    ("s3-access-logging-sensitive", "staging", "staging-customer-export"),
    ("s3-acls-disabled", "staging", "staging-public-assets"),
    ("rds-snapshot-not-public", "staging", "staging-db-snap"),
    ("rds-instance-auto-minor-upgrade", "staging", "staging-db"),
    ("rds-instance-storage-autoscaling", "staging", "staging-db"),
    ("iam-user-no-admin-policy", "staging", "dev-console"),
    ("iam-user-no-inline-policies", "staging", "dev-console"),
    ("iam-policy-no-full-admin", "staging", "staging-admin-everything"),
    ("iam-role-external-trust", "staging", "vendor-legacy"),
    ("cloudtrail-s3-data-events-audit-bucket", "staging", "account"),
    *[(f"cw-alarm-{event}", "staging", "account") for event in SECURITY_EVENTS],
    ("logs-retention-365", "staging", "staging-app"),
    ("logs-kms-encrypted", "staging", "staging-app"),
    ("guardduty-enabled", "staging", "eu-west-1"),
    ("config-recording-all-resources", "staging", "us-east-1"),
    ("config-recording-all-resources", "staging", "eu-west-1"),
    ("config-global-resources", "staging", "account"),
    ("secretsmanager-rotation", "staging", "staging-db-password"),
    ("dynamodb-pitr", "staging", "staging-sessions"),
    ("dynamodb-kms-encryption", "staging", "staging-sessions"),
    ("backup-plan-retention", "staging", "staging-short"),
    ("backup-vault-lock", "staging", "staging-vault"),
    ("elb-access-logs", "staging", "staging-alb"),
    ("eks-secrets-encryption", "staging", "staging-eks"),
    ("eks-audit-logging", "staging", "staging-eks"),
]
# compliant twins — must PASS
COMPLIANT = [
    ("ec2-sg-no-public-ingress", "prod-us-east", "web-https"),
    ("ec2-sg-egress-restricted", "prod-us-east", "web-https"),
    ("vpc-flow-logs-enabled", "prod-us-east", "prod-vpc"),
    ("subnet-private-no-public-ip", "prod-us-east", "prod-private-a"),
    ("subnet-private-egress-via-nat", "prod-us-east", "prod-private-a"),
    ("elb-internet-facing-waf", "prod-us-east", "prod-alb"),
    ("elb-listener-tls12", "prod-us-east", "prod-alb"),
    ("acm-certificate-not-expiring", "prod-us-east", "app.example.test"),
    ("kms-cmk-rotation", "prod-us-east", "prod-data"),
    ("rds-instance-encrypted-cmk", "prod-us-east", "prod-db"),
    ("rds-instance-backup-retention", "prod-us-east", "prod-db"),
    ("rds-instance-not-public", "prod-us-east", "prod-db"),
    ("rds-instance-deletion-protection", "prod-us-east", "prod-db"),
    ("rds-cluster-encrypted-cmk", "prod-us-east", "prod-aurora"),
    ("s3-default-encryption", "prod-us-east", "prod-customer-data"),
    ("s3-versioning", "prod-us-east", "prod-customer-data"),
    ("s3-bucket-public-access-block", "prod-us-east", "prod-customer-data"),
    ("s3-tls-only-policy", "prod-us-east", "prod-customer-data"),
    ("s3-audit-log-retention", "audit-logs", "org-audit-trail-logs"),
    ("s3-account-public-access-block", "prod-us-east", "account"),
    ("iam-console-user-mfa", "prod-us-east", "ops-oncall"),
    ("iam-password-policy", "prod-us-east", "account"),
    ("cloudtrail-multi-region-logging", "prod-us-east", "account"),
    ("ebs-volume-encrypted", "prod-us-east", "prod-app-data"),
    ("ebs-encryption-by-default", "prod-us-east", "eu-west-1"),
    ("ec2-instance-imdsv2", "prod-us-east", "prod-worker"),
    ("ec2-snapshot-not-public", "prod-us-east", "prod-app-data-snap"),
    ("ec2-ami-not-public", "prod-us-east", "prod-worker-ami"),
    ("ec2-default-sg-no-rules", "prod-us-east", "default"),
    ("ebs-volume-encrypted", "prod-us-east", "prod-worker-root"),
    ("ec2-nacl-no-public-admin-ports", "prod-us-east", "prod-default-acl"),
    ("s3-access-logging-sensitive", "prod-us-east", "prod-customer-data"),
    ("s3-acls-disabled", "prod-us-east", "prod-customer-data"),
    ("rds-snapshot-not-public", "prod-us-east", "prod-db-snap"),
    ("rds-instance-multi-az-production", "prod-us-east", "prod-db"),
    ("rds-instance-auto-minor-upgrade", "prod-us-east", "prod-db"),
    ("rds-instance-storage-autoscaling", "prod-us-east", "prod-db"),
    ("iam-credentials-unused-45-days", "prod-us-east", "ops-oncall"),
    ("iam-user-no-admin-policy", "prod-us-east", "ops-oncall"),
    ("iam-user-no-inline-policies", "prod-us-east", "ops-oncall"),
    ("iam-policy-no-full-admin", "prod-us-east", "prod-read-only-billing"),
    ("iam-role-external-trust", "prod-us-east", "vendor-audit"),
    ("cloudtrail-s3-data-events-audit-bucket", "prod-us-east", "account"),
    ("cloudtrail-cloudwatch-logs", "prod-us-east", "prod-us-east-trail"),
    *[(f"cw-alarm-{event}", "prod-us-east", "account") for event in SECURITY_EVENTS],
    ("logs-retention-365", "prod-us-east", "/prod-us-east/cloudtrail"),
    ("logs-kms-encrypted", "prod-us-east", "/prod-us-east/cloudtrail"),
    ("guardduty-enabled", "prod-us-east", "eu-west-1"),
    ("config-recording-all-resources", "prod-us-east", "eu-west-1"),
    ("config-global-resources", "prod-us-east", "account"),
    ("secretsmanager-rotation", "prod-us-east", "prod-db-password"),
    ("dynamodb-pitr", "prod-us-east", "prod-sessions"),
    ("dynamodb-kms-encryption", "prod-us-east", "prod-sessions"),
    ("backup-plan-exists", "prod-us-east", "account"),
    ("backup-plan-retention", "prod-us-east", "prod-us-east-daily"),
    ("backup-vault-lock", "prod-us-east", "prod-us-east-vault"),
    ("elb-access-logs", "prod-us-east", "prod-alb"),
    ("eks-secrets-encryption", "prod-us-east", "prod-eks"),
    ("eks-audit-logging", "prod-us-east", "prod-eks"),
]
# Not plantable on moto, so every account fails them in the demo (see docs/demo.md):
SIMULATION_ARTEFACTS = {"iam-root-mfa": "moto cannot enable MFA on the root user"}


def _name(tags, default=None):
    return next((t["Value"] for t in tags or [] if t["Key"] == "Name"), default)


def _tagspec(kind, name):
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def self_signed(common_name: str, days_valid: int):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days_valid))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()))


def tls_only_policy(bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def close_admin_ports(ec2, acl_id: str) -> None:
    for number, port in ((10, 22), (11, 3389)):
        ec2.create_network_acl_entry(NetworkAclId=acl_id, RuleNumber=number, Protocol="6", RuleAction="deny",
                                     Egress=False, CidrBlock="0.0.0.0/0", PortRange={"From": port, "To": port})


def trust_policy(account: str, external_id: str | None = None) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


class Account:
    """Builders for one simulated account."""

    def __init__(self, session, account_id: str, name: str):
        self.s, self.id, self.name = session, account_id, name

    def c(self, service, region="us-east-1"):
        client = self.s.client(service, region_name=region)
        if service == "s3control":
            client.meta.events.register("before-send.s3-control", strip_account_prefix)
        return client

    # -- baseline --------------------------------------------------------------------------------
    def remove_default_vpcs(self):
        """Many organisations delete default VPCs; the demo does, so findings show planted resources."""
        for region in REGIONS:
            ec2 = self.c("ec2", region)
            for vpc in ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]:
                vid = vpc["VpcId"]
                for sn in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vid]}])["Subnets"]:
                    ec2.delete_subnet(SubnetId=sn["SubnetId"])
                for igw in ec2.describe_internet_gateways(
                        Filters=[{"Name": "attachment.vpc-id", "Values": [vid]}])["InternetGateways"]:
                    ec2.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=vid)
                    ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
                ec2.delete_vpc(VpcId=vid)
                # AWS deletes a VPC's network ACLs with it; moto keeps the default one (and refuses to
                # delete it), so the leftover gets its admin ports closed rather than read as a finding
                for acl in ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vid]}])["NetworkAcls"]:
                    close_admin_ports(ec2, acl["NetworkAclId"])

    def harden_account(self, password_policy=True, s3_block=True, ebs_default=REGIONS):
        if password_policy:
            self.c("iam").update_account_password_policy(
                MinimumPasswordLength=14, RequireSymbols=True, RequireNumbers=True,
                RequireUppercaseCharacters=True, RequireLowercaseCharacters=True, PasswordReusePrevention=24)
        else:
            self.c("iam").update_account_password_policy(MinimumPasswordLength=8)
        if s3_block:
            self.c("s3control").put_public_access_block(AccountId=self.id, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True})
        for region in ebs_default:
            self.c("ec2", region).enable_ebs_encryption_by_default()

    def key(self, alias, rotate=True, region="us-east-1"):
        kms = self.c("kms", region)
        key = kms.create_key(Description=alias, Tags=[{"TagKey": "Name", "TagValue": alias}])["KeyMetadata"]
        kms.create_alias(AliasName=f"alias/{alias}", TargetKeyId=key["KeyId"])
        if rotate:
            kms.enable_key_rotation(KeyId=key["KeyId"])
        return key["Arn"]

    def bucket(self, name, *, kms_key=None, encrypt=True, versioning=True, block=True, tls_only=True, object_lock=False,
               lifecycle_days=None, region="us-east-1", acls_disabled=True, tags=None, access_log_bucket=None):
        s3 = self.c("s3", region)
        kwargs = {"Bucket": name}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if object_lock:
            kwargs["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(**kwargs)
        if kms_key:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key}}]})
        elif encrypt:
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
                "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        if versioning:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        if block:
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True})
        if tls_only:
            s3.put_bucket_policy(Bucket=name, Policy=tls_only_policy(name))
        if object_lock:
            s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 2557}}})
        if lifecycle_days:
            s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [{
                "ID": "retention", "Status": "Enabled", "Filter": {"Prefix": ""},
                "Expiration": {"Days": lifecycle_days},
                "NoncurrentVersionExpiration": {"NoncurrentDays": lifecycle_days}}]})
        if tags:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
        if access_log_bucket:
            s3.put_bucket_logging(Bucket=name, BucketLoggingStatus={"LoggingEnabled": {
                "TargetBucket": access_log_bucket, "TargetPrefix": f"{name}/"}})
        if acls_disabled:
            s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls={
                "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
        return name

    def access_log_bucket(self, name):
        """A server-access-log target: the logging service may write to it (bucket policy, as AWS
        recommends with ACLs disabled), and it denies plain-HTTP requests."""
        self.bucket(name, tls_only=False)
        tls_deny = json.loads(tls_only_policy(name))["Statement"][0]
        tls_deny["Principal"] = {"AWS": "*"}  # same meaning as "*"; moto's logging check needs a mapping
        self.c("s3").put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
            tls_deny, {"Sid": "S3ServerAccessLogs", "Effect": "Allow",
                       "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": ["s3:PutObject"],
                       "Resource": f"arn:aws:s3:::{name}/*"}]}))
        return name

    def trail(self, name, bucket, *, multi_region=True, validation=True, kms_key=None, region="us-east-1",
              monitored=False):
        """A trail; monitored: delivered to a CloudWatch Logs group (365 days, KMS) with the CIS metric
        filters and alarms, and recording S3 data events on its own log bucket."""
        ct = self.c("cloudtrail", region)
        kwargs = dict(Name=name, S3BucketName=bucket, IsMultiRegionTrail=multi_region,
                      EnableLogFileValidation=validation)
        if kms_key:
            kwargs["KmsKeyId"] = kms_key
        if monitored:
            group = f"/{self.name}/cloudtrail"
            logs = self.c("logs", region)
            logs.create_log_group(logGroupName=group, kmsKeyId=kms_key)
            logs.put_retention_policy(logGroupName=group, retentionInDays=400)
            kwargs.update(CloudWatchLogsLogGroupArn=f"arn:aws:logs:{region}:{self.id}:log-group:{group}:*",
                          CloudWatchLogsRoleArn=f"arn:aws:iam::{self.id}:role/cloudtrail-to-logs")
            cw = self.c("cloudwatch", region)
            for event, pattern in CIS_FILTER_PATTERNS.items():
                logs.put_metric_filter(logGroupName=group, filterName=event, filterPattern=pattern,
                                       metricTransformations=[{"metricName": event, "metricNamespace": "CISBenchmark",
                                                               "metricValue": "1"}])
                cw.put_metric_alarm(AlarmName=f"cis-{event}", MetricName=event, Namespace="CISBenchmark",
                                    Statistic="Sum", Period=300, EvaluationPeriods=1, Threshold=1,
                                    ComparisonOperator="GreaterThanOrEqualToThreshold",
                                    AlarmActions=[f"arn:aws:sns:{region}:{self.id}:security-alerts"])
        ct.create_trail(**kwargs)
        if monitored:
            ct.put_event_selectors(TrailName=name, EventSelectors=[{
                "ReadWriteType": "All", "IncludeManagementEvents": True,
                "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{bucket}/"]}]}])
        ct.start_logging(Name=name)

    def detection(self, guardduty_regions=REGIONS, config_regions=REGIONS, config_bucket="org-audit-trail-logs"):
        """GuardDuty detectors and AWS Config recorders (all resources; global types too)."""
        for region in guardduty_regions:
            self.c("guardduty", region).create_detector(Enable=True)
        for region in config_regions:
            cfg = self.c("config", region)
            cfg.put_configuration_recorder(ConfigurationRecorder={
                "name": "default", "roleARN": f"arn:aws:iam::{self.id}:role/aws-config",
                "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True}})
            cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": config_bucket})
            cfg.start_configuration_recorder(ConfigurationRecorderName="default")

    def backups(self, plan, vault, *, days=35, lock=True):
        backup = self.c("backup")
        backup.create_backup_vault(BackupVaultName=vault)
        if lock:
            backup.put_backup_vault_lock_configuration(BackupVaultName=vault, MinRetentionDays=days)
        backup.create_backup_plan(BackupPlan={"BackupPlanName": plan, "Rules": [{
            "RuleName": "daily", "TargetBackupVaultName": vault, "ScheduleExpression": "cron(0 5 ? * * *)",
            "Lifecycle": {"DeleteAfterDays": days}}]})

    def workloads(self, prefix, *, subnet, kms_key, compliant):
        """An instance with an AMI and a snapshot, a secret, a DynamoDB table and an EKS cluster."""
        ec2 = self.c("ec2")
        root = {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8, "Encrypted": compliant,
                                                    **({"KmsKeyId": kms_key} if compliant else {})}}
        instance = ec2.run_instances(ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1, SubnetId=subnet,
                                     InstanceType="t3.micro", BlockDeviceMappings=[root],
                                     MetadataOptions={"HttpTokens": "required" if compliant else "optional"},
                                     TagSpecifications=_tagspec("instance", f"{prefix}-worker")
                                     + _tagspec("volume", f"{prefix}-worker-root"))["Instances"][0]
        image = ec2.create_image(InstanceId=instance["InstanceId"], Name=f"{prefix}-worker-ami")["ImageId"]
        if not compliant:
            ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
        volume = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": [
            "prod-app-data" if compliant else "staging-scratch"]}])["Volumes"][0]["VolumeId"]
        snap = ec2.create_snapshot(VolumeId=volume, TagSpecifications=_tagspec(
            "snapshot", "prod-app-data-snap" if compliant else "staging-scratch-snap"))["SnapshotId"]
        if not compliant:
            ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", OperationType="add",
                                          GroupNames=["all"])
        sm = self.c("secretsmanager")
        sm.create_secret(Name=f"{prefix}-db-password", SecretString="demo-value-not-secret",
                         **({"KmsKeyId": kms_key} if kms_key else {}))
        if compliant:
            sm.rotate_secret(SecretId=f"{prefix}-db-password", RotationRules={"AutomaticallyAfterDays": 30})
        ddb = self.c("dynamodb")
        table = dict(TableName=f"{prefix}-sessions", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        if compliant:
            table["SSESpecification"] = {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": kms_key}
        ddb.create_table(**table)
        if compliant:
            ddb.update_continuous_backups(TableName=f"{prefix}-sessions",
                                          PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
        cluster = dict(name=f"{prefix}-eks", roleArn=f"arn:aws:iam::{self.id}:role/eks-cluster",
                       resourcesVpcConfig={"subnetIds": [subnet], "endpointPublicAccess": False})
        if compliant:
            cluster.update(encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": kms_key}}],
                           logging={"clusterLogging": [{"types": ["api", "audit", "authenticator"], "enabled": True}]})
        self.c("eks").create_cluster(**cluster)

    def name_default_acl(self, vpc, name, *, deny_admin_ports):
        ec2 = self.c("ec2")
        acl = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                 {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]["NetworkAclId"]
        ec2.create_tags(Resources=[acl], Tags=[{"Key": "Name", "Value": name}])
        if deny_admin_ports:
            close_admin_ports(ec2, acl)

    def network(self, prefix, cidr, *, flow_logs, private_public_ip, private_via_igw, sg_public_port,
                lock_default_sg=True):
        ec2 = self.c("ec2")
        vpc = ec2.create_vpc(CidrBlock=cidr, TagSpecifications=_tagspec("vpc", f"{prefix}-vpc"))["Vpc"]["VpcId"]
        base = cidr.rsplit(".", 2)[0]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        public = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.0.0/24", AvailabilityZone="us-east-1a",
                                   TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                                       {"Key": "Name", "Value": f"{prefix}-public-a"},
                                       {"Key": "Tier", "Value": "public"}]}])["Subnet"]["SubnetId"]
        private = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.1.0/24", AvailabilityZone="us-east-1a",
                                    TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                                        {"Key": "Name", "Value": f"{prefix}-private-a"},
                                        {"Key": "Tier", "Value": "private"}]}])["Subnet"]["SubnetId"]
        public_b = ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.2.0/24", AvailabilityZone="us-east-1b",
                                     TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                                         {"Key": "Name", "Value": f"{prefix}-public-b"},
                                         {"Key": "Tier", "Value": "public"}]}])["Subnet"]["SubnetId"]
        for subnet in (public, public_b):
            ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
        if private_public_ip:
            ec2.modify_subnet_attribute(SubnetId=private, MapPublicIpOnLaunch={"Value": True})
        public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public)
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public_b)
        private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        if private_via_igw:
            ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        else:
            eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
            nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip)["NatGateway"]["NatGatewayId"]
            ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        ec2.associate_route_table(RouteTableId=private_rt, SubnetId=private)
        if flow_logs:
            destination = self.bucket(f"{prefix}-flow-logs")
            made = ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL",
                                        LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{destination}")
            if made.get("Unsuccessful"):
                raise RuntimeError(f"flow log for {vpc} not created: {made['Unsuccessful']}")
        # every VPC has a default security group that allows all egress: restrict it
        default_sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                           {"Name": "group-name", "Values": ["default"]}])
        for sg in default_sg["SecurityGroups"] if lock_default_sg else []:
            if sg["IpPermissionsEgress"]:
                ec2.revoke_security_group_egress(GroupId=sg["GroupId"], IpPermissions=sg["IpPermissionsEgress"])
        name = "web-https" if sg_public_port == 443 else "ssh-anywhere"
        sg = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc,
                                       TagSpecifications=_tagspec("security-group", name))["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": sg_public_port, "ToPort": sg_public_port,
            "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        if sg_public_port == 443:  # compliant twin: egress only to the VPC
            ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=[{"IpProtocol": "-1",
                                                                          "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
            ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=[{
                "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": cidr}]}])
        return vpc, [public, public_b], private, sg

    def load_balancer(self, name, subnets, sg, cert_arn, ssl_policy, waf):
        elb = self.c("elbv2")
        lb = elb.create_load_balancer(Name=name, Subnets=subnets, SecurityGroups=[sg], Scheme="internet-facing",
                                      Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
        tg = elb.create_target_group(Name=f"{name}-tg", Protocol="HTTP", Port=80,
                                     VpcId=self.c("ec2").describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
                                     )["TargetGroups"][0]["TargetGroupArn"]
        elb.create_listener(LoadBalancerArn=lb, Protocol="HTTPS", Port=443, SslPolicy=ssl_policy,
                            Certificates=[{"CertificateArn": cert_arn}],
                            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        if waf:
            wafv2 = self.c("wafv2")
            acl = wafv2.create_web_acl(
                Name=f"{name}-acl", Scope="REGIONAL", DefaultAction={"Block": {}},
                VisibilityConfig={"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                                  "MetricName": f"{name}-acl"},
                Rules=[{"Name": "common", "Priority": 1, "OverrideAction": {"None": {}},
                        "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS",
                                                                   "Name": "AWSManagedRulesCommonRuleSet"}},
                        "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                                             "MetricName": "common"}}])["Summary"]["ARN"]
            wafv2.associate_web_acl(WebACLArn=acl, ResourceArn=lb)
        return lb

    def certificate(self, domain, days_valid):
        cert, key = self_signed(domain, days_valid)
        return self.c("acm").import_certificate(Certificate=cert, PrivateKey=key)["CertificateArn"]

    def database(self, name, *, kms_key, public, backup_days, deletion_protection, subnets, security_group,
                 environment, multi_az=False, auto_minor=True, max_storage=None, snapshot_public=False):
        rds = self.c("rds")
        group = f"{name}-subnets"
        rds.create_db_subnet_group(DBSubnetGroupName=group, DBSubnetGroupDescription=group, SubnetIds=subnets)
        kwargs = dict(DBInstanceIdentifier=name, DBInstanceClass="db.t3.micro", Engine="postgres",
                      MasterUsername="app", MasterUserPassword="demo-password-not-secret", AllocatedStorage=20,
                      PubliclyAccessible=public, BackupRetentionPeriod=backup_days,
                      DeletionProtection=deletion_protection, DBSubnetGroupName=group,
                      VpcSecurityGroupIds=[security_group], MultiAZ=multi_az, AutoMinorVersionUpgrade=auto_minor,
                      Tags=[{"Key": "environment", "Value": environment}])
        if kms_key:
            kwargs.update(StorageEncrypted=True, KmsKeyId=kms_key)
        if max_storage:
            kwargs["MaxAllocatedStorage"] = max_storage
        rds.create_db_instance(**kwargs)
        rds.create_db_snapshot(DBInstanceIdentifier=name, DBSnapshotIdentifier=f"{name}-snap")
        if snapshot_public:
            rds.modify_db_snapshot_attribute(DBSnapshotIdentifier=f"{name}-snap", AttributeName="restore",
                                             ValuesToAdd=["all"])

    def user(self, name, *, console, mfa):
        iam = self.c("iam")
        iam.create_user(UserName=name)
        if console:
            iam.create_login_profile(UserName=name, Password="Demo-Passw0rd!-not-secret")
        if mfa:
            serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]["SerialNumber"]
            iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1="123456",
                                  AuthenticationCode2="654321")


def build(session, log=print) -> dict:
    """Create the organisation and its resources through `session` (management credentials).
    Returns {account name: account id}."""
    org = session.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    mgmt_id = session.client("sts").get_caller_identity()["Account"]
    ids = {"management": mgmt_id}
    for name in ACCOUNT_NAMES:
        status = org.create_account(Email=f"{name}@example.test", AccountName=name)["CreateAccountStatus"]
        ids[name] = status["AccountId"]
    sts = session.client("sts", region_name="us-east-1")
    accounts = {}
    import boto3
    for name, aid in ids.items():
        if name == "management":
            accounts[name] = Account(session, aid, name)
            continue
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{aid}:role/{ROLE}", RoleSessionName="demo-build")["Credentials"]
        accounts[name] = Account(boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                                               aws_secret_access_key=creds["SecretAccessKey"],
                                               aws_session_token=creds["SessionToken"]), aid, name)
    for acct in accounts.values():
        acct.remove_default_vpcs()
    log("organisation: " + ", ".join(f"{n} {i}" for n, i in ids.items()))

    audit, prod, staging, mgmt = accounts["audit-logs"], accounts["prod-us-east"], accounts["staging"], accounts["management"]
    # audit-logs: the organisation's log archive (Object Lock, 7-year retention)
    audit.harden_account()
    audit_key = audit.key("audit-logs")
    log_bucket = audit.bucket("org-audit-trail-logs", kms_key=audit_key, object_lock=True, lifecycle_days=2557)
    for acct in (mgmt, audit, prod):
        key = acct.key(f"{acct.name}-trail") if acct is not audit else audit_key
        if acct is not audit:
            acct.harden_account()
        acct.trail(f"{acct.name}-trail", log_bucket, kms_key=key, monitored=True)
        acct.detection(config_bucket=log_bucket)
        acct.backups(f"{acct.name}-daily", f"{acct.name}-vault")

    # prod-us-east: compliant twins of every planted violation
    data_key = prod.key("prod-data")
    access_logs = prod.access_log_bucket("prod-access-logs")
    prod.bucket("prod-customer-data", kms_key=data_key, tags={"data-classification": "confidential"},
                access_log_bucket=access_logs)
    vpc, (public, public_b), private, sg = prod.network("prod", "10.10.0.0/16", flow_logs=True,
                                                        private_public_ip=False, private_via_igw=False,
                                                        sg_public_port=443)
    prod.name_default_acl(vpc, "prod-default-acl", deny_admin_ports=True)
    ec2 = prod.c("ec2")
    cert = prod.certificate("app.example.test", 365)
    alb = prod.load_balancer("prod-alb", [public, public_b], sg, cert, "ELBSecurityPolicy-TLS13-1-2-2021-06", waf=True)
    prod.c("elbv2").modify_load_balancer_attributes(LoadBalancerArn=alb, Attributes=[
        {"Key": "access_logs.s3.enabled", "Value": "true"}, {"Key": "access_logs.s3.bucket", "Value": access_logs}])
    prod.database("prod-db", kms_key=data_key, public=False, backup_days=14, deletion_protection=True,
                  subnets=[private, public_b], security_group=sg, environment="production", multi_az=True,
                  max_storage=200)
    prod.c("rds").create_db_cluster(DBClusterIdentifier="prod-aurora", Engine="aurora-postgresql",
                                    MasterUsername="app", MasterUserPassword="demo-password-not-secret",
                                    StorageEncrypted=True, KmsKeyId=data_key, BackupRetentionPeriod=14,
                                    DeletionProtection=True, VpcSecurityGroupIds=[sg])
    ec2.create_volume(AvailabilityZone="us-east-1a", Size=20, Encrypted=True, KmsKeyId=data_key,
                      TagSpecifications=_tagspec("volume", "prod-app-data"))
    prod.workloads("prod", subnet=private, kms_key=data_key, compliant=True)
    prod.user("ops-oncall", console=True, mfa=True)
    prod.user("ci-deployer", console=False, mfa=False)
    iam = prod.c("iam")
    billing = iam.create_policy(PolicyName="prod-read-only-billing", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["aws-portal:ViewBilling"],
                                                "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="ops-oncall", PolicyArn=billing)
    iam.create_role(RoleName="vendor-audit", AssumeRolePolicyDocument=trust_policy("999999999999", "vendor-audit-2026"))

    # staging: the planted violations
    staging.harden_account(password_policy=False, s3_block=False, ebs_default=["us-east-1"])
    staging.detection(guardduty_regions=["us-east-1"], config_regions=[], config_bucket=log_bucket)
    staging.backups("staging-short", "staging-vault", days=7, lock=False)
    trail_bucket = staging.bucket("staging-trail-logs", kms_key=staging.key("staging-logs"), lifecycle_days=30)
    staging.trail("staging-trail", trail_bucket, multi_region=False, validation=False)
    staging.bucket("staging-public-assets", encrypt=False, versioning=False, block=False, tls_only=False,
                   acls_disabled=False)
    staging.bucket("staging-customer-export", kms_key=staging.key("staging-export"),
                   tags={"data-classification": "confidential"})
    staging.key("staging-no-rotation", rotate=False)
    retired = staging.key("staging-retired")
    staging.c("kms").schedule_key_deletion(KeyId=retired.split("/")[-1], PendingWindowInDays=30)
    vpc, (public, public_b), private, sg = staging.network("staging", "10.20.0.0/16", flow_logs=False,
                                                           private_public_ip=True, private_via_igw=True,
                                                           sg_public_port=22, lock_default_sg=False)
    staging.name_default_acl(vpc, "staging-default-acl", deny_admin_ports=False)
    ec2 = staging.c("ec2")
    cert = staging.certificate("staging.example.test", 10)
    staging.load_balancer("staging-alb", [public, public_b], sg, cert, "ELBSecurityPolicy-2016-08", waf=False)
    staging.database("staging-db", kms_key=None, public=True, backup_days=1, deletion_protection=False,
                     subnets=[public, public_b], security_group=sg, environment="staging", auto_minor=False,
                     snapshot_public=True)
    ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, Encrypted=False,
                      TagSpecifications=_tagspec("volume", "staging-scratch"))
    staging.workloads("staging", subnet=private, kms_key=None, compliant=False)
    staging.c("logs").create_log_group(logGroupName="staging-app")
    staging.c("logs").put_retention_policy(logGroupName="staging-app", retentionInDays=30)
    staging.user("dev-console", console=True, mfa=False)
    iam = staging.c("iam")
    everything = iam.create_policy(PolicyName="staging-admin-everything", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="dev-console", PolicyArn=everything)
    iam.put_user_policy(UserName="dev-console", PolicyName="debug-s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    iam.create_role(RoleName="vendor-legacy", AssumeRolePolicyDocument=trust_policy("999999999999"))
    log(f"planted {len(PLANTED)} violations and {len(COMPLIANT)} compliant twins (docs/demo.md)")
    return ids
