"""Redshift provisioned clusters: encryption (and who manages the key), require_ssl from the cluster's
parameter group, public accessibility, automated snapshot retention and audit logging. The master
password is never returned by the API and never kept."""
from auditbook.collect.spec import Call, ResourceType
from collectors.keys import encryption_facts, kms_key_call


def _cluster(cluster, _shared):
    cluster.update(encryption_facts(cluster.get("Encrypted"), cluster.get("KmsKeyId"), cluster.get("kms_key")))
    values = {p.get("ParameterName"): p.get("ParameterValue") for p in cluster.get("parameters") or []}
    cluster["require_ssl"] = str(values.get("require_ssl")).lower() == "true"
    cluster["parameter_group"] = ((cluster.get("ClusterParameterGroups") or [{}])[0]).get("ParameterGroupName")
    cluster["audit_logging"] = bool((cluster.get("logging") or {}).get("LoggingEnabled"))
    cluster["snapshot_retention_days"] = cluster.get("AutomatedSnapshotRetentionPeriod") or 0
    return cluster


RESOURCE_TYPES = [
    ResourceType(
        name="aws.redshift.cluster", service="redshift",
        list=Call("describe_clusters", "redshift:DescribeClusters", result="Clusters"),
        details={
            "kms_key": kms_key_call("KmsKeyId"),
            "parameters": Call("describe_cluster_parameters", "redshift:DescribeClusterParameters",
                               params={"ParameterGroupName": "{ClusterParameterGroups[0].ParameterGroupName}"},
                               result="Parameters", when="ClusterParameterGroups[0].ParameterGroupName",
                               paginate=True),
            "logging": Call("describe_logging_status", "redshift:DescribeLoggingStatus",
                            params={"ClusterIdentifier": "{ClusterIdentifier}"}),
        },
        id="ClusterIdentifier", arn="arn:{partition}:redshift:{region}:{account}:cluster:{ClusterIdentifier}",
        normalise=_cluster,
        description="Redshift clusters: Encrypted, kms_customer_managed, require_ssl (the require_ssl parameter of "
                    "the cluster's parameter group is true), PubliclyAccessible, snapshot_retention_days (automated; "
                    "0: none), audit_logging (DescribeLoggingStatus).",
    ),
]
