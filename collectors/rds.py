"""RDS database instances, Aurora / Multi-AZ clusters (with the manager of their KMS key) and manual
snapshots (with who may restore them)."""
from auditbook.collect.spec import Call, ResourceType


def _encryption(db, _shared):
    key = db.get("kms_key") or {}
    db["kms_key_manager"] = key.get("KeyManager")
    db["encrypted_with_cmk"] = bool(db.get("StorageEncrypted")) and key.get("KeyManager") == "CUSTOMER"
    db["log_exports"] = sorted(db.get("EnabledCloudwatchLogsExports") or [])  # AWS omits the field when none
    return db


KMS_KEY = Call("describe_key", "kms:DescribeKey", params={"KeyId": "{KmsKeyId}"}, result="KeyMetadata",
               when="StorageEncrypted && KmsKeyId", service="kms")

def _snapshot(snap, _shared):
    restore = next((a for a in snap.get("attributes") or [] if a.get("AttributeName") == "restore"), {})
    snap["shared_with"] = restore.get("AttributeValues") or []
    snap["public"] = "all" in snap["shared_with"]
    # DB snapshots say Encrypted, cluster snapshots StorageEncrypted
    snap["encrypted"] = (snap["Encrypted"] if "Encrypted" in snap else snap.get("StorageEncrypted")) is True
    return snap


def _attributes(method, action, ident, result):
    return Call(method, action, params={ident: "{%s}" % ident}, result=result)


RESOURCE_TYPES = [
    ResourceType(
        name="aws.rds.instance", service="rds",
        list=Call("describe_db_instances", "rds:DescribeDBInstances", result="DBInstances"),
        details={"kms_key": KMS_KEY}, id="DBInstanceIdentifier", arn="{DBInstanceArn}", normalise=_encryption,
        tags="TagList",
        description="RDS DB instances; kms_key_manager says whether the storage key is customer-managed; "
                    "log_exports: the log types exported to CloudWatch Logs (empty: none).",
    ),
    ResourceType(
        name="aws.rds.cluster", service="rds",
        list=Call("describe_db_clusters", "rds:DescribeDBClusters", result="DBClusters"),
        details={"kms_key": KMS_KEY}, id="DBClusterIdentifier", arn="{DBClusterArn}", normalise=_encryption,
        tags="TagList",
        description="Aurora and Multi-AZ DB clusters; kms_key_manager, log_exports as for instances.",
    ),
    ResourceType(
        name="aws.rds.snapshot", service="rds",
        list=Call("describe_db_snapshots", "rds:DescribeDBSnapshots", params={"SnapshotType": "manual"},
                  result="DBSnapshots"),
        details={"attributes": _attributes("describe_db_snapshot_attributes", "rds:DescribeDBSnapshotAttributes",
                                           "DBSnapshotIdentifier", "DBSnapshotAttributesResult.DBSnapshotAttributes")},
        id="DBSnapshotIdentifier", arn="{DBSnapshotArn}", normalise=_snapshot, tags="TagList",
        description="Manual DB snapshots; public when the restore attribute includes all; encrypted (Encrypted).",
    ),
    ResourceType(
        name="aws.rds.cluster_snapshot", service="rds",
        list=Call("describe_db_cluster_snapshots", "rds:DescribeDBClusterSnapshots", params={"SnapshotType": "manual"},
                  result="DBClusterSnapshots"),
        details={"attributes": _attributes("describe_db_cluster_snapshot_attributes",
                                           "rds:DescribeDBClusterSnapshotAttributes", "DBClusterSnapshotIdentifier",
                                           "DBClusterSnapshotAttributesResult.DBClusterSnapshotAttributes")},
        id="DBClusterSnapshotIdentifier", arn="{DBClusterSnapshotArn}", normalise=_snapshot, tags="TagList",
        description="Manual DB cluster snapshots; public when the restore attribute includes all; encrypted "
                    "(StorageEncrypted).",
    ),
]
