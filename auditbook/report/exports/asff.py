"""AWS Security Finding Format (ASFF) for Security Hub, and BatchImportFindings."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Optional

from auditbook.errors import ScanAborted
from auditbook.report.exports.view import RunView

SCHEMA_VERSION = "2018-10-08"
SEVERITY = {"critical": "CRITICAL", "high": "HIGH", "medium": "MEDIUM", "low": "LOW", "informational": "INFORMATIONAL"}
COMPLIANCE = {"PASS": "PASSED", "FAIL": "FAILED", "ERROR": "NOT_AVAILABLE", "EXCEPTED": "FAILED"}
WORKFLOW = {"PASS": "RESOLVED", "FAIL": "NEW", "ERROR": "NEW", "EXCEPTED": "SUPPRESSED"}
RESOURCE_TYPE = {
    "aws.s3.bucket": "AwsS3Bucket", "aws.ec2.security_group": "AwsEc2SecurityGroup", "aws.ec2.vpc": "AwsEc2Vpc",
    "aws.ec2.subnet": "AwsEc2Subnet", "aws.ec2.volume": "AwsEc2Volume", "aws.ec2.instance": "AwsEc2Instance",
    "aws.ec2.network_acl": "AwsEc2NetworkAcl", "aws.kms.key": "AwsKmsKey", "aws.rds.instance": "AwsRdsDbInstance",
    "aws.rds.cluster": "AwsRdsDbCluster", "aws.rds.snapshot": "AwsRdsDbSnapshot",
    "aws.rds.cluster_snapshot": "AwsRdsDbClusterSnapshot", "aws.iam.user": "AwsIamUser", "aws.iam.role": "AwsIamRole",
    "aws.iam.policy": "AwsIamPolicy", "aws.cloudtrail.trail": "AwsCloudTrailTrail",
    "aws.elbv2.load_balancer": "AwsElbv2LoadBalancer", "aws.acm.certificate": "AwsCertificateManagerCertificate",
    "aws.dynamodb.table": "AwsDynamoDbTable", "aws.secretsmanager.secret": "AwsSecretsManagerSecret",
    "aws.eks.cluster": "AwsEksCluster", "aws.backup.vault": "AwsBackupBackupVault",
    "aws.backup.plan": "AwsBackupBackupPlan", "aws.logs.log_group": "AwsLogsLogGroup",
}


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def product_arn(region: str, account: str) -> str:
    """The account's own "default" product: where a custom integration imports findings."""
    return f"arn:aws:securityhub:{region}:{account}:product/{account}/default"


def to_asff(view: RunView, importer_account: str | None = None, importer_region: str | None = None) -> list[dict]:
    """One ASFF finding per row. The Id is stable per (check, account, resource), so a re-import
    updates the same Security Hub finding rather than adding a copy."""
    run = view.run
    out = []
    for row in view.rows:
        check = view.check(row["check"])
        region = row["region"] if row["region"] not in ("global", "") else (importer_region or "us-east-1")
        key = f"{row['check']}|{row['account']}|{row['resource']}"
        rtype = "AwsAccount" if row["resource_name"] == "account" else RESOURCE_TYPE.get(row["resource_type"], "Other")
        out.append({
            "SchemaVersion": SCHEMA_VERSION,
            "Id": f"auditbook/{hashlib.sha256(key.encode()).hexdigest()[:32]}",
            "ProductArn": product_arn(importer_region or region, importer_account or row["account"]),
            "GeneratorId": f"auditbook/{row['check']}",
            "AwsAccountId": row["account"],
            "Types": ["Software and Configuration Checks/Industry and Regulatory Standards/SOC 2"],
            "CreatedAt": _iso(run.started_at), "UpdatedAt": _iso(run.finished_at),
            "Severity": {"Label": SEVERITY.get(row["severity"], "INFORMATIONAL")},
            "Title": (check.title if check else row["check"])[:256],
            "Description": row["message"][:1024] or row["check"],
            "Remediation": {"Recommendation": {"Text": (check.remediation if check else "")[:512] or "-"}},
            "Resources": [{"Type": rtype, "Id": row["resource"][:512], "Partition": "aws", "Region": region}],
            "Compliance": {"Status": COMPLIANCE[row["status"]], "RelatedRequirements": [
                f"SOC 2 {c}" for c in row["controls"]][:32]},
            "Workflow": {"Status": WORKFLOW[row["status"]]},
            "RecordState": "ACTIVE",
            "ProductFields": {"auditbook/run": str(run.id), "auditbook/status": row["status"],
                              "auditbook/evidence": ",".join(row["evidence"])[:4096]},
        })
    return out


def import_to_security_hub(client, findings: list[dict]) -> dict:
    """BatchImportFindings in batches of 100 (the API's limit); failures are returned, not hidden."""
    imported, failed = 0, []
    for start in range(0, len(findings), 100):
        answer = client.batch_import_findings(Findings=findings[start:start + 100])
        imported += answer.get("SuccessCount", 0)
        failed += answer.get("FailedFindings", [])
    return {"imported": imported, "failed": failed}


def import_run(client, view: RunView, account: str, region: str) -> dict:
    """A run's findings into Security Hub as `account`'s own (product "default") in `region`; a
    second import of the same findings updates them (the ids are stable), it never adds copies."""
    return import_to_security_hub(client, to_asff(view, importer_account=account, importer_region=region))


def security_hub_import(view: RunView, region: Optional[str] = None, profile: Optional[str] = None) -> dict:
    """`auditbook export securityhub`: the run's findings imported into the Security Hub of the
    account the credentials belong to, in `region` (default: the configured one). Clients come from
    the shared client helper; an AWS failure is ScanAborted in one line. Returns imported, failed,
    account and region."""
    from botocore.exceptions import BotoCoreError, ClientError

    from auditbook.collect.clients import aws_client, aws_error
    hub = aws_client("securityhub", region, profile)
    region = hub.meta.region_name
    try:
        account = aws_client("sts", region, profile).get_caller_identity()["Account"]
        result = import_run(hub, view, account, region)
    except (ClientError, BotoCoreError) as exc:
        raise ScanAborted(f"Security Hub import failed: {aws_error(exc)}") from None
    return {**result, "account": account, "region": region}
