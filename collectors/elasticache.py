"""ElastiCache replication groups (Redis OSS / Valkey) and cache clusters outside one: encryption at rest
(and who manages the key), in transit, authentication (AUTH token or RBAC user groups), snapshot retention.
No secret is kept: AuthTokenEnabled is a boolean, the token itself is never returned by the API."""
from auditbook.collect.spec import Call, ResourceType
from collectors.keys import encryption_facts, kms_key_call


def _replication_group(group, _shared):
    group.update(encryption_facts(group.get("AtRestEncryptionEnabled"), group.get("KmsKeyId"), group.get("kms_key")))
    # "preferred" accepts plaintext connections while clients migrate: only "required" (or no mode) enforces TLS
    group["transit_encryption_enforced"] = bool(group.get("TransitEncryptionEnabled")) and \
        group.get("TransitEncryptionMode") in (None, "required")
    group["authentication"] = bool(group.get("AuthTokenEnabled")) or bool(group.get("UserGroupIds"))
    group["snapshot_retention_days"] = group.get("SnapshotRetentionLimit") or 0
    return group


def _cluster(cluster, _shared):
    cluster["transit_encryption_enforced"] = bool(cluster.get("TransitEncryptionEnabled")) and \
        cluster.get("TransitEncryptionMode") in (None, "required")
    return cluster


def _tags(when=None):
    return Call("list_tags_for_resource", "elasticache:ListTagsForResource", params={"ResourceName": "{ARN}"},
                result="TagList", when=when)


RESOURCE_TYPES = [
    ResourceType(
        name="aws.elasticache.replication_group", service="elasticache",
        list=Call("describe_replication_groups", "elasticache:DescribeReplicationGroups", result="ReplicationGroups"),
        details={"kms_key": kms_key_call("KmsKeyId"), "tag_list": _tags()},
        id="ReplicationGroupId", arn="{ARN}", normalise=_replication_group, tags="tag_list",
        description="Replication groups: AtRestEncryptionEnabled, kms_customer_managed, transit_encryption_enforced "
                    "(TransitEncryptionEnabled and mode required), authentication (AUTH token or RBAC user "
                    "groups), snapshot_retention_days (0: no automatic backups).",
    ),
    ResourceType(
        name="aws.elasticache.cache_cluster", service="elasticache",
        list=Call("describe_cache_clusters", "elasticache:DescribeCacheClusters", result="CacheClusters"),
        details={"tag_list": _tags("ReplicationGroupId == null")},
        id="CacheClusterId", arn="{ARN}", normalise=_cluster, tags="tag_list",
        description="Cache clusters (also the members of replication groups: ReplicationGroupId names theirs); "
                    "transit_encryption_enforced.",
    ),
]
