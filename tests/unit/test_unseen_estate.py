"""Issue 15 §4, accuracy on an estate nobody tuned for: an estate built here, independently of the demo
(auditbook/demo/estate_*.py) and of the checks' expressions, under in-process moto in two regions
(us-east-1 and eu-west-1), with defaults left as AWS/moto set them and alternative but compliant
configurations (SSE-KMS by key ARN, a TLS deny written with NotAction, a key policy pinned to an
organisation, egress to a /32 inside 10.0.0.0/8, a CloudFront S3 origin behind redirect-to-https, a
Lambda without environment variables, an ECR repository with IMMUTABLE_WITH_EXCLUSION, ...).

EXPECTED was written down before the first scan, from AWS's documented semantics (not from the
checks): for each check, a compliant resource that must PASS (or be not applicable, "NA", where that
is the honest answer; "PASS|NA" where either is honest) and a violating one that must FAIL, all judged
in ONE scan. Where the catalog disagrees, the case is an xfail(strict) naming why (DISAGREEMENTS), so
it flips when the check is fixed."""
import datetime as dt
import io
import json
import zipfile

import boto3
import pytest

from tests.conftest import FAKE_ENV, collect_current

US, EU = "us-east-1", "eu-west-1"
ACCOUNT = "123456789012"      # moto's account
EXTERNAL = "444455556666"     # an account outside the scanned estate
ORG = "o-q7w8e9r0t1"

