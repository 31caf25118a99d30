"""IAM: users (console access, MFA, keys, credential use, policies), roles (trust), customer-managed
policies (what they grant) and account-level settings (root, password policy)."""
import base64
import csv
import io
import json
from urllib.parse import unquote

from auditbook.collect.spec import Call, ResourceType

ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"


def _credential_report(shared) -> dict:
    """The credential report (CSV, base64 in the evidence) as user name -> row."""
    raw = (shared.get("credential_report") or {}).get("Content")
    if not raw:
        return {}
    text = base64.b64decode(raw).decode("utf-8", "replace") if isinstance(raw, str) else raw.decode()
    return {row["user"]: row for row in csv.DictReader(io.StringIO(text))}


def _date(value):
    return value if value and value not in ("N/A", "no_information", "not_supported") else None


def _user(user, shared):
    user["console_access"] = user.get("login_profile") is not None
    user["mfa_enabled"] = bool(user.get("mfa_devices"))
    keys = user.get("access_keys") or []
    user["active_access_keys"] = [k for k in keys if k.get("Status") == "Active"]
    row = _credential_report(shared).get(user["UserName"], {})
    creds = []
    if user["console_access"]:
        creds.append({"credential": "console password", "last_used": _date(row.get("password_last_used")),
                      "created": _date(row.get("password_last_changed")) or user.get("CreateDate")})
    for n, key in enumerate(user["active_access_keys"], start=1):
        creds.append({"credential": f"access key {key.get('AccessKeyId')}",
                      "last_used": _date(row.get(f"access_key_{n}_last_used_date")),
                      "created": key.get("CreateDate")})
    user["active_credentials"] = creds
    user["credential_report_row"] = bool(row)
    user["attached_policy_arns"] = [p.get("PolicyArn") for p in user.get("attached_policies") or []]
    return user


def _statements(document):
    if isinstance(document, str):
        try:
            document = json.loads(unquote(document))
        except ValueError:
            return []
    stmts = (document or {}).get("Statement") or []
    return stmts if isinstance(stmts, list) else [stmts]


def _as_list(value):
    return value if isinstance(value, list) else [value] if value is not None else []


def _grants_everything(document) -> bool:
    return any(s.get("Effect") == "Allow" and "*" in _as_list(s.get("Action")) and "*" in _as_list(s.get("Resource"))
               for s in _statements(document))


def _policy(policy, _shared):
    document = (policy.get("default_version") or {}).get("Document")
    policy["grants_full_admin"] = _grants_everything(document)
    policy["admin_arn"] = policy.get("Arn") if policy["grants_full_admin"] else None
    return policy


ASSUME_ACTIONS = {"sts:assumerole", "sts:*", "*"}
MFA_KEY, MFA_AGE_KEY = "aws:multifactorauthpresent", "aws:multifactorauthage"


def _condition_values(condition, operators: set[str], key: str) -> list:
    """The values a Condition block gives `key` under any of `operators` (names compared without case)."""
    out = []
    for operator, block in (condition or {}).items() if isinstance(condition, dict) else ():
        if operator.lower() in operators and isinstance(block, dict):
            for name, value in block.items():
                if name.lower() == key:
                    out += [str(v).lower() for v in _as_list(value)]
    return out


def _requires_mfa(stmt) -> bool:
    """An Allow statement that holds only with MFA: Bool aws:MultiFactorAuthPresent true, or a
    NumericLessThan(Equals) on aws:MultiFactorAuthAge (both false when the key is absent).
    BoolIfExists true does not count: it lets long-term keys without MFA through."""
    cond = stmt.get("Condition")
    return "true" in _condition_values(cond, {"bool"}, MFA_KEY) or \
        bool(_condition_values(cond, {"numericlessthan", "numericlessthanequals"}, MFA_AGE_KEY))


def _denies_without_mfa(stmt) -> bool:
    """A Deny of sts:AssumeRole to everyone when MFA is absent (BoolIfExists aws:MultiFactorAuthPresent false)."""
    principal = stmt.get("Principal")
    everyone = principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS")))
    return stmt.get("Effect") == "Deny" and everyone and _assumes(stmt) and \
        "false" in _condition_values(stmt.get("Condition"), {"boolifexists"}, MFA_KEY)


def _assumes(stmt) -> bool:
    return any(str(a).lower() in ASSUME_ACTIONS for a in _as_list(stmt.get("Action")))


def _human_principal(principal: str) -> bool:
    """A person can act as it: anyone (*), a whole account (its root: any user there), or an IAM user.
    Roles, services and federated identities are not (federation enforces MFA at the identity provider)."""
    return principal == "*" or principal.isdigit() or principal.endswith(":root") or ":user/" in principal


def human_principals(document) -> tuple[list[str], list[str]]:
    """(principals people can assume the role as, those of them not held to MFA). Statements guarded
    by sts:ExternalId are a third party's software, not people."""
    statements = _statements(document)
    guarded = any(_denies_without_mfa(s) for s in statements)
    humans, without_mfa = [], []
    for stmt in statements:
        if stmt.get("Effect") != "Allow" or not _assumes(stmt) or _condition_values(
                stmt.get("Condition"), {"stringequals", "stringlike"}, "sts:externalid"):
            continue
        principal = stmt.get("Principal")
        aws = _as_list(principal.get("AWS")) if isinstance(principal, dict) else _as_list(principal)
        found = [str(p) for p in aws if _human_principal(str(p))]
        humans += found
        if not (guarded or _requires_mfa(stmt)):
            without_mfa += found
    return sorted(set(humans)), sorted(set(without_mfa))


