"""SQS queues: encryption at rest (SSE-SQS or a KMS key, and who manages the key), a queue policy that
refuses plain HTTP, public grants, and the dead-letter queue."""
from __future__ import annotations

from auditbook.collect.spec import Call, ResourceType
from collectors.keys import key_facts, key_text, kms_key_call
from collectors.policies import (
    denies_insecure_transport,
    policy_document,
    public_statements,
)


def _queue(queue, _shared):
    attrs = queue.get("attributes") or {}
    queue["QueueArn"] = attrs.get("QueueArn")
    queue["QueueName"] = str(queue.get("QueueUrl") or "").rstrip("/").rsplit("/", 1)[-1]
    facts = key_facts(attrs.get("KmsMasterKeyId"), queue.get("kms_key"))
    sse_sqs = str(attrs.get("SqsManagedSseEnabled")).lower() == "true"
    queue.update(facts)
    queue["encrypted"] = bool(facts["kms_key_id"]) or sse_sqs
    queue["encryption"] = key_text(facts) if facts["kms_key_id"] else ("SSE-SQS (SQS-owned key)" if sse_sqs else "none")
    doc, unreadable = policy_document(attrs.get("Policy"))
    queue["policy_document"] = doc
    queue["public_statements"] = ["policy is not valid JSON"] if unreadable else public_statements(doc)
    queue["tls_only_policy"] = denies_insecure_transport(doc, ("sqs:sendmessage", "sqs:receivemessage"))
    redrive, _bad = policy_document(attrs.get("RedrivePolicy"))
    queue["dead_letter_target"] = (redrive or {}).get("deadLetterTargetArn")
    queue["is_dead_letter_queue"] = bool(queue.get("dead_letter_sources"))
    return queue


RESOURCE_TYPES = [
    ResourceType(
        name="aws.sqs.queue", service="sqs",
        # without MaxResults ListQueues returns at most 1,000 queues and no NextToken
        list=Call("list_queues", "sqs:ListQueues", params={"MaxResults": 1000}, result="QueueUrls[].{QueueUrl: @}"),
        details={
            "attributes": Call("get_queue_attributes", "sqs:GetQueueAttributes",
                               params={"QueueUrl": "{QueueUrl}", "AttributeNames": ["All"]}, result="Attributes"),
            "kms_key": kms_key_call("attributes.KmsMasterKeyId"),
            "dead_letter_sources": Call("list_dead_letter_source_queues", "sqs:ListDeadLetterSourceQueues",
                                        params={"QueueUrl": "{QueueUrl}"}, result="queueUrls", paginate=True),
            "tag_map": Call("list_queue_tags", "sqs:ListQueueTags", params={"QueueUrl": "{QueueUrl}"}, result="Tags"),
        },
        id="QueueUrl", arn="{QueueArn}", display="QueueName", normalise=_queue, tags="tag_map",
        description="SQS queues: encrypted (SSE-SQS or a KMS key), encryption (as text), kms_customer_managed, "
                    "public_statements (Allow to * without a restricting condition), tls_only_policy (a Deny "
                    "for everyone when aws:SecureTransport is false covering send and receive), "
                    "dead_letter_target (RedrivePolicy) and is_dead_letter_queue (other queues redrive to it).",
    ),
]
