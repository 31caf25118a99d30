"""KMS keys with their rotation state."""
from auditbook.collect.spec import Call, ResourceType

ROTATABLE = "KeyManager=='CUSTOMER' && KeySpec=='SYMMETRIC_DEFAULT' && Origin=='AWS_KMS' && KeyState=='Enabled'"


def _lift_metadata(key, _shared):
    key.update(key.pop("metadata", None) or {})
    return key


def _key(key, _shared):
    rotations = key.get("rotations") or []
    dates = sorted(r["RotationDate"] for r in rotations if r.get("RotationDate"))
    key["rotation_enabled"] = bool((key.get("rotation") or {}).get("KeyRotationEnabled"))
    key["last_rotated"] = dates[-1] if dates else None
    key["customer_symmetric"] = (key.get("KeyManager") == "CUSTOMER" and key.get("KeySpec") == "SYMMETRIC_DEFAULT"
                                 and key.get("Origin") == "AWS_KMS")
    return key


RESOURCE_TYPES = [
    ResourceType(
        name="aws.kms.key", service="kms",
        list=Call("list_keys", "kms:ListKeys", result="Keys"),
        details={
            "metadata": Call("describe_key", "kms:DescribeKey", params={"KeyId": "{KeyId}"}, result="KeyMetadata"),
            "rotation": Call("get_key_rotation_status", "kms:GetKeyRotationStatus", params={"KeyId": "{KeyId}"},
                             when="metadata." + ROTATABLE.replace(" && ", " && metadata.")),
            "rotations": Call("list_key_rotations", "kms:ListKeyRotations", params={"KeyId": "{KeyId}"},
                              result="Rotations", when="rotation.KeyRotationEnabled", paginate=True),
        },
        id="KeyId", arn="{KeyArn}", display="Description || KeyId",
        normalise=lambda k, s: _key(_lift_metadata(k, s), s),
        description="KMS keys: KeyMetadata fields at top level, rotation_enabled, last_rotated (latest rotation date).",
    ),
]
