"""IAM users (console access, MFA, access keys) and account-level settings (root, password policy)."""
from auditbook.spec import Call, ResourceType


def _user(user, _shared):
    user["console_access"] = user.get("login_profile") is not None
    user["mfa_enabled"] = bool(user.get("mfa_devices"))
    keys = user.get("access_keys") or []
    user["active_access_keys"] = [k for k in keys if k.get("Status") == "Active"]
    return user


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
        details={
            "login_profile": _per_user("get_login_profile", "iam:GetLoginProfile", "LoginProfile",
                                       ["NoSuchEntity"], paginate=False),
            "mfa_devices": _per_user("list_mfa_devices", "iam:ListMFADevices", "MFADevices"),
            "access_keys": _per_user("list_access_keys", "iam:ListAccessKeys", "AccessKeyMetadata"),
        },
        id="UserName", arn="{Arn}", normalise=_user,
        description="IAM users: console_access (has a login profile), mfa_enabled, active_access_keys.",
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