# (check, resource label, region or None for global, expected: PASS | FAIL | NA | PASS|NA)
EXPECTED = [
    # -- CloudFront (global) ---------------------------------------------------------------------------
    ("cloudfront-waf-attached", "dist-s3-site", None, "PASS"),
    ("cloudfront-waf-attached", "dist-plain", None, "FAIL"),
    ("cloudfront-waf-default-block", "dist-s3-site", None, "PASS"),
    ("cloudfront-waf-default-block", "dist-api", None, "FAIL"),        # web ACL default action Allow
    ("cloudfront-waf-managed-rules", "dist-s3-site", None, "PASS"),
    ("cloudfront-waf-managed-rules", "dist-api", None, "FAIL"),        # common rule set only counts
    ("cloudfront-viewer-https", "dist-s3-site", None, "PASS"),         # redirect-to-https everywhere
    ("cloudfront-viewer-https", "dist-api", None, "FAIL"),             # one cache behaviour allow-all
    ("cloudfront-viewer-https", "dist-plain", None, "FAIL"),           # default behaviour allow-all
    ("cloudfront-viewer-tls", "dist-s3-site", None, "PASS"),           # TLSv1.2_2021
    ("cloudfront-viewer-tls", "dist-media", None, "PASS"),             # TLSv1.2_2019
    ("cloudfront-viewer-tls", "dist-api", None, "FAIL"),               # TLSv1.1_2016
    ("cloudfront-viewer-tls", "dist-plain", None, "FAIL"),             # default *.cloudfront.net cert: TLSv1
    ("cloudfront-origin-https", "dist-s3-site", None, "PASS|NA"),      # S3 REST origin, viewers on HTTPS only
    ("cloudfront-origin-https", "dist-api", None, "PASS"),             # custom origin https-only
    ("cloudfront-origin-https", "dist-media", None, "PASS"),           # https-only + match-viewer behind redirect
    ("cloudfront-origin-https", "dist-plain", None, "FAIL"),           # custom origin http-only
    ("cloudfront-origin-tls", "dist-api", None, "PASS"),               # origin SSL protocols [TLSv1.2]
    ("cloudfront-origin-tls", "dist-s3-site", None, "PASS|NA"),        # no custom origin
    ("cloudfront-origin-tls", "dist-media", None, "FAIL"),             # origin allows TLSv1
    ("cloudfront-logging", "dist-s3-site", None, "PASS"),
    ("cloudfront-logging", "dist-api", None, "FAIL"),
    ("shield-cloudfront-protected", "dist-s3-site", None, "PASS|NA"),  # company does not require Shield Adv.
    ("shield-advanced-subscription", "account", None, "PASS|NA"),
    # -- WAFv2 -------------------------------------------------------------------------------------------
    ("wafv2-logging", "regional-strict", EU, "PASS"),
    ("wafv2-logging", "regional-bare", EU, "FAIL"),
    ("wafv2-metrics", "regional-strict", EU, "PASS"),
    ("wafv2-metrics", "regional-bare", EU, "FAIL"),                    # web ACL metrics off
    ("wafv2-metrics", "regional-rule-dark", EU, "FAIL"),               # one rule's metrics off
    ("wafv2-has-rules", "regional-strict", EU, "PASS"),
    ("wafv2-has-rules", "regional-bare", EU, "FAIL"),
    ("wafv2-cloudfront-logging", "edge-strict", None, "PASS"),
    ("wafv2-cloudfront-logging", "edge-lenient", None, "FAIL"),
    ("wafv2-cloudfront-metrics", "edge-strict", None, "PASS"),
    ("wafv2-cloudfront-metrics", "edge-lenient", None, "FAIL"),        # the rule's metrics off
    ("wafv2-cloudfront-has-rules", "edge-strict", None, "PASS"),
    ("wafv2-cloudfront-has-rules", "edge-empty", None, "FAIL"),
    # -- network (eu-west-1) ---------------------------------------------------------------------------
    ("ec2-sg-egress-restricted", "app-egress-narrow", EU, "PASS"),     # /32 in 10/8 and the VPC CIDR
    ("ec2-sg-egress-restricted", "db-client", EU, "PASS"),             # egress to a security group only
    ("ec2-sg-egress-restricted", "batch-wide-egress", EU, "FAIL"),     # tcp 0-65535 to 0.0.0.0/0
    ("ec2-sg-egress-restricted", "default-egress-untouched", EU, "FAIL"),  # AWS's default all-traffic egress
    ("ec2-sg-egress-restricted", "v6-egress", EU, "FAIL"),             # udp 53 to ::/0
    ("ec2-sg-egress-restricted", "supernet-egress", EU, "FAIL"),       # 10.0.0.0/7 is wider than 10/8
    ("ec2-sg-ingress-approved-networks", "app-egress-narrow", EU, "PASS"),  # 10.8.0.0/16 and inside the VPC
    ("ec2-sg-ingress-approved-networks", "batch-wide-egress", EU, "FAIL"),  # 198.51.100.7/32
    ("subnet-private-nat-same-az", "priv-a", EU, "PASS"),
    ("subnet-private-nat-same-az", "priv-b", EU, "FAIL"),              # routes to the NAT in eu-west-1a
    ("subnet-private-nat-same-az", "isolated-c", EU, "PASS|NA"),       # no route to the internet at all
    ("subnet-private-nat-same-az", "pub-a", EU, "PASS|NA"),            # public subnet
    ("ec2-nat-gateway-flow-logs", "nat-a", EU, "PASS"),                # flow log on its subnet
    ("ec2-nat-gateway-flow-logs", "nat-dark", EU, "FAIL"),
    # -- load balancers (eu-west-1) --------------------------------------------------------------------
    ("elb-listener-forward-secrecy", "storefront-alb", EU, "PASS"),   # ELBSecurityPolicy-TLS13-1-2-2021-06
    ("elb-listener-forward-secrecy", "mq-nlb", EU, "PASS"),           # TLS listener, FS-1-2-Res-2020-10
    ("elb-listener-forward-secrecy", "backoffice-alb", EU, "FAIL"),   # TLS-1-2-2017-01 offers RSA kx
    ("elb-http-listener-redirects-https", "storefront-alb", EU, "PASS"),
    ("elb-http-listener-redirects-https", "backoffice-alb", EU, "FAIL"),
    ("elb-http-listener-redirects-https", "mq-nlb", EU, "PASS|NA"),
    ("elb-target-group-https", "backoffice-http", EU, "PASS|NA"),     # company does not require it
    ("elb-deletion-protection", "storefront-alb", EU, "PASS"),
    ("elb-deletion-protection", "backoffice-alb", EU, "FAIL"),
    ("elb-drop-invalid-headers", "storefront-alb", EU, "PASS"),
    ("elb-drop-invalid-headers", "backoffice-alb", EU, "FAIL"),
    ("elb-drop-invalid-headers", "mq-nlb", EU, "NA"),                 # not an application load balancer
    ("shield-alb-protected", "storefront-alb", EU, "PASS|NA"),
    # -- IAM (global) ------------------------------------------------------------------------------------
    ("iam-role-cross-account-session-length", "partner-readonly", None, "PASS"),
    ("iam-role-cross-account-session-length", "vendor-support", None, "FAIL"),  # bare account id, 12 h
    ("iam-role-cross-account-session-length", "batch-runner", None, "NA"),      # service trust, 12 h
    ("iam-role-admin-requires-mfa", "breakglass-admin", None, "PASS"),
    ("iam-role-admin-requires-mfa", "ops-admin", None, "FAIL"),
    ("iam-role-admin-requires-mfa", "admin-ifexists", None, "FAIL"),   # BoolIfExists: access keys get in
    ("iam-role-admin-requires-mfa", "ci-deployer-admin", None, "NA"),          # only CodeBuild assumes it
    # -- CloudTrail --------------------------------------------------------------------------------------
    ("cloudtrail-logs-in-log-archive-account", "org-main", US, "FAIL"),  # bucket in the account it records
    ("cloudtrail-log-file-validation", "org-main", US, "PASS"),
    ("cloudtrail-log-file-validation", "eu-legacy", EU, "FAIL"),
    ("cloudtrail-kms-encrypted", "org-main", US, "PASS"),
    ("cloudtrail-kms-encrypted", "eu-legacy", EU, "FAIL"),
    # -- KMS (us-east-1) ---------------------------------------------------------------------------------
    ("kms-key-deletion-window", "k-retire-slow", US, "PASS"),          # pending deletion, 30 days
    ("kms-key-deletion-window", "k-retire-fast", US, "FAIL"),          # pending deletion, 7 days
    ("kms-key-deletion-window", "k-org-shared", US, "PASS|NA"),        # not scheduled for deletion
    ("kms-key-policy-no-public-principal", "k-org-shared", US, "PASS"),    # "*" pinned by aws:PrincipalOrgID
    ("kms-key-policy-no-public-principal", "k-via-service", US, "PASS"),   # "*" pinned by kms:CallerAccount
    ("kms-key-policy-no-public-principal", "k-open", US, "FAIL"),
    ("kms-key-policy-no-public-principal", "k-tls-only-open", US, "FAIL"),  # condition pins no one
    ("kms-key-grants-external", "k-org-shared", US, "PASS"),           # grant to a role of this account
    ("kms-key-grants-external", "k-partner-grant", US, "FAIL"),
    # -- RDS (eu-west-1) ---------------------------------------------------------------------------------
    ("rds-instance-iam-auth", "pg-ledger", EU, "PASS"),
    ("rds-instance-iam-auth", "mysql-crm", EU, "FAIL"),
    ("rds-instance-iam-auth", "mssql-erp", EU, "NA"),                  # SQL Server has no IAM auth
    ("rds-cluster-iam-auth", "aurora-pg-orders", EU, "PASS"),
    ("rds-cluster-iam-auth", "aurora-my-reports", EU, "FAIL"),
    ("rds-instance-log-exports", "pg-ledger", EU, "PASS"),
    ("rds-instance-log-exports", "mysql-crm", EU, "FAIL"),
    ("rds-cluster-log-exports", "aurora-pg-orders", EU, "PASS"),
    ("rds-cluster-log-exports", "aurora-my-reports", EU, "FAIL"),
    ("rds-snapshot-encrypted", "snap-ledger-manual", EU, "PASS"),
    ("rds-snapshot-encrypted", "snap-crm-manual", EU, "FAIL"),
    ("rds-cluster-snapshot-encrypted", "csnap-orders-manual", EU, "PASS"),
    ("rds-cluster-snapshot-encrypted", "csnap-reports-manual", EU, "FAIL"),
    # -- EFS (eu-west-1) ---------------------------------------------------------------------------------
    ("efs-encrypted-cmk", "fs-shared-home", EU, "PASS"),
    ("efs-encrypted-cmk", "fs-scratch", EU, "FAIL"),
    ("efs-encrypted-cmk", "fs-aws-key", EU, "FAIL"),                   # aws/elasticfilesystem key
    ("efs-tls-only-policy", "fs-shared-home", EU, "PASS"),
    ("efs-tls-only-policy", "fs-scratch", EU, "FAIL"),
    ("efs-automatic-backups", "fs-shared-home", EU, "PASS"),
    ("efs-automatic-backups", "fs-scratch", EU, "FAIL"),
    # -- ElastiCache (eu-west-1) -------------------------------------------------------------------------
    ("elasticache-at-rest-encryption", "sessions-rg", EU, "PASS"),
    ("elasticache-at-rest-encryption", "cache-defaults", EU, "FAIL"),
    ("elasticache-at-rest-encryption", "transit-preferred", EU, "FAIL"),   # at rest under the AWS default key
    ("elasticache-transit-encryption", "sessions-rg", EU, "PASS"),
    ("elasticache-transit-encryption", "rbac-rg", EU, "PASS"),         # mode left to AWS: required
    ("elasticache-transit-encryption", "cache-defaults", EU, "FAIL"),
    ("elasticache-transit-encryption", "transit-preferred", EU, "FAIL"),
    ("elasticache-authentication", "sessions-rg", EU, "PASS"),         # AUTH token
    ("elasticache-authentication", "rbac-rg", EU, "PASS"),             # RBAC user group
    ("elasticache-authentication", "cache-defaults", EU, "FAIL"),
    ("elasticache-snapshot-retention", "sessions-rg", EU, "PASS"),
    ("elasticache-snapshot-retention", "cache-defaults", EU, "FAIL"),
    ("elasticache-cluster-transit-encryption", "memcache-tls", EU, "PASS"),
    ("elasticache-cluster-transit-encryption", "redis-solo", EU, "FAIL"),
    # -- Redshift (eu-west-1) ----------------------------------------------------------------------------
    ("redshift-encrypted-cmk", "warehouse-main", EU, "PASS"),
    ("redshift-encrypted-cmk", "adhoc-analytics", EU, "FAIL"),
    ("redshift-require-ssl", "adhoc-analytics", EU, "FAIL"),
    ("redshift-not-public", "warehouse-main", EU, "PASS"),
    ("redshift-not-public", "adhoc-analytics", EU, "FAIL"),
    ("redshift-snapshot-retention", "warehouse-main", EU, "PASS"),
    ("redshift-snapshot-retention", "adhoc-analytics", EU, "FAIL"),
    ("redshift-audit-logging", "warehouse-main", EU, "PASS"),
    ("redshift-audit-logging", "adhoc-analytics", EU, "FAIL"),
    # -- OpenSearch (eu-west-1) --------------------------------------------------------------------------
    ("opensearch-encrypted-cmk", "search-prod", EU, "PASS"),
    ("opensearch-encrypted-cmk", "search-sandbox", EU, "FAIL"),
    ("opensearch-node-to-node-encryption", "search-prod", EU, "PASS"),
    ("opensearch-node-to-node-encryption", "search-sandbox", EU, "FAIL"),
    ("opensearch-https-tls12", "search-prod", EU, "PASS"),
    ("opensearch-https-tls12", "search-sandbox", EU, "FAIL"),
    ("opensearch-https-tls12", "search-tls10", EU, "FAIL"),
    ("opensearch-in-vpc", "search-prod", EU, "PASS"),
    ("opensearch-in-vpc", "search-sandbox", EU, "FAIL"),
    ("opensearch-audit-logs", "search-prod", EU, "PASS"),
    ("opensearch-audit-logs", "search-sandbox", EU, "FAIL"),
    # -- SQS (eu-west-1) ---------------------------------------------------------------------------------
    ("sqs-queue-encrypted-cmk", "billing-events", EU, "PASS"),         # KmsMasterKeyId = key ARN
    ("sqs-queue-encrypted-cmk", "scratch-jobs", EU, "FAIL"),           # no encryption
    ("sqs-queue-encrypted-cmk", "audit-feed", EU, "FAIL"),             # alias/aws/sqs
    ("sqs-queue-encrypted-cmk", "sse-default", EU, "FAIL"),            # SSE-SQS (AWS's default)
    ("sqs-queue-encrypted-cmk", "uuid-key-queue", EU, "PASS"),         # KmsMasterKeyId = bare key id
    ("sqs-queue-tls-only", "billing-events", EU, "PASS"),              # Deny "SQS:*" upper case
    ("sqs-queue-tls-only", "scratch-jobs", EU, "FAIL"),
    ("sqs-queue-tls-only", "ifexists-tls", EU, "PASS"),                # BoolIfExists, sqs:*
    ("sqs-queue-tls-only", "half-tls", EU, "FAIL"),                    # Deny covers SendMessage only
    ("sqs-queue-not-public", "billing-events", EU, "PASS"),            # "*" only in the Deny
    ("sqs-queue-not-public", "partner-inbox", EU, "PASS"),             # "*" pinned by aws:PrincipalOrgID
    ("sqs-queue-not-public", "scratch-jobs", EU, "FAIL"),
    ("sqs-queue-dead-letter", "billing-events", EU, "PASS"),
    ("sqs-queue-dead-letter", "billing-events-dlq", EU, "PASS|NA"),   # is itself the dead-letter queue
    ("sqs-queue-dead-letter", "scratch-jobs", EU, "FAIL"),
    # -- SNS (eu-west-1) ---------------------------------------------------------------------------------
    ("sns-topic-encrypted-cmk", "ledger-updates", EU, "PASS"),
    ("sns-topic-encrypted-cmk", "ops-chatter", EU, "FAIL"),
    ("sns-topic-encrypted-cmk", "alerts-aws-key", EU, "FAIL"),         # alias/aws/sns
    ("sns-topic-encrypted-cmk", "ledger-alias-key", EU, "PASS"),       # a customer alias
    ("sns-topic-tls-only", "ledger-updates", EU, "PASS"),              # Deny NotAction GetTopicAttributes
    ("sns-topic-tls-only", "ops-chatter", EU, "FAIL"),                 # Deny NotAction sns:Publish
    ("sns-topic-not-public", "ledger-updates", EU, "PASS"),            # "*" pinned by AWS:SourceOwner
    ("sns-topic-not-public", "ops-chatter", EU, "FAIL"),
    ("sns-subscriptions-https", "ledger-updates", EU, "PASS"),         # https + sqs
    ("sns-subscriptions-https", "ops-chatter", EU, "FAIL"),            # http
    # -- Lambda (eu-west-1) ------------------------------------------------------------------------------
    ("lambda-env-encrypted-cmk", "invoice-mailer", EU, "PASS"),
    ("lambda-env-encrypted-cmk", "quote-renderer", EU, "PASS|NA"),     # no environment variables
    ("lambda-env-encrypted-cmk", "legacy-cron", EU, "FAIL"),           # variables under aws/lambda
    ("lambda-url-auth-required", "invoice-mailer", EU, "PASS"),
    ("lambda-url-auth-required", "quote-renderer", EU, "PASS|NA"),     # no function URL
    ("lambda-url-auth-required", "legacy-cron", EU, "FAIL"),
    ("lambda-policy-not-public", "invoice-mailer", EU, "PASS"),        # events.amazonaws.com + SourceArn
    ("lambda-policy-not-public", "legacy-cron", EU, "FAIL"),           # Principal "*"
    ("lambda-policy-not-public", "quote-renderer", EU, "PASS"),        # "*" pinned by PrincipalOrgID
    ("lambda-runtime-supported", "invoice-mailer", EU, "PASS"),
    ("lambda-runtime-supported", "legacy-cron", EU, "FAIL"),           # python3.7
    ("lambda-runtime-supported", "node20-api", EU, "FAIL"),            # deprecated 2026-04-30
    # -- ECR (us-east-1) ---------------------------------------------------------------------------------
    ("ecr-scan-on-push", "build-cache", US, "PASS"),                   # repository scanOnPush
    ("ecr-scan-on-push", "prod-payments", US, "PASS"),                 # registry scan-on-push rule prod-*
    ("ecr-scan-on-push", "sandbox-tools", US, "FAIL"),
    ("ecr-immutable-tags", "prod-payments", US, "PASS"),               # IMMUTABLE_WITH_EXCLUSION
    ("ecr-immutable-tags", "build-cache", US, "PASS"),                 # IMMUTABLE
    ("ecr-immutable-tags", "sandbox-tools", US, "FAIL"),
    ("ecr-encrypted-cmk", "prod-payments", US, "PASS"),
    ("ecr-encrypted-cmk", "sandbox-tools", US, "FAIL"),                # AES256
    ("ecr-policy-not-public", "prod-payments", US, "PASS"),            # "*" pinned by aws:PrincipalOrgID
    ("ecr-policy-not-public", "sandbox-tools", US, "FAIL"),
    ("ecr-lifecycle-policy", "prod-payments", US, "PASS"),
    ("ecr-lifecycle-policy", "sandbox-tools", US, "FAIL"),
    # -- Kinesis (eu-west-1) -----------------------------------------------------------------------------
    ("kinesis-stream-encrypted-cmk", "clickstream-eu", EU, "PASS"),
    ("kinesis-stream-encrypted-cmk", "telemetry-raw", EU, "FAIL"),
    ("kinesis-stream-encrypted-cmk", "metrics-aws-key", EU, "FAIL"),   # alias/aws/kinesis
    ("kinesis-stream-retention", "clickstream-eu", EU, "PASS"),        # 720 h
    ("kinesis-stream-retention", "metrics-aws-key", EU, "PASS"),       # exactly 168 h
    ("kinesis-stream-retention", "telemetry-raw", EU, "FAIL"),         # AWS's default 24 h
    # -- application audit logs --------------------------------------------------------------------------
    ("logs-app-audit-retention", "/app/audit", US, "PASS"),            # 400 days
    ("logs-app-audit-retention", "/app/audit", EU, "FAIL"),            # 30 days
    ("logs-app-audit-kms", "/app/audit", US, "PASS"),
    ("logs-app-audit-kms", "/app/audit", EU, "FAIL"),
    # -- more ----------------------------------------------------------------------------------------------
    ("dynamodb-deletion-protection", "orders-table", EU, "PASS"),
    ("dynamodb-deletion-protection", "sessions-table", EU, "FAIL"),
    ("secretsmanager-cmk", "db/ledger", EU, "PASS"),
    ("secretsmanager-cmk", "api/token", EU, "FAIL"),
    ("secretsmanager-cmk", "db/reporting", EU, "PASS"),                # KmsKeyId = a customer alias
    ("ec2-snapshot-encrypted", "snap-vol-encrypted", EU, "PASS"),
    ("ec2-snapshot-encrypted", "snap-vol-plain", EU, "FAIL"),
    ("eks-endpoint-not-public", "platform-private", EU, "PASS"),
    ("eks-endpoint-not-public", "platform-open", EU, "FAIL"),
    ("eks-endpoint-not-public", "platform-office", EU, "PASS"),        # public, 198.51.100.0/24 only
    ("backup-vault-cmk", "vault-cmk", EU, "PASS"),
    ("backup-vault-cmk", "vault-default", EU, "FAIL"),
    ("s3-bucket-policy-not-public", "unseen-vpce-only", None, "PASS"),  # "*" pinned by aws:SourceVpce
    ("s3-bucket-policy-not-public", "unseen-tls-only", None, "PASS"),   # only a Deny to "*"
    ("s3-bucket-policy-not-public", "unseen-open-read", None, "FAIL"),
    ("s3-bucket-policy-not-public", "unseen-office-ip", None, "PASS"),  # aws:SourceIp 203.0.113.0/24
    ("s3-bucket-policy-not-public", "unseen-ip-any", None, "FAIL"),     # aws:SourceIp 0.0.0.0/0 pins nothing
]

