"""Kinesis data streams: server-side encryption with a KMS key (and who manages it) and retention."""
from __future__ import annotations

from auditbook.collect.spec import Call, ResourceType
from collectors.keys import key_facts, key_text, kms_key_call


def _stream(stream, _shared):
    stream.update(stream.pop("summary", None) or {})
    kms = stream.get("EncryptionType") == "KMS"
    facts = key_facts(stream.get("KeyId") if kms else None, stream.get("kms_key"))
    stream.update(facts)
    stream["encrypted"] = kms
    stream["encryption"] = key_text(facts) if facts["kms_key_id"] else ("KMS" if kms else "none")
    return stream


RESOURCE_TYPES = [
    ResourceType(
        name="aws.kinesis.stream", service="kinesis",
        list=Call("list_streams", "kinesis:ListStreams", result="StreamNames[].{StreamName: @}"),
        details={
            "summary": Call("describe_stream_summary", "kinesis:DescribeStreamSummary",
                            params={"StreamName": "{StreamName}"}, result="StreamDescriptionSummary"),
            "kms_key": kms_key_call("summary.KeyId"),
            "tag_list": Call("list_tags_for_stream", "kinesis:ListTagsForStream",
                             params={"StreamName": "{StreamName}", "Limit": 50}, result="Tags"),
        },
        id="StreamName", arn="{StreamARN}", normalise=_stream, tags="tag_list",
        description="Kinesis data streams: StreamDescriptionSummary fields at top level (RetentionPeriodHours, "
                    "EncryptionType, KeyId), encrypted, encryption (as text) and kms_customer_managed.",
    ),
]
