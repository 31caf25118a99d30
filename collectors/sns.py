"""SNS topics: encryption at rest (a KMS key, and who manages it), a topic policy that refuses plain
HTTP, public grants, and subscriptions that deliver over plain HTTP."""
from __future__ import annotations

from urllib.parse import urlsplit

from auditbook.collect.spec import Call, ResourceType
from collectors.keys import key_facts, key_text, kms_key_call
from collectors.policies import (
    denies_insecure_transport,
    policy_document,
    public_statements,
)


def _plain_http(subscriptions) -> list[str]:
    """Subscriptions delivering over http, each as "http://host" (never the path or query: a webhook URL
    may carry a token)."""
    out = []
    for sub in subscriptions or []:
        if str(sub.get("Protocol")).lower() == "http":
            try:
                host = urlsplit(str(sub.get("Endpoint") or "")).hostname
            except ValueError:
                host = None
            out.append(f"http://{host or '(unreadable endpoint)'}")
    return sorted(set(out))


def _topic(topic, _shared):
    attrs = topic.get("attributes") or {}
    topic["TopicName"] = str(topic.get("TopicArn") or "").rsplit(":", 1)[-1]
    facts = key_facts(attrs.get("KmsMasterKeyId"), topic.get("kms_key"))
    topic.update(facts)
    topic["encrypted"] = bool(facts["kms_key_id"])
    topic["encryption"] = key_text(facts) if facts["kms_key_id"] else "none"
    doc, unreadable = policy_document(attrs.get("Policy"))
    topic["policy_document"] = doc
    topic["public_statements"] = ["policy is not valid JSON"] if unreadable else public_statements(doc)
    topic["tls_only_policy"] = denies_insecure_transport(doc, ("sns:publish",))
    topic["http_subscriptions"] = _plain_http(topic.get("subscriptions"))
    return topic


def _by_topic(method, action, result):
    return Call(method, action, params={"TopicArn": "{TopicArn}"}, result=result)


RESOURCE_TYPES = [
    ResourceType(
        name="aws.sns.topic", service="sns",
        list=Call("list_topics", "sns:ListTopics", result="Topics"),
        details={
            "attributes": _by_topic("get_topic_attributes", "sns:GetTopicAttributes", "Attributes"),
            "kms_key": kms_key_call("attributes.KmsMasterKeyId"),
            "subscriptions": Call("list_subscriptions_by_topic", "sns:ListSubscriptionsByTopic",
                                  params={"TopicArn": "{TopicArn}"}, result="Subscriptions", paginate=True),
            "tag_list": Call("list_tags_for_resource", "sns:ListTagsForResource",
                             params={"ResourceArn": "{TopicArn}"}, result="Tags"),
        },
        id="TopicArn", arn="{TopicArn}", display="TopicName", normalise=_topic, tags="tag_list",
        description="SNS topics: encrypted (a KMS key), encryption (as text), kms_customer_managed, "
                    "public_statements, tls_only_policy (a Deny for everyone on sns:Publish when "
                    "aws:SecureTransport is false) and http_subscriptions (\"http://host\" of each plain-HTTP "
                    "subscription; paths and queries are never kept).",
    ),
]
