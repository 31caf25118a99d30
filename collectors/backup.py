"""AWS Backup: plans (with their rules) and vaults (with vault lock), and a per-region summary."""
from auditbook.collect.spec import Call, ResourceType


def _plan(plan, _shared):
    rules = ((plan.get("plan") or {}).get("Rules")) or []
    plan["retention_days"] = [((r.get("Lifecycle") or {}).get("DeleteAfterDays")) for r in rules]
    plan["rule_count"] = len(rules)
    return plan


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
        id="BackupVaultName", arn="{BackupVaultArn}", display="BackupVaultName", tags=None,
        description="Backup vaults; Locked says whether vault lock is on (MinRetentionDays / MaxRetentionDays).",
    ),
]