def _role_permissions(role, shared) -> None:
    """attached_policy_arns, aws_admin_attached (AdministratorAccess) and inline_admin_policies
    (inline policies allowing Action * on Resource *), from GetAccountAuthorizationDetails."""
    detail = next((d for d in shared.get("authorization") or [] if d.get("Arn") == role.get("Arn")), None)
    role["permissions_read"] = detail is not None
    detail = detail or {}
    role["attached_policy_arns"] = [p.get("PolicyArn") for p in detail.get("AttachedManagedPolicies") or []]
    role["aws_admin_attached"] = any((a or "").endswith(":iam::aws:policy/AdministratorAccess")
                                     for a in role["attached_policy_arns"])
    role["inline_admin_policies"] = [p.get("PolicyName") for p in detail.get("RolePolicyList") or []
                                     if _grants_everything(p.get("PolicyDocument"))]


def _role(role, shared):
    """external_principals: AWS principals of other accounts the role trusts; which lack an ExternalId.
    human_principals / human_principals_without_mfa: see human_principals(); permissions: _role_permissions."""
    role["human_principals"], role["human_principals_without_mfa"] = human_principals(role.get("AssumeRolePolicyDocument"))
    _role_permissions(role, shared)
    own = (role.get("Arn") or "::::").split(":")[4]
    external = []
    for stmt in _statements(role.get("AssumeRolePolicyDocument")):
        if stmt.get("Effect") != "Allow":
            continue
        principals = stmt.get("Principal") or {}
        aws = _as_list(principals.get("AWS")) if isinstance(principals, dict) else _as_list(principals)
        conditions = json.dumps(stmt.get("Condition") or {})
        for p in aws:
            account = p if p == "*" else (p.split(":")[4] if p.startswith("arn:") else p)
            if account != own:
                external.append({"principal": p, "account": account, "external_id": "sts:ExternalId" in conditions})
    role["external_principals"] = external
    role["trusted_accounts"] = sorted({e["account"] for e in external})
    return role


def _account(record, _shared):
    summary = record.get("summary") or {}
    record["root_mfa_enabled"] = summary.get("AccountMFAEnabled") == 1
    record["root_access_keys_present"] = summary.get("AccountAccessKeysPresent", 0) != 0
    return record


def _per_user(method, action, result, absent=(), paginate=True):
    return Call(method, action, params={"UserName": "{UserName}"}, result=result, absent=tuple(absent),
                paginate=paginate)


RESOURCE_TYPES = [
    ResourceType(
        name="aws.iam.user", service="iam", scope="global",
        list=Call("list_users", "iam:ListUsers", result="Users"),
        shared={
            # the report is (re)generated at most every 4 hours by AWS; generating is read-only
            "report_state": Call("generate_credential_report", "iam:GenerateCredentialReport"),
            "credential_report": Call("get_credential_report", "iam:GetCredentialReport",
                                      wait_on=("ReportInProgress", "ReportNotPresent")),
        },
        details={
            "login_profile": _per_user("get_login_profile", "iam:GetLoginProfile", "LoginProfile",
                                       ["NoSuchEntity"], paginate=False),
            "mfa_devices": _per_user("list_mfa_devices", "iam:ListMFADevices", "MFADevices"),
            "access_keys": _per_user("list_access_keys", "iam:ListAccessKeys", "AccessKeyMetadata"),
            "attached_policies": _per_user("list_attached_user_policies", "iam:ListAttachedUserPolicies",
                                           "AttachedPolicies"),
            "inline_policies": _per_user("list_user_policies", "iam:ListUserPolicies", "PolicyNames"),
        },
        id="UserName", arn="{Arn}", normalise=_user,
        description="IAM users: console_access, mfa_enabled, active_access_keys, active_credentials (each "
                    "with last_used / created from the credential report), attached_policy_arns, inline_policies.",
    ),
    ResourceType(
        name="aws.iam.policy", service="iam", scope="global",
        list=Call("list_policies", "iam:ListPolicies", params={"Scope": "Local"}, result="Policies"),
        details={"default_version": Call("get_policy_version", "iam:GetPolicyVersion",
                                         params={"PolicyArn": "{Arn}", "VersionId": "{DefaultVersionId}"},
                                         result="PolicyVersion")},
        id="Arn", arn="{Arn}", display="PolicyName", normalise=_policy,
        description="Customer-managed policies with their default version; grants_full_admin when a "
                    "statement allows Action * on Resource *.",
    ),
    ResourceType(
        name="aws.iam.role", service="iam", scope="global",
        list=Call("list_roles", "iam:ListRoles", result="Roles"),
        shared={"authorization": Call("get_account_authorization_details", "iam:GetAccountAuthorizationDetails",
                                      params={"Filter": ["Role"]}, result="RoleDetailList")},
        id="RoleName", arn="{Arn}", normalise=_role,
        description="IAM roles; external_principals / trusted_accounts from the trust policy (principals "
                    "outside the role's account, and whether an sts:ExternalId condition guards them); "
                    "human_principals (*, account roots, users) and those without an MFA condition; "
                    "attached_policy_arns, aws_admin_attached, inline_admin_policies; MaxSessionDuration.",
    ),
    ResourceType(
        name="aws.iam.account", service="iam", scope="global", list=None,
        details={
            "summary": Call("get_account_summary", "iam:GetAccountSummary", result="SummaryMap"),
            "password_policy": Call("get_account_password_policy", "iam:GetAccountPasswordPolicy",
                                    result="PasswordPolicy", absent=("NoSuchEntity",)),
        },
        normalise=_account,
        description="Account-level IAM: root MFA and access keys (from the account summary), password policy "
                    "(null when none is set).",
    ),
]
