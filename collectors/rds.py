"""RDS database instances and Aurora / Multi-AZ clusters, with the manager of their KMS key."""
from auditbook.spec import Call, ResourceType


def _encryption(db, _shared):
    key = db.get("kms_key") or {}
    db["kms_key_manager"] = key.get("KeyManager")
    db["encrypted_with_cmk"] = bool(db.get("StorageEncrypted")) and key.get("KeyManager") == "CUSTOMER"
    return db


KMS_KEY = Call("describe_key", "kms:DescribeKey", params={"KeyId": "{KmsKeyId}"}, result="KeyMetadata",
               when="StorageEncrypted && KmsKeyId", service="kms")

RESOURCE_TYPES = [
    ResourceType(
        name="aws.rds.instance", service="rds",
        list=Call("describe_db_instances", "rds:DescribeDBInstances", result="DBInstances"),
        details={"kms_key": KMS_KEY}, id="DBInstanceIdentifier", arn="{DBInstanceArn}", normalise=_encryption,
        description="RDS DB instances; kms_key_manager says whether the storage key is customer-managed.",
    ),
    ResourceType(
        name="aws.rds.cluster", service="rds",
        list=Call("describe_db_clusters", "rds:DescribeDBClusters", result="DBClusters"),
        details={"kms_key": KMS_KEY}, id="DBClusterIdentifier", arn="{DBClusterArn}", normalise=_encryption,
        description="Aurora and Multi-AZ DB clusters.",
    ),
]
