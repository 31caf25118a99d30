"""EKS clusters: envelope encryption of Kubernetes secrets, control-plane audit logging, who can reach the
API endpoint."""
from auditbook.collect.spec import Call, ResourceType

WORLD = ("0.0.0.0/0", "::/0")


def _cluster(cluster, _shared):
    c = cluster.get("cluster") or {}
    cluster["secrets_encrypted"] = any("secrets" in (e.get("resources") or []) for e in c.get("encryptionConfig") or [])
    enabled = [t for s in (c.get("logging") or {}).get("clusterLogging") or [] if s.get("enabled")
               for t in s.get("types") or []]
    cluster["log_types"] = sorted(set(enabled))
    cluster["audit_logging"] = "audit" in enabled
    cluster["arn"] = c.get("arn")
    vpc_config = c.get("resourcesVpcConfig") or {}
    cluster["public_endpoint"] = bool(vpc_config.get("endpointPublicAccess"))
    # a public endpoint with no CIDR list admits everyone: AWS's default is 0.0.0.0/0
    cidrs = (vpc_config.get("publicAccessCidrs") or ["0.0.0.0/0"]) if cluster["public_endpoint"] else []
    cluster["public_access_cidrs"] = cidrs
    cluster["endpoint_open_to_internet"] = [cidr for cidr in cidrs if cidr in WORLD]
    return cluster


RESOURCE_TYPES = [
    ResourceType(
        name="aws.eks.cluster", service="eks",
        list=Call("list_clusters", "eks:ListClusters", result="clusters[].{name: @}"),
        details={"cluster": Call("describe_cluster", "eks:DescribeCluster", params={"name": "{name}"},
                                 result="cluster")},
        id="name", arn="{arn}", normalise=_cluster, tags="cluster.tags",
        description="Clusters; secrets_encrypted (KMS envelope encryption of secrets), audit_logging, log_types; "
                    "public_endpoint, public_access_cidrs (0.0.0.0/0 when public and unset), endpoint_open_to_internet.",
    ),
]
