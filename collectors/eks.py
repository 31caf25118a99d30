"""EKS clusters: envelope encryption of Kubernetes secrets and control-plane audit logging."""
from auditbook.collect.spec import Call, ResourceType


def _cluster(cluster, _shared):
    c = cluster.get("cluster") or {}
    cluster["secrets_encrypted"] = any("secrets" in (e.get("resources") or []) for e in c.get("encryptionConfig") or [])
    enabled = [t for s in (c.get("logging") or {}).get("clusterLogging") or [] if s.get("enabled")
               for t in s.get("types") or []]
    cluster["log_types"] = sorted(set(enabled))
    cluster["audit_logging"] = "audit" in enabled
    cluster["arn"] = c.get("arn")
    cluster["public_endpoint"] = bool((c.get("resourcesVpcConfig") or {}).get("endpointPublicAccess"))
    return cluster


RESOURCE_TYPES = [
    ResourceType(
        name="aws.eks.cluster", service="eks",
        list=Call("list_clusters", "eks:ListClusters", result="clusters[].{name: @}"),
        details={"cluster": Call("describe_cluster", "eks:DescribeCluster", params={"name": "{name}"},
                                 result="cluster")},
        id="name", arn="{arn}", normalise=_cluster, tags="cluster.tags",
        description="Clusters; secrets_encrypted (KMS envelope encryption of secrets), audit_logging, log_types.",
    ),
]
