"""The simulated organisation for `auditbook demo`: four accounts, two regions, compliant resources
and planted violations. PLANTED and COMPLIANT list what a correct scan must report (the tests hold
the scanner to them); docs/demo.md describes them for people.
"""
from __future__ import annotations

import json

from auditbook.collect.clients import strip_account_prefix
from auditbook.demo.estate_network import (
    NetworkBuilder,
    close_admin_ports,
    tag_spec,
)
from auditbook.demo.planted import AREAS, COMPLIANT, PLANTED, SIMULATION_ARTEFACTS  # noqa: F401 (read here by tests and docs)
from collectors.logs import CIS_FILTER_PATTERNS

REGIONS = ["us-east-1", "eu-west-1"]
ROLE = "OrganizationAccountAccessRole"
ACCOUNT_NAMES = ["audit-logs", "prod-us-east", "staging"]  # plus the management account:
MANAGEMENT = "master"  # its name in the organisation (moto names it so and cannot rename it): one name everywhere



def tls_only_policy(bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


def trust_policy(account: str, external_id: str | None = None) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


class Account(NetworkBuilder):
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
                                     TagSpecifications=tag_spec("instance", f"{prefix}-worker")
                                     + tag_spec("volume", f"{prefix}-worker-root"))["Instances"][0]
        image = ec2.create_image(InstanceId=instance["InstanceId"], Name=f"{prefix}-worker-ami")["ImageId"]
        if not compliant:
            ec2.modify_image_attribute(ImageId=image, LaunchPermission={"Add": [{"Group": "all"}]})
        volume = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": [
            "prod-app-data" if compliant else "staging-scratch"]}])["Volumes"][0]["VolumeId"]
        snap = ec2.create_snapshot(VolumeId=volume, TagSpecifications=tag_spec(
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

    def user(self, name, *, console, mfa):
        iam = self.c("iam")
        iam.create_user(UserName=name)
        if console:
            iam.create_login_profile(UserName=name, Password="Demo-Passw0rd!-not-secret")
        if mfa:
            serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=name)["VirtualMFADevice"]["SerialNumber"]
            iam.enable_mfa_device(UserName=name, SerialNumber=serial, AuthenticationCode1="123456",
                                  AuthenticationCode2="654321")


def _organisation(session) -> tuple[dict, dict]:
    """The organisation, its member accounts (entered through ROLE) and their Account builders."""
    org = session.client("organizations", region_name="us-east-1")
    org.create_organization(FeatureSet="ALL")
    mgmt_id = session.client("sts").get_caller_identity()["Account"]
    ids = {MANAGEMENT: mgmt_id}
    for name in ACCOUNT_NAMES:
        status = org.create_account(Email=f"{name}@example.test", AccountName=name)["CreateAccountStatus"]
        ids[name] = status["AccountId"]
    sts = session.client("sts", region_name="us-east-1")
    accounts = {}
    import boto3
    for name, aid in ids.items():
        if name == MANAGEMENT:
            accounts[name] = Account(session, aid, name)
            continue
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{aid}:role/{ROLE}", RoleSessionName="demo-build")["Credentials"]
        accounts[name] = Account(boto3.Session(aws_access_key_id=creds["AccessKeyId"],
                                               aws_secret_access_key=creds["SecretAccessKey"],
                                               aws_session_token=creds["SessionToken"]), aid, name)
    for acct in accounts.values():
        acct.remove_default_vpcs()
    return ids, accounts


def _log_archive(accounts: dict) -> str:
    """audit-logs as the organisation's log archive; trails, detection and backups of the others."""
    audit, prod, mgmt = accounts["audit-logs"], accounts["prod-us-east"], accounts[MANAGEMENT]
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
    return log_bucket


def _prod(prod: Account) -> None:
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
    prod.database("prod-db", kms_key=data_key, public=False, backup_days=35, deletion_protection=True,
                  subnets=[private, public_b], security_group=sg, environment="production", multi_az=True,
                  max_storage=200)
    prod.c("rds").create_db_cluster(DBClusterIdentifier="prod-aurora", Engine="aurora-postgresql",
                                    MasterUsername="app", MasterUserPassword="demo-password-not-secret",
                                    StorageEncrypted=True, KmsKeyId=data_key, BackupRetentionPeriod=35,
                                    DeletionProtection=True, VpcSecurityGroupIds=[sg],
                                    EnableIAMDatabaseAuthentication=True, EnableCloudwatchLogsExports=["postgresql"])
    ec2.create_volume(AvailabilityZone="us-east-1a", Size=20, Encrypted=True, KmsKeyId=data_key,
                      TagSpecifications=tag_spec("volume", "prod-app-data"))
    prod.workloads("prod", subnet=private, kms_key=data_key, compliant=True)
    prod.user("ops-oncall", console=True, mfa=True)
    prod.user("ci-deployer", console=False, mfa=False)
    iam = prod.c("iam")
    billing = iam.create_policy(PolicyName="prod-read-only-billing", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["aws-portal:ViewBilling"],
                                                "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="ops-oncall", PolicyArn=billing)
    iam.create_role(RoleName="vendor-audit", AssumeRolePolicyDocument=trust_policy("999999999999", "vendor-audit-2026"))


def _staging(staging: Account, log_bucket: str) -> None:
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
                      TagSpecifications=tag_spec("volume", "staging-scratch"))
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


def build(session, log=print) -> dict:
    """Create the organisation and its resources through `session` (management credentials).
    Returns {account name: account id}."""
    ids, accounts = _organisation(session)
    log("organisation: " + ", ".join(f"{n} {i}" + (" (the management account)" if n == MANAGEMENT else "")
                                     for n, i in ids.items()))
    log_bucket = _log_archive(accounts)
    _prod(accounts["prod-us-east"])
    _staging(accounts["staging"], log_bucket)
    for area in AREAS:
        area.plant(accounts)
    log(f"planted {len(PLANTED)} violations and {len(COMPLIANT)} compliant twins (docs/demo.md)")
    return ids
