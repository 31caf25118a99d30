"""Secrets Manager secrets (metadata only: the secret values are never read)."""
from auditbook.collect.spec import Call, ResourceType

RESOURCE_TYPES = [
    ResourceType(
        name="aws.secretsmanager.secret", service="secretsmanager",
        list=Call("list_secrets", "secretsmanager:ListSecrets", result="SecretList"),
        id="Name", arn="{ARN}", display="Name",
        description="Secrets: RotationEnabled, RotationRules, LastRotatedDate, KmsKeyId. Values are never read.",
    ),
]
