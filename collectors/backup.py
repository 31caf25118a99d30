"""AWS Backup: plans (with their rules) and vaults (with vault lock and the manager of their KMS key)."""
from dataclasses import replace

from auditbook.collect.spec import Call, ResourceType
from collectors.keys import key_facts, key_text, kms_key_call

DEFAULT_KEY = "alias/aws/backup"  # the key a vault created without one uses


def _plan(plan, _shared):
    rules = ((plan.get("plan") or {}).get("Rules")) or []
    plan["retention_days"] = [((r.get("Lifecycle") or {}).get("DeleteAfterDays")) for r in rules]
    plan["rule_count"] = len(rules)
    return plan


def _vault(vault, _shared):
    """kms_key_manager / kms_customer_managed and `encryption` text for the vault's key (recovery points
    are always encrypted; a vault that names no key uses AWS Backup's AWS-managed default)."""
    named = vault.get("EncryptionKeyArn")
    if vault.get("EncryptionKeyType") == "AWS_OWNED_KMS_KEY":  # an AWS-owned key (air-gapped vaults)
        vault.update(kms_key_id=named, kms_key_manager="AWS", kms_customer_managed=False,
                     encryption=f"AWS-owned key {named or ''}".strip())
        return vault
    facts = key_facts(named or DEFAULT_KEY, vault.get("kms_key"))
    vault.update(facts)
    vault["encryption"] = key_text(facts) if named else f"the default key {DEFAULT_KEY} (AWS-managed)"
    return vault


# an AWS-owned key lives in AWS's account: DescribeKey cannot read it, and it is never the customer's
VAULT_KEY = replace(kms_key_call("EncryptionKeyArn"),
                    when=kms_key_call("EncryptionKeyArn").when + " && EncryptionKeyType != 'AWS_OWNED_KMS_KEY'")


RESOURCE_TYPES = [
    ResourceType(
        name="aws.backup.plan", service="backup",
        list=Call("list_backup_plans", "backup:ListBackupPlans", result="BackupPlansList"),
        details={"plan": Call("get_backup_plan", "backup:GetBackupPlan", params={"BackupPlanId": "{BackupPlanId}"},
                              result="BackupPlan")},
        id="BackupPlanId", arn="{BackupPlanArn}", display="BackupPlanName", normalise=_plan, tags=None,
        description="Backup plans with their rules; retention_days per rule (null = kept forever).",
    ),
    ResourceType(
        name="aws.backup.vault", service="backup",
        list=Call("list_backup_vaults", "backup:ListBackupVaults", result="BackupVaultList"),
        details={"kms_key": VAULT_KEY},
        id="BackupVaultName", arn="{BackupVaultArn}", display="BackupVaultName", normalise=_vault, tags=None,
        description="Backup vaults; Locked says whether vault lock is on (MinRetentionDays / MaxRetentionDays); "
                    "EncryptionKeyArn with kms_key_manager, kms_customer_managed and encryption (as text).",
    ),
]
