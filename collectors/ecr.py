"""ECR repositories: image scanning on push (the effective setting, registry rules included), tag
immutability, encryption with a KMS key, public grants in the repository policy, the lifecycle policy."""
from __future__ import annotations

from auditbook.collect.spec import Call, ResourceType
from collectors.keys import key_facts, key_text, kms_key_call
from collectors.policies import policy_document, public_statements

SCANNED_ON_PUSH = {"SCAN_ON_PUSH", "CONTINUOUS_SCAN"}
IMMUTABLE = {"IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION"}


def _scanning(repo, registry) -> tuple[bool, str]:
    """(scanned on push, the effective frequency). BatchGetRepositoryScanningConfiguration applies the
    registry's rules; under BASIC scanning the repository's own scanOnPush flag also scans on push
    (moto's answer ignores that flag), under ENHANCED only the registry's rules count."""
    effective = repo.get("scanning") or {}
    frequency = effective.get("scanFrequency") or "MANUAL"
    enhanced = (registry or {}).get("scanType") == "ENHANCED"
    own = not enhanced and bool((repo.get("imageScanningConfiguration") or {}).get("scanOnPush"))
    scanned = frequency in SCANNED_ON_PUSH or own or (not enhanced and bool(effective.get("scanOnPush")))
    if scanned and frequency == "MANUAL":
        frequency = "SCAN_ON_PUSH"
    return scanned, frequency


def _repository(repo, shared):
    repo["scan_on_push"], repo["scan_frequency"] = _scanning(repo, shared.get("registry_scanning"))
    repo["tags_immutable"] = repo.get("imageTagMutability") in IMMUTABLE
    enc = repo.get("encryptionConfiguration") or {}
    kms = enc.get("encryptionType") in ("KMS", "KMS_DSSE")
    facts = key_facts(enc.get("kmsKey") if kms else None, repo.get("kms_key"))
    repo.update(facts)
    repo["encrypted"] = True  # ECR always encrypts: AES-256 with an ECR-managed key unless KMS is chosen
    if facts["kms_key_id"]:
        repo["encryption"] = key_text(facts)
    else:
        repo["encryption"] = "KMS with the AWS-managed key aws/ecr" if kms else "AES-256 (ECR-managed key)"
    doc, unreadable = policy_document(repo.get("policy"))
    repo["policy_document"] = doc
    repo["public_statements"] = ["policy is not valid JSON"] if unreadable else public_statements(doc)
    repo["lifecycle_rules"] = _lifecycle_rules(repo.get("lifecycle_policy"))
    return repo


def _lifecycle_rules(text) -> list:
    """The lifecycle policy's rules, each as "<priority>: expire <tag status> images <count type> <n>" (none
    when there is no policy or it is not a JSON object with rules)."""
    doc, _unreadable = policy_document(text)
    rules = [r for r in (doc or {}).get("rules") or [] if isinstance(r, dict)]
    out = []
    for rule in rules:
        sel = rule.get("selection") if isinstance(rule.get("selection"), dict) else {}
        action = rule.get("action") if isinstance(rule.get("action"), dict) else {}
        out.append(f"{rule.get('rulePriority')}: {action.get('type', 'expire')} "
                   f"{sel.get('tagStatus', 'any')} images {sel.get('countType', '?')} {sel.get('countNumber', '?')}")
    return out


RESOURCE_TYPES = [
    ResourceType(
        name="aws.ecr.repository", service="ecr",
        list=Call("describe_repositories", "ecr:DescribeRepositories", result="repositories"),
        shared={"registry_scanning": Call("get_registry_scanning_configuration", "ecr:GetRegistryScanningConfiguration",
                                          result="scanningConfiguration")},
        details={
            "scanning": Call("batch_get_repository_scanning_configuration",
                             "ecr:BatchGetRepositoryScanningConfiguration",
                             params={"repositoryNames": ["{repositoryName}"]},
                             result="scanningConfigurations[0]"),
            "kms_key": kms_key_call("encryptionConfiguration.kmsKey"),
            "policy": Call("get_repository_policy", "ecr:GetRepositoryPolicy",
                           params={"repositoryName": "{repositoryName}"}, result="policyText",
                           absent=("RepositoryPolicyNotFoundException",)),
            "lifecycle_policy": Call("get_lifecycle_policy", "ecr:GetLifecyclePolicy",
                                     params={"repositoryName": "{repositoryName}"}, result="lifecyclePolicyText",
                                     absent=("LifecyclePolicyNotFoundException",)),
            "tag_list": Call("list_tags_for_resource", "ecr:ListTagsForResource",
                             params={"resourceArn": "{repositoryArn}"}, result="tags"),
        },
        id="repositoryName", arn="{repositoryArn}", normalise=_repository, tags="tag_list",
        description="ECR repositories: scan_on_push and scan_frequency (effective: the registry's rules, and under BASIC "
                    "scanning the repository's own flag), "
                    "tags_immutable (IMMUTABLE or IMMUTABLE_WITH_EXCLUSION), encryption (as text) and "
                    "kms_customer_managed, public_statements of the repository policy; lifecycle_rules (each rule as text; "
                    "empty: no lifecycle policy).",
    ),
]