# Cases where the catalog disagrees with EXPECTED: (check, label, region) -> why the check is wrong.
# (check, resource, region) -> why the catalog disagrees with AWS's semantics: none open. Fixed after this
# review: kms-key-grants-external judged only keys already holding an external grant (a key with internal
# grants only got no finding); lambda_deprecated_runtimes lacked nodejs20.x (deprecated 2026-04-30).
DISAGREEMENTS: dict = {}


# -- the estate --------------------------------------------------------------------------------------------

def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def cmk(session, alias=None, policy=None) -> str:
    kms = session.client("kms")
    args = {"Description": alias or "unseen data key"}
    if policy:
        args["Policy"] = policy
    arn = kms.create_key(**args)["KeyMetadata"]["Arn"]
    if alias:
        kms.create_alias(AliasName=f"alias/{alias}", TargetKeyId=arn)
    return arn


def self_signed_cert(session, name: str) -> str:
    """An ACM certificate (imported, self-signed) for listeners and CloudFront."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=300))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return session.client("acm").import_certificate(Certificate=pem, PrivateKey=key_pem)["CertificateArn"]


def build_kms(us) -> dict:
    kms = us.client("kms")
    root = {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*", "Resource": "*"}
    org = {"Sid": "org", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["kms:Decrypt", "kms:DescribeKey"],
           "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}}}
    via = {"Sid": "via", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["kms:Encrypt", "kms:Decrypt"],
           "Resource": "*", "Condition": {"StringEquals": {"kms:CallerAccount": ACCOUNT,
                                                           "kms:ViaService": "s3.us-east-1.amazonaws.com"}}}
    open_ = {"Sid": "open", "Effect": "Allow", "Principal": "*", "Action": ["kms:Encrypt", "kms:Decrypt"],
             "Resource": "*"}
    tls_open = dict(open_, Sid="tls-open", Condition={"Bool": {"aws:SecureTransport": "true"}})
    ids = {"k-org-shared": cmk(us, "k-org-shared", doc(root, org)),
           "k-tls-only-open": cmk(us, "k-tls-only-open", doc(root, tls_open)),
           "k-via-service": cmk(us, "k-via-service", doc(root, via)),
           "k-open": cmk(us, "k-open", doc(root, open_)),
           "k-partner-grant": cmk(us, "k-partner-grant"),
           "k-retire-slow": cmk(us, "k-retire-slow"),
           "k-retire-fast": cmk(us, "k-retire-fast")}
    ids = {label: arn.rsplit("/", 1)[1] for label, arn in ids.items()}  # moto's KMS takes key ids here
    kms.create_grant(KeyId=ids["k-org-shared"], GranteePrincipal=f"arn:aws:iam::{ACCOUNT}:role/batch-runner",
                     Operations=["Decrypt"])
    kms.create_grant(KeyId=ids["k-partner-grant"], GranteePrincipal=f"arn:aws:iam::{EXTERNAL}:role/partner-etl",
                     Operations=["Decrypt", "GenerateDataKey"])
    kms.schedule_key_deletion(KeyId=ids["k-retire-slow"], PendingWindowInDays=30)
    kms.schedule_key_deletion(KeyId=ids["k-retire-fast"], PendingWindowInDays=7)
    return ids


def build_iam(us) -> None:
    iam = us.client("iam")
    admin = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})

    def role(name, principal, condition=None, seconds=3600, policy=None):
        stmt = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
        if condition:
            stmt["Condition"] = condition
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc(stmt), MaxSessionDuration=seconds)
        if policy:
            iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=policy)
    role("partner-readonly", {"AWS": f"arn:aws:iam::{EXTERNAL}:root"},
         {"StringEquals": {"sts:ExternalId": "c0ffee-partner"}}, 3600)
    role("vendor-support", {"AWS": EXTERNAL}, None, 43200)
    role("batch-runner", {"Service": "ec2.amazonaws.com"}, None, 43200)
    role("fn-exec", {"Service": "lambda.amazonaws.com"})
    role("breakglass-admin", {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         {"Bool": {"aws:MultiFactorAuthPresent": "true"}}, 3600, admin)
    role("ops-admin", {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, None, 3600, admin)
    role("ci-deployer-admin", {"Service": "codebuild.amazonaws.com"}, None, 3600, admin)
    role("admin-ifexists", {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}, 3600, admin)


def visibility(name, on=True) -> dict:
    return {"SampledRequestsEnabled": on, "CloudWatchMetricsEnabled": on, "MetricName": name}


def managed_rule(group="AWSManagedRulesCommonRuleSet", override="None", metrics=True) -> dict:
    return {"Name": group, "Priority": 1, "OverrideAction": {override: {}},
            "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": group}},
            "VisibilityConfig": visibility(group, metrics)}


def rate_rule(metrics=True) -> dict:
    return {"Name": "rate-cap", "Priority": 2, "Action": {"Block": {}},
            "Statement": {"RateBasedStatement": {"Limit": 2000, "AggregateKeyType": "IP"}},
            "VisibilityConfig": visibility("rate-cap", metrics)}


def web_acl(session, scope, name, default, rules, metrics=True, logged=False) -> str:
    waf = session.client("wafv2")
    arn = waf.create_web_acl(Name=name, Scope=scope, DefaultAction={default: {}}, Rules=rules,
                             VisibilityConfig=visibility(name, metrics))["Summary"]["ARN"]
    if logged:
        region = session.region_name
        group = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:aws-waf-logs-{name}"
        waf.put_logging_configuration(LoggingConfiguration={"ResourceArn": arn, "LogDestinationConfigs": [group]})
    return arn


def build_waf(us, eu) -> dict:
    web_acl(eu, "REGIONAL", "regional-strict", "Block", [managed_rule(), rate_rule()], logged=True)
    web_acl(eu, "REGIONAL", "regional-bare", "Allow", [], metrics=False)
    web_acl(eu, "REGIONAL", "regional-rule-dark", "Block", [managed_rule(), rate_rule(metrics=False)], logged=True)
    return {"edge-strict": web_acl(us, "CLOUDFRONT", "edge-strict", "Block", [managed_rule()], logged=True),
            "edge-lenient": web_acl(us, "CLOUDFRONT", "edge-lenient", "Allow",
                                    [managed_rule(override="Count", metrics=False)]),
            "edge-empty": web_acl(us, "CLOUDFRONT", "edge-empty", "Allow", [], metrics=False)}


CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def behaviour(origin, viewer, path=None) -> dict:
    out = {"TargetOriginId": origin, "ViewerProtocolPolicy": viewer, "CachePolicyId": CACHING_OPTIMIZED}
    if path:
        out["PathPattern"] = path
    return out


def custom_origin(ident, domain, policy, protocols=("TLSv1.2",)) -> dict:
    return {"Id": ident, "DomainName": domain,
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": policy,
                                   "OriginSslProtocols": {"Quantity": len(protocols), "Items": list(protocols)}}}


def distribution(cf, label, origins, default, extra=(), cert=None, acl="", logging_bucket=None) -> str:
    config = {"CallerReference": label, "Comment": label, "Enabled": True,
              "Origins": {"Quantity": len(origins), "Items": origins},
              "DefaultCacheBehavior": default,
              "CacheBehaviors": {"Quantity": len(extra), "Items": list(extra)},
              "ViewerCertificate": cert or {"CloudFrontDefaultCertificate": True},
              "WebACLId": acl,
              "Logging": {"Enabled": bool(logging_bucket), "IncludeCookies": False,
                          "Bucket": logging_bucket or "", "Prefix": label if logging_bucket else ""}}
    return cf.create_distribution(DistributionConfig=config)["Distribution"]["Id"]


def build_cloudfront(us, acls) -> dict:
    cf = us.client("cloudfront")
    us.client("s3").create_bucket(Bucket="unseen-cf-logs")
    cert_arn = self_signed_cert(us, "www.unseen.example")

    def cert(version):
        return {"ACMCertificateArn": cert_arn, "SSLSupportMethod": "sni-only", "MinimumProtocolVersion": version}
    s3_origin = {"Id": "assets", "DomainName": "unseen-assets.s3.eu-west-1.amazonaws.com",
                 "S3OriginConfig": {"OriginAccessIdentity": ""}}
    return {
        "dist-s3-site": distribution(cf, "dist-s3-site", [s3_origin], behaviour("assets", "redirect-to-https"),
                                     cert=cert("TLSv1.2_2021"), acl=acls["edge-strict"],
                                     logging_bucket="unseen-cf-logs.s3.amazonaws.com"),
        "dist-api": distribution(cf, "dist-api", [custom_origin("api", "api.unseen.example", "https-only")],
                                 behaviour("api", "https-only"), [behaviour("api", "allow-all", "/legacy/*")],
                                 cert=cert("TLSv1.1_2016"), acl=acls["edge-lenient"]),
        "dist-media": distribution(cf, "dist-media",
                                   [custom_origin("media", "media.unseen.example", "https-only", ("TLSv1", "TLSv1.2")),
                                    custom_origin("video", "video.unseen.example", "match-viewer")],
                                   behaviour("media", "redirect-to-https"),
                                   [behaviour("video", "redirect-to-https", "/video/*")], cert=cert("TLSv1.2_2019")),
        "dist-plain": distribution(cf, "dist-plain", [custom_origin("plain", "origin.unseen.example", "http-only")],
                                   behaviour("plain", "allow-all")),
    }


def named(ec2, resource_id, name) -> None:
    ec2.create_tags(Resources=[resource_id], Tags=[{"Key": "Name", "Value": name}])


def security_group(ec2, vpc, name, egress=(), ingress=(), keep_default=False) -> str:
    gid = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    named(ec2, gid, name)
    if not keep_default:
        ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    if egress:
        ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=list(egress))
    if ingress:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=list(ingress))
    return gid


def tcp(port, to=None, cidr=None, v6=None, group=None, protocol="tcp") -> dict:
    out = {"IpProtocol": protocol, "FromPort": port, "ToPort": port if to is None else to}
    if cidr:
        out["IpRanges"] = [{"CidrIp": cidr}]
    if v6:
        out["Ipv6Ranges"] = [{"CidrIpv6": v6}]
    if group:
        out["UserIdGroupPairs"] = [{"GroupId": group}]
    return out


def build_security_groups(eu) -> None:
    ec2 = eu.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    vid, vpc_cidr = vpc["VpcId"], vpc["CidrBlock"]  # 172.31.0.0/16
    narrow = security_group(ec2, vid, "app-egress-narrow",
                            egress=[tcp(443, cidr="10.20.30.40/32"), tcp(5432, cidr=vpc_cidr)],
                            ingress=[tcp(8443, cidr="10.8.0.0/16"), tcp(8443, cidr="172.31.16.0/20")])
    security_group(ec2, vid, "db-client", egress=[tcp(5432, group=narrow)])
    security_group(ec2, vid, "batch-wide-egress", egress=[tcp(0, 65535, cidr="0.0.0.0/0")],
                   ingress=[tcp(22, cidr="198.51.100.7/32")])
    security_group(ec2, vid, "default-egress-untouched", keep_default=True)
    security_group(ec2, vid, "v6-egress", egress=[tcp(53, v6="::/0", protocol="udp")])
    security_group(ec2, vid, "supernet-egress", egress=[tcp(443, cidr="10.0.0.0/7")])


def route_table(ec2, vpc, name, subnets, **target) -> None:
    rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    named(ec2, rt, name)
    if target:
        ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", **target)
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=rt, SubnetId=subnet)


def nat_gateway(ec2, subnet, name) -> str:
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=alloc)["NatGateway"]["NatGatewayId"]
    named(ec2, nat, name)
    return nat


def build_network(eu) -> None:
    ec2 = eu.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    named(ec2, vpc, "unseen-core")
    subnets = {}
    for name, cidr, az in (("pub-a", "10.40.0.0/24", "a"), ("pub-b", "10.40.1.0/24", "b"),
                           ("priv-a", "10.40.10.0/24", "a"), ("priv-b", "10.40.11.0/24", "b"),
                           ("isolated-c", "10.40.20.0/24", "c")):
        subnets[name] = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=EU + az)["Subnet"]["SubnetId"]
        named(ec2, subnets[name], name)
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    route_table(ec2, vpc, "rt-public", [subnets["pub-a"], subnets["pub-b"]], GatewayId=igw)
    nat = nat_gateway(ec2, subnets["pub-a"], "nat-a")
    route_table(ec2, vpc, "rt-priv-a", [subnets["priv-a"]], NatGatewayId=nat)
    route_table(ec2, vpc, "rt-priv-b", [subnets["priv-b"]], NatGatewayId=nat)
    route_table(ec2, vpc, "rt-isolated", [subnets["isolated-c"]])
    eu.client("logs").create_log_group(logGroupName="/vpc/unseen-core")
    ec2.create_flow_logs(ResourceIds=[subnets["pub-a"]], ResourceType="Subnet", TrafficType="ALL",
                         LogGroupName="/vpc/unseen-core",
                         DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/flow-logs")
    dark = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    dark_subnet = ec2.create_subnet(VpcId=dark, CidrBlock="10.50.0.0/24", AvailabilityZone=EU + "b")["Subnet"]
    nat_gateway(ec2, dark_subnet["SubnetId"], "nat-dark")


def build_load_balancers(eu) -> None:
    ec2, elb = eu.client("ec2"), eu.client("elbv2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
    cert = [{"CertificateArn": self_signed_cert(eu, "shop.unseen.example")}]
    tg = elb.create_target_group(Name="backoffice-http", Protocol="HTTP", Port=8080, VpcId=vpc,
                                 TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    tcp_tg = elb.create_target_group(Name="mq-tcp", Protocol="TCP", Port=1883, VpcId=vpc,
                                     TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    forward = [{"Type": "forward", "TargetGroupArn": tg}]

    def balancer(name, scheme, kind="application"):
        return elb.create_load_balancer(Name=name, Subnets=subnets, Scheme=scheme, Type=kind)["LoadBalancers"][0][
            "LoadBalancerArn"]
    store = balancer("storefront-alb", "internet-facing")
    elb.create_listener(LoadBalancerArn=store, Protocol="HTTPS", Port=443, Certificates=cert,
                        SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06", DefaultActions=forward)
    elb.create_listener(LoadBalancerArn=store, Protocol="HTTP", Port=80, DefaultActions=[{
        "Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}])
    elb.modify_load_balancer_attributes(LoadBalancerArn=store, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "true"},
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"}])
    back = balancer("backoffice-alb", "internal")
    elb.create_listener(LoadBalancerArn=back, Protocol="HTTPS", Port=443, Certificates=cert,
                        SslPolicy="ELBSecurityPolicy-TLS-1-2-2017-01", DefaultActions=forward)
    elb.create_listener(LoadBalancerArn=back, Protocol="HTTP", Port=80, DefaultActions=forward)
    mq = balancer("mq-nlb", "internal", "network")
    elb.create_listener(LoadBalancerArn=mq, Protocol="TLS", Port=8883, Certificates=cert,
                        SslPolicy="ELBSecurityPolicy-FS-1-2-Res-2020-10",
                        DefaultActions=[{"Type": "forward", "TargetGroupArn": tcp_tg}])


def build_trails(us, eu, key_arn) -> None:
    us.client("s3").create_bucket(Bucket="unseen-acct-trail-logs")
    us.client("cloudtrail").create_trail(Name="org-main", S3BucketName="unseen-acct-trail-logs",
                                         IsMultiRegionTrail=True, EnableLogFileValidation=True, KmsKeyId=key_arn)
    eu.client("s3").create_bucket(Bucket="unseen-eu-trail-logs",
                                  CreateBucketConfiguration={"LocationConstraint": EU})
    eu.client("cloudtrail").create_trail(Name="eu-legacy", S3BucketName="unseen-eu-trail-logs")
    for session, name in ((us, "org-main"), (eu, "eu-legacy")):
        session.client("cloudtrail").start_logging(Name=name)


def build_rds(eu, key_arn) -> None:
    rds = eu.client("rds")

    def instance(name, engine, **extra):
        rds.create_db_instance(DBInstanceIdentifier=name, Engine=engine, DBInstanceClass="db.t3.medium",
                               AllocatedStorage=20, MasterUsername="admin_user", MasterUserPassword="Passw0rd-unseen",
                               **extra)
    instance("pg-ledger", "postgres", StorageEncrypted=True, KmsKeyId=key_arn, EnableIAMDatabaseAuthentication=True,
             EnableCloudwatchLogsExports=["postgresql", "upgrade"])
    instance("mysql-crm", "mysql")
    instance("mssql-erp", "sqlserver-se", LicenseModel="license-included")

    def cluster(name, engine, **extra):
        rds.create_db_cluster(DBClusterIdentifier=name, Engine=engine, MasterUsername="admin_user",
                              MasterUserPassword="Passw0rd-unseen", **extra)
    cluster("aurora-pg-orders", "aurora-postgresql", StorageEncrypted=True, KmsKeyId=key_arn,
            EnableIAMDatabaseAuthentication=True, EnableCloudwatchLogsExports=["postgresql"])
    cluster("aurora-my-reports", "aurora-mysql")
    rds.create_db_snapshot(DBSnapshotIdentifier="snap-ledger-manual", DBInstanceIdentifier="pg-ledger")
    rds.create_db_snapshot(DBSnapshotIdentifier="snap-crm-manual", DBInstanceIdentifier="mysql-crm")
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="csnap-orders-manual",
                                   DBClusterIdentifier="aurora-pg-orders")
    rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier="csnap-reports-manual",
                                   DBClusterIdentifier="aurora-my-reports")


TLS_DENY_EFS = {"Sid": "tls", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def build_efs(eu, key_arn) -> None:
    efs = eu.client("efs")

    def file_system(name, **extra):
        fs = efs.create_file_system(CreationToken=name, Tags=[{"Key": "Name", "Value": name}], **extra)
        return fs["FileSystemId"]
    home = file_system("fs-shared-home", Encrypted=True, KmsKeyId=key_arn, Backup=True)
    efs.put_file_system_policy(FileSystemId=home, Policy=doc(dict(TLS_DENY_EFS, Resource=
                                                                  f"arn:aws:elasticfilesystem:{EU}:{ACCOUNT}:file-system/{home}")))
    file_system("fs-scratch", Encrypted=False)
    file_system("fs-aws-key", Encrypted=True)


def build_elasticache(eu, key_arn) -> None:
    ec = eu.client("elasticache")
    # moto has no create_user_group: the replication group names the RBAC user group by id

    def group(name, **extra):
        ec.create_replication_group(ReplicationGroupId=name, ReplicationGroupDescription=name, Engine="redis",
                                    CacheNodeType="cache.t4g.small", NumCacheClusters=2, **extra)
    group("sessions-rg", AtRestEncryptionEnabled=True, KmsKeyId=key_arn, TransitEncryptionEnabled=True,
          TransitEncryptionMode="required", AuthToken="Str0ng-Auth-Token-0123456789", SnapshotRetentionLimit=5)
    group("rbac-rg", AtRestEncryptionEnabled=True, KmsKeyId=key_arn, TransitEncryptionEnabled=True,
          UserGroupIds=["app-users"], SnapshotRetentionLimit=1)
    group("cache-defaults")
    group("transit-preferred", TransitEncryptionEnabled=True, TransitEncryptionMode="preferred",
          AtRestEncryptionEnabled=True)
    ec.create_cache_cluster(CacheClusterId="memcache-tls", Engine="memcached", CacheNodeType="cache.t4g.small",
                            NumCacheNodes=1, TransitEncryptionEnabled=True)
    ec.create_cache_cluster(CacheClusterId="redis-solo", Engine="redis", CacheNodeType="cache.t4g.small",
                            NumCacheNodes=1)


def build_redshift(eu, key_arn) -> None:
    rs = eu.client("redshift")
    for name in ("tls-required", "tls-optional"):  # moto cannot modify_cluster_parameter_group (require_ssl)
        rs.create_cluster_parameter_group(ParameterGroupName=name, ParameterGroupFamily="redshift-1.0",
                                          Description=name)

    def cluster(name, **extra):
        rs.create_cluster(ClusterIdentifier=name, NodeType="ra3.xlplus", MasterUsername="awsuser",
                          MasterUserPassword="Passw0rd-unseen1", ClusterType="single-node", **extra)
    cluster("warehouse-main", Encrypted=True, KmsKeyId=key_arn, PubliclyAccessible=False,
            ClusterParameterGroupName="tls-required", AutomatedSnapshotRetentionPeriod=35)
    eu.client("s3").create_bucket(Bucket="unseen-redshift-audit", CreateBucketConfiguration={"LocationConstraint": EU})
    rs.enable_logging(ClusterIdentifier="warehouse-main", BucketName="unseen-redshift-audit", S3KeyPrefix="audit/")
    cluster("adhoc-analytics", Encrypted=False, PubliclyAccessible=True, ClusterParameterGroupName="tls-optional",
            AutomatedSnapshotRetentionPeriod=1)


def build_opensearch(eu, key_arn) -> None:
    os_ = eu.client("opensearch")
    ec2 = eu.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = f"arn:aws:logs:{EU}:{ACCOUNT}:log-group:/aws/opensearch/search-prod/audit"
    os_.create_domain(DomainName="search-prod", EngineVersion="OpenSearch_2.11",
                      EncryptionAtRestOptions={"Enabled": True, "KmsKeyId": key_arn},
                      NodeToNodeEncryptionOptions={"Enabled": True},
                      DomainEndpointOptions={"EnforceHTTPS": True, "TLSSecurityPolicy": "Policy-Min-TLS-1-2-PFS-2023-10"},
                      VPCOptions={"SubnetIds": [subnet]},
                      AdvancedSecurityOptions={"Enabled": True, "InternalUserDatabaseEnabled": True,
                                               "MasterUserOptions": {"MasterUserName": "admin",
                                                                     "MasterUserPassword": "Passw0rd-unseen1!"}},
                      LogPublishingOptions={"AUDIT_LOGS": {"CloudWatchLogsLogGroupArn": group, "Enabled": True}})
    os_.create_domain(DomainName="search-sandbox", EngineVersion="OpenSearch_2.11")
    os_.create_domain(DomainName="search-tls10", EngineVersion="OpenSearch_2.11",
                      DomainEndpointOptions={"EnforceHTTPS": True, "TLSSecurityPolicy": "Policy-Min-TLS-1-0-2019-07"})


def queue_arn(name) -> str:
    return f"arn:aws:sqs:{EU}:{ACCOUNT}:{name}"


def build_sqs(eu, key_arn) -> None:
    sqs = eu.client("sqs")
    sqs.create_queue(QueueName="billing-events-dlq", Attributes={"KmsMasterKeyId": key_arn})
    billing = doc({"Sid": "OnlyTls", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "SQS:*",
                   "Resource": queue_arn("billing-events"), "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
                  {"Sid": "FromTopic", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                   "Action": "sqs:SendMessage", "Resource": queue_arn("billing-events"),
                   "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:{EU}:{ACCOUNT}:ledger-updates"}}})
    sqs.create_queue(QueueName="billing-events", Attributes={
        "KmsMasterKeyId": key_arn, "Policy": billing,
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": queue_arn("billing-events-dlq"), "maxReceiveCount": "5"})})
    sqs.create_queue(QueueName="partner-inbox", Attributes={"Policy": doc(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sqs:SendMessage",
         "Resource": queue_arn("partner-inbox"), "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}}})})
    sqs.create_queue(QueueName="scratch-jobs", Attributes={"SqsManagedSseEnabled": "false", "Policy": doc(
        {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": queue_arn("scratch-jobs")})})
    sqs.create_queue(QueueName="audit-feed", Attributes={"KmsMasterKeyId": "alias/aws/sqs"})
    sqs.create_queue(QueueName="sse-default")
    sqs.create_queue(QueueName="uuid-key-queue", Attributes={"KmsMasterKeyId": key_arn.rsplit("/", 1)[1]})
    for name, operator, action in (("ifexists-tls", "BoolIfExists", "sqs:*"), ("half-tls", "Bool", "sqs:SendMessage")):
        sqs.create_queue(QueueName=name, Attributes={"Policy": doc(
            {"Effect": "Deny", "Principal": "*", "Action": action, "Resource": queue_arn(name),
             "Condition": {operator: {"aws:SecureTransport": "false"}}})})


def build_sns(eu, key_arn) -> None:
    sns = eu.client("sns")
    ledger = sns.create_topic(Name="ledger-updates", Attributes={"KmsMasterKeyId": key_arn})["TopicArn"]
    sns.set_topic_attributes(TopicArn=ledger, AttributeName="Policy", AttributeValue=json.dumps({
        "Version": "2008-10-17", "Statement": [
            {"Sid": "owner", "Effect": "Allow", "Principal": {"AWS": "*"},
             "Action": ["SNS:Publish", "SNS:Subscribe", "SNS:GetTopicAttributes"], "Resource": ledger,
             "Condition": {"StringEquals": {"AWS:SourceOwner": ACCOUNT}}},
            {"Sid": "tls", "Effect": "Deny", "Principal": "*", "NotAction": ["SNS:GetTopicAttributes"],
             "Resource": ledger, "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    sns.subscribe(TopicArn=ledger, Protocol="https", Endpoint="https://127.0.0.1:9/ledger-hook")
    sns.subscribe(TopicArn=ledger, Protocol="sqs", Endpoint=queue_arn("billing-events"))
    ops = sns.create_topic(Name="ops-chatter")["TopicArn"]
    sns.set_topic_attributes(TopicArn=ops, AttributeName="Policy", AttributeValue=doc(
        {"Sid": "anyone", "Effect": "Allow", "Principal": "*", "Action": "sns:Subscribe", "Resource": ops},
        {"Sid": "tls", "Effect": "Deny", "Principal": "*", "NotAction": "sns:Publish", "Resource": ops,
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}))
    sns.subscribe(TopicArn=ops, Protocol="http", Endpoint="http://127.0.0.1:9/ops-hook")
    sns.create_topic(Name="alerts-aws-key", Attributes={"KmsMasterKeyId": "alias/aws/sns"})
    sns.create_topic(Name="ledger-alias-key", Attributes={"KmsMasterKeyId": "alias/unseen-eu-data"})


def lambda_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "def main(event, context):\n    return event\n")
    return buf.getvalue()


def build_lambda(eu, key_arn) -> None:
    lam = eu.client("lambda")
    role = f"arn:aws:iam::{ACCOUNT}:role/fn-exec"

    def function(name, runtime="python3.12", **extra):
        lam.create_function(FunctionName=name, Runtime=runtime, Role=role, Handler="handler.main",
                            Code={"ZipFile": lambda_zip()}, **extra)
    function("quote-renderer")
    lam.add_permission(FunctionName="quote-renderer", StatementId="org", Action="lambda:InvokeFunction",
                       Principal="*", PrincipalOrgID=ORG)
    function("node20-api", runtime="nodejs20.x")
    function("invoice-mailer", Environment={"Variables": {"SMTP_HOST": "mail.unseen.example"}}, KMSKeyArn=key_arn)
    lam.create_function_url_config(FunctionName="invoice-mailer", AuthType="AWS_IAM")
    lam.add_permission(FunctionName="invoice-mailer", StatementId="nightly", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com",
                       SourceArn=f"arn:aws:events:{EU}:{ACCOUNT}:rule/nightly-invoices")
    function("legacy-cron", runtime="python3.7", Environment={"Variables": {"MODE": "batch"}})
    lam.create_function_url_config(FunctionName="legacy-cron", AuthType="NONE")
    lam.add_permission(FunctionName="legacy-cron", StatementId="anyone", Action="lambda:InvokeFunction",
                       Principal="*")


def build_ecr(us, key_arn) -> None:
    ecr = us.client("ecr")
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[{
        "scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "prod-*", "filterType": "WILDCARD"}]}])
    ecr.create_repository(repositoryName="prod-payments", imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                          imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}],
                          encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key_arn})
    ecr.set_repository_policy(repositoryName="prod-payments", policyText=doc(
        {"Sid": "org-pull", "Effect": "Allow", "Principal": {"AWS": "*"},
         "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORG}}}))
    ecr.put_lifecycle_policy(repositoryName="prod-payments", lifecyclePolicyText=json.dumps({"rules": [{
        "rulePriority": 1, "description": "expire untagged", "action": {"type": "expire"},
        "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                      "countNumber": 14}}]}))
    ecr.create_repository(repositoryName="sandbox-tools")
    ecr.set_repository_policy(repositoryName="sandbox-tools", policyText=doc(
        {"Sid": "anyone-pull", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}))
    # KMS without kmsKey (AWS's aws/ecr key) is left out: moto invents a key ARN KMS does not know
    ecr.create_repository(repositoryName="build-cache", imageTagMutability="IMMUTABLE",
                          imageScanningConfiguration={"scanOnPush": True})


def build_kinesis(eu, key_arn) -> None:
    kin = eu.client("kinesis")
    for name in ("clickstream-eu", "telemetry-raw", "metrics-aws-key"):
        kin.create_stream(StreamName=name, ShardCount=1)
    kin.start_stream_encryption(StreamName="clickstream-eu", EncryptionType="KMS", KeyId=key_arn)
    kin.increase_stream_retention_period(StreamName="clickstream-eu", RetentionPeriodHours=720)
    kin.start_stream_encryption(StreamName="metrics-aws-key", EncryptionType="KMS", KeyId="alias/aws/kinesis")
    kin.increase_stream_retention_period(StreamName="metrics-aws-key", RetentionPeriodHours=168)


def build_more(us, eu, us_key, eu_key) -> None:
    us.client("logs").create_log_group(logGroupName="/app/audit", kmsKeyId=us_key)
    us.client("logs").put_retention_policy(logGroupName="/app/audit", retentionInDays=400)
    eu.client("logs").create_log_group(logGroupName="/app/audit")
    eu.client("logs").put_retention_policy(logGroupName="/app/audit", retentionInDays=30)
    ddb = eu.client("dynamodb")
    for name, protected in (("orders-table", True), ("sessions-table", False)):
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", DeletionProtectionEnabled=protected,
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    sm = eu.client("secretsmanager")
    sm.create_secret(Name="db/ledger", SecretString="placeholder-ledger", KmsKeyId=eu_key)
    sm.create_secret(Name="api/token", SecretString="placeholder-token")
    sm.create_secret(Name="db/reporting", SecretString="placeholder-reporting", KmsKeyId="alias/unseen-eu-data")
    ec2 = eu.client("ec2")
    for name, extra in (("snap-vol-encrypted", {"Encrypted": True, "KmsKeyId": eu_key}), ("snap-vol-plain", {})):
        vol = ec2.create_volume(AvailabilityZone=EU + "a", Size=8, **extra)["VolumeId"]
        ec2.create_snapshot(VolumeId=vol, Description=name, TagSpecifications=[
            {"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": name}]}])
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])[
        "Subnets"]][:2]
    eks = eu.client("eks")
    for name, public, cidrs in (("platform-private", False, None), ("platform-open", True, None),
                                ("platform-office", True, ["198.51.100.0/24"])):
        vpc_config = {"subnetIds": subnets, "endpointPublicAccess": public, "endpointPrivateAccess": True}
        if cidrs:
            vpc_config["publicAccessCidrs"] = cidrs
        eks.create_cluster(name=name, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks-cluster",
                           resourcesVpcConfig=vpc_config)
    backup = eu.client("backup")
    backup.create_backup_vault(BackupVaultName="vault-cmk", EncryptionKeyArn=eu_key)
    backup.create_backup_vault(BackupVaultName="vault-default")
    s3 = us.client("s3")
    policies = {
        "unseen-vpce-only": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                             "Resource": "arn:aws:s3:::unseen-vpce-only/*",
                             "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}},
        "unseen-tls-only": {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                            "Resource": ["arn:aws:s3:::unseen-tls-only", "arn:aws:s3:::unseen-tls-only/*"],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        "unseen-open-read": {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
                             "Resource": "arn:aws:s3:::unseen-open-read/*"},
        "unseen-office-ip": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                             "Resource": "arn:aws:s3:::unseen-office-ip/*",
                             "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}},
        "unseen-ip-any": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                          "Resource": "arn:aws:s3:::unseen-ip-any/*",
                          "Condition": {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}}}
    for bucket, statement in policies.items():
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_policy(Bucket=bucket, Policy=doc(statement))


def build_estate() -> dict:
    us, eu = boto3.Session(region_name=US), boto3.Session(region_name=EU)
    ids = {"kms": build_kms(us)}
    build_iam(us)
    us_key, eu_key = cmk(us, "unseen-us-data"), cmk(eu, "unseen-eu-data")
    ids["distributions"] = build_cloudfront(us, build_waf(us, eu))
    build_security_groups(eu)
    build_network(eu)
    build_load_balancers(eu)
    build_trails(us, eu, us_key)
    for builder in (build_rds, build_efs, build_elasticache, build_redshift, build_opensearch, build_sqs, build_sns,
                    build_lambda, build_kinesis):
        builder(eu, eu_key)
    build_ecr(us, us_key)
    build_more(us, eu, us_key, eu_key)
    return ids


# -- one scan, judged case by case -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def unseen():
    """The estate under in-process moto and the findings of ONE scan of both regions."""
    from moto import mock_aws
    with pytest.MonkeyPatch.context() as patch:
        for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AUDITBOOK_DB"):
            patch.delenv(key, raising=False)
        for key, value in FAKE_ENV.items():
            patch.setenv(key, value)
        with mock_aws():
            ids = build_estate()
            collection, findings = collect_current(regions=(US, EU))
            from auditbook.catalog.model import load_catalog
            checks = {c.id for c in load_catalog().checks}
            yield {"ids": ids, "collection": collection, "findings": findings, "checks": checks}


def identifier(ids: dict, label: str) -> str:
    """What a finding calls the resource labelled `label` here (keys and distributions have ids)."""
    return ids["kms"].get(label) or ids["distributions"].get(label) or label


def verdicts(unseen, check, label, region) -> list:
    ident = identifier(unseen["ids"], label)
    found = [f for f in unseen["findings"] if f.check == check
             and (region is None or f.region == region)
             and ident in (f.resource_name, f.resource_id, f.resource, f.resource.rsplit(":", 1)[-1],
                           f.resource.rsplit("/", 1)[-1])]
    return found


def case_id(case) -> str:
    check, label, region, expected = case
    return f"{check}[{label}@{region or 'global'}]={expected}"


def cases() -> list:
    out = []
    for case in EXPECTED:
        reason = DISAGREEMENTS.get(case[:3])
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(*case, id=case_id(case), marks=marks))
    return out


@pytest.mark.parametrize("check,label,region,expected", cases())
def test_verdict_matches_aws_semantics(unseen, check, label, region, expected):
    assert check in unseen["checks"], f"{check} is not in the catalog: a verdict about it proves nothing"
    found = verdicts(unseen, check, label, region)
    got = "NA" if not found else "|".join(sorted({f.status for f in found}))
    detail = [(f.status, f.resource_name, f.message[:300]) for f in found]
    assert len(found) <= 1, f"{check} {label}: several findings {detail}"
    assert got in expected.split("|"), f"{check} {label}: expected {expected}, got {got} {detail}"


def test_the_scan_has_no_collection_gap(unseen):
    """An independent estate is fully readable: no list call and no per-resource read failed."""
    collection = unseen["collection"]
    assert [g.reason() for g in collection.gaps] == []
    assert [(r.id, [g.reason() for g in r.gaps.values()]) for r in collection.records if r.gaps] == []
