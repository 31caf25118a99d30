"""Lambda functions: environment-variable encryption (never the variables: evidence redaction replaces
them, and only whether a function has any is kept), the function URL's auth type, public grants in the
resource policy, and the runtime. (The module is not named "lambda": a Python keyword.)"""
from __future__ import annotations

from auditbook.collect.spec import Call, ResourceType
from collectors.keys import key_facts, key_text, kms_key_call
from collectors.policies import policy_document, public_statements


def _function(fn, _shared):
    env = fn.get("Environment") or {}
    fn["has_environment"] = bool(env.get("Variables"))
    facts = key_facts(fn.get("KMSKeyArn"), fn.get("kms_key"))
    fn.update(facts)
    fn["environment_encryption"] = key_text(facts) if facts["kms_key_id"] else "the AWS-managed key aws/lambda"
    url = fn.get("url") or {}
    fn["function_url_auth_type"] = url.get("AuthType")
    doc, unreadable = policy_document(fn.get("policy"))
    fn["policy_document"] = doc
    fn["public_statements"] = ["policy is not valid JSON"] if unreadable else public_statements(doc)
    return fn


def _by_function(method, action, result, absent=()):
    return Call(method, action, params={"FunctionName": "{FunctionName}"}, result=result, absent=tuple(absent))


RESOURCE_TYPES = [
    ResourceType(
        name="aws.lambda.function", service="lambda",
        list=Call("list_functions", "lambda:ListFunctions", result="Functions"),
        details={
            "kms_key": kms_key_call("KMSKeyArn"),
            "url": _by_function("get_function_url_config", "lambda:GetFunctionUrlConfig", None,
                                ["ResourceNotFoundException"]),
            "policy": _by_function("get_policy", "lambda:GetPolicy", "Policy", ["ResourceNotFoundException"]),
            "tag_map": Call("list_tags", "lambda:ListTags", params={"Resource": "{FunctionArn}"}, result="Tags"),
        },
        id="FunctionName", arn="{FunctionArn}", normalise=_function, tags="tag_map",
        description="Lambda functions ($LATEST): has_environment (whether any environment variables are set; "
                    "their names and values are never kept), kms_customer_managed and environment_encryption "
                    "(KMSKeyArn, else the AWS-managed key), function_url_auth_type (NONE: anyone can invoke the "
                    "unqualified URL; null: no URL), public_statements of the resource policy, Runtime "
                    "(null for container images).",
    ),
]
