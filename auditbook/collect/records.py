"""What a collection produces — records, the scopes read, evidence gaps, the evidence itself — as plain
data classes without botocore: the evaluator and the store read them, and they cross processes
(a collection process, Dask workers) pickled."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

GLOBAL = "global"


@dataclass(slots=True)
class Gap:
    """Evidence that could not be read: where, which call, and the error."""

    account: str
    region: str
    resource_type: str
    call: str
    error: str
    message: str
    resource: Optional[str] = None

    def reason(self) -> str:
        where = f"{self.account}/{self.region}" + (f" {self.resource}" if self.resource else "")
        return f"evidence gap: {self.call} failed for {where}: {self.error}: {self.message}"


@dataclass(slots=True)
class Record:
    """A normalised resource: its data, where it lives, and the evidence behind it."""

    type: str
    account: str
    region: str
    id: str
    arn: str
    data: dict
    evidence: list[str] = field(default_factory=list)
    gaps: dict[str, Gap] = field(default_factory=dict)  # record key -> why it is unknown
    scope_region: str = ""  # the region it was collected in ("global" for global services)
    name: str = ""  # what people call it (Name tag, group name, bucket name...)
    tags: dict = field(default_factory=dict)  # tag key -> value


def tag_dict(raw: Any) -> dict:
    """Tags as AWS APIs spell them ([{Key, Value}], [{key, value}], or a mapping) as one mapping."""
    if isinstance(raw, dict):
        return {str(k): "" if v is None else str(v) for k, v in raw.items()}
    out = {}
    for item in raw or []:
        if isinstance(item, dict):
            key = item.get("Key", item.get("key", item.get("TagKey")))
            if key is not None:
                value = item.get("Value", item.get("value", item.get("TagValue")))
                out[str(key)] = "" if value is None else str(value)
    return out


@dataclass(slots=True)
class Scope:
    account: str
    region: str
    resource_type: str
    gap: Optional[Gap] = None


@dataclass(slots=True)
class Collection:
    records: list[Record] = field(default_factory=list)
    scopes: list[Scope] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    evidence: dict[str, bytes] = field(default_factory=dict)  # sha256 -> zlib(canonical json)
    calls: int = 0
    calls_by_operation: dict = field(default_factory=dict)
    throttled: dict = field(default_factory=dict)  # "account/region/service" AWS throttled -> calls, throttled, waited
