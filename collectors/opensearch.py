"""OpenSearch Service domains (OpenSearch and Elasticsearch engines): encryption at rest (and who manages
the key), node-to-node encryption, HTTPS enforcement and its TLS policy, VPC placement, audit logs."""
from auditbook.collect.spec import Call, ResourceType
from collectors.keys import encryption_facts, kms_key_call


def _domain(domain, _shared):
    domain.update(domain.pop("status", None) or {})
    at_rest = domain.get("EncryptionAtRestOptions") or {}
    endpoint = domain.get("DomainEndpointOptions") or {}
    domain["encrypted_at_rest"] = bool(at_rest.get("Enabled"))
    domain.update(encryption_facts(at_rest.get("Enabled"), at_rest.get("KmsKeyId"), domain.get("kms_key")))
    domain["node_to_node_encrypted"] = bool((domain.get("NodeToNodeEncryptionOptions") or {}).get("Enabled"))
    domain["https_enforced"] = bool(endpoint.get("EnforceHTTPS"))
    domain["tls_policy"] = endpoint.get("TLSSecurityPolicy")
    vpc = domain.get("VPCOptions") or {}
    domain["in_vpc"] = bool(vpc.get("VPCId") or vpc.get("SubnetIds"))
    audit = (domain.get("LogPublishingOptions") or {}).get("AUDIT_LOGS") or {}
    domain["audit_logs_enabled"] = bool(audit.get("Enabled"))
    return domain


RESOURCE_TYPES = [
    ResourceType(
        name="aws.opensearch.domain", service="opensearch",
        list=Call("list_domain_names", "es:ListDomainNames", result="DomainNames"),
        details={
            "status": Call("describe_domain", "es:DescribeDomain", params={"DomainName": "{DomainName}"},
                           result="DomainStatus"),
            "kms_key": kms_key_call("status.EncryptionAtRestOptions.KmsKeyId"),
            "tag_list": Call("list_tags", "es:ListTags", params={"ARN": "{status.ARN}"}, result="TagList"),
        },
        id="DomainName", arn="{ARN}", normalise=_domain, tags="tag_list",
        description="Domains: encrypted_at_rest, kms_customer_managed, node_to_node_encrypted, https_enforced, "
                    "tls_policy (DomainEndpointOptions.TLSSecurityPolicy), in_vpc (VPC endpoint rather than a "
                    "public one), audit_logs_enabled (AUDIT_LOGS published to CloudWatch Logs).",
    ),
]
