"""KMS key references as the data-store and messaging collectors read them: which key encrypts a
resource, whether the company manages it (a describe_key call, unless the reference is an AWS-managed
alias), and the record's readable `encryption`. Helpers only: this module declares no resource type."""
from __future__ import annotations

from auditbook.collect.spec import Call

AWS_MANAGED_ALIAS = "alias/aws/"


def is_aws_managed_alias(key_ref) -> bool:
    ref = str(key_ref or "")
    return ref.startswith(AWS_MANAGED_ALIAS) or f":{AWS_MANAGED_ALIAS}" in ref


def kms_key_call(path: str) -> Call:
    """describe_key for the key a record names at `path`, unless it is an AWS-managed alias (alias/aws/…:
    AWS reserves the prefix, so no call is needed, and moto does not serve most of those aliases)."""
    return Call("describe_key", "kms:DescribeKey", params={"KeyId": "{%s}" % path}, result="KeyMetadata",
                when=f"{path} && !starts_with({path}, 'alias/aws/') && !contains({path}, ':alias/aws/')",
                service="kms")


def key_facts(key_ref, key_metadata) -> dict:
    """kms_key_id, kms_key_manager (CUSTOMER / AWS / null) and kms_customer_managed for a key reference."""
    manager = "AWS" if is_aws_managed_alias(key_ref) else (key_metadata or {}).get("KeyManager")
    return {"kms_key_id": key_ref or None, "kms_key_manager": manager if key_ref else None,
            "kms_customer_managed": bool(key_ref) and manager == "CUSTOMER"}


def key_text(facts: dict) -> str:
    """"KMS key <id> (customer-managed | AWS-managed | manager unknown)"."""
    manager = {"CUSTOMER": "customer-managed", "AWS": "AWS-managed"}.get(facts["kms_key_manager"], "manager unknown")
    return f"KMS key {facts['kms_key_id']} ({manager})"


def encryption_facts(encrypted, key_ref, key_metadata) -> dict:
    """kms_customer_managed and a readable `encryption` for a data store encrypted at rest (or not):
    off / on (AWS-owned key) when no key is named / on (KMS key <id> (customer-managed | AWS-managed))."""
    facts = key_facts(key_ref, key_metadata)
    if not encrypted:
        return {"kms_customer_managed": False, "encryption": "off"}
    text = f"on ({key_text(facts)})" if key_ref else "on (AWS-owned key)"
    return {"kms_customer_managed": facts["kms_customer_managed"], "encryption": text}
