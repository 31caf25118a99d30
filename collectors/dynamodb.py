"""DynamoDB tables: encryption at rest, point-in-time recovery and deletion protection."""
from auditbook.collect.spec import Call, ResourceType


def _table(table, _shared):
    desc = table.get("table") or {}
    sse = desc.get("SSEDescription") or {}
    table["kms_encrypted"] = sse.get("Status") == "ENABLED" and sse.get("SSEType") == "KMS"
    pitr = ((table.get("backups") or {}).get("PointInTimeRecoveryDescription") or {})
    table["pitr_enabled"] = pitr.get("PointInTimeRecoveryStatus") == "ENABLED"
    table["deletion_protection"] = desc.get("DeletionProtectionEnabled") is True
    return table


RESOURCE_TYPES = [
    ResourceType(
        name="aws.dynamodb.table", service="dynamodb",
        list=Call("list_tables", "dynamodb:ListTables", result="TableNames[].{TableName: @}"),
        details={
            "table": Call("describe_table", "dynamodb:DescribeTable", params={"TableName": "{TableName}"},
                          result="Table"),
            "backups": Call("describe_continuous_backups", "dynamodb:DescribeContinuousBackups",
                            params={"TableName": "{TableName}"}, result="ContinuousBackupsDescription"),
        },
        id="TableName", arn="arn:{partition}:dynamodb:{region}:{account}:table/{TableName}", normalise=_table,
        tags=None,
        description="Tables; kms_encrypted (SSE with a KMS key rather than the AWS-owned default), pitr_enabled and "
                    "deletion_protection (DeletionProtectionEnabled; absent: off).",
    ),
]
