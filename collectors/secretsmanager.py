"""Secrets Manager secrets (metadata only: the secret values are never read), with the manager of the
KMS key that encrypts each."""
from auditbook.collect.spec import Call, ResourceType
from collectors.keys import key_facts, key_text, kms_key_call

DEFAULT_KEY = "alias/aws/secretsmanager"  # what Secrets Manager uses when a secret names no key


def _secret(secret, _shared):
    named = secret.get("KmsKeyId")
    facts = key_facts(named or DEFAULT_KEY, secret.get("kms_key"))
    secret.update(facts)
    secret["encryption"] = key_text(facts) if named else f"the default key {DEFAULT_KEY} (AWS-managed)"
    return secret


RESOURCE_TYPES = [
    ResourceType(
        name="aws.secretsmanager.secret", service="secretsmanager",
        list=Call("list_secrets", "secretsmanager:ListSecrets", result="SecretList"),
        details={"kms_key": kms_key_call("KmsKeyId")},
        id="Name", arn="{ARN}", display="Name", normalise=_secret,
        description="Secrets: RotationEnabled, RotationRules, LastRotatedDate, KmsKeyId (absent: the AWS-managed "
                    "aws/secretsmanager key); kms_key_manager, kms_customer_managed and encryption (as text). "
                    "Values are never read.",
    ),
]
