"""The declarative shape of a collector: resource types made of API calls.

A collector module in collectors/ defines RESOURCE_TYPES, a list of ResourceType. Nothing else
needs editing to add a service: the registry finds every module in the package.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Optional

Params = dict


@dataclass(frozen=True)
class Call:
    """One boto3 call.

    method: the boto3 client method; action: the IAM action it needs.
    params: request parameters; a string value "{Field}" is replaced by the record's field (or by
      account / region / partition), keeping its type.
    result: JMESPath into the response for the value kept (a list for list calls).
    absent: error codes that mean "not configured" rather than "could not be read": the value is
      null and the record notes it; any other error is an evidence gap.
    when: JMESPath over the record so far; the call is made only when it is true.
    service: the boto3 service when it differs from the resource type's.
    region: the one region whose endpoint serves the call, whatever region the scope is read from
      (WAF's CLOUDFRONT scope and CloudFront's log deliveries: us-east-1).
    """

    method: str
    action: str
    params: Params = field(default_factory=dict)
    result: Optional[str] = None
    absent: tuple[str, ...] = ()
    when: Optional[str] = None
    service: Optional[str] = None
    paginate: bool = False  # details only: follow every page (list calls always do)
    static: bool = False  # AWS-defined data, the same in every account: read once per region
    wait_on: tuple[str, ...] = ()  # error codes meaning "not ready yet": retried after a pause (10 tries)
    region: Optional[str] = None


@dataclass(frozen=True)
class ResourceType:
    """A kind of resource and how to collect it.

    name: "aws.<service>.<kind>"; service: boto3 service name.
    scope: "regional" (collected in each region) or "global" (once per account).
    list: the call that enumerates resources (None for a one-per-scope singleton record).
    id: JMESPath to the resource id in a record; singletons use the scope as id.
    arn: format string over the record plus account / region / partition, or None to use the id.
    details: calls per resource, in order; each result is stored under its key in the record.
    shared: calls made once per scope whose results normalise() can use (e.g. route tables).
    normalise: derives convenience fields from the record and shared results (pure function).
    region_of: JMESPath giving the record's region when it differs from the scope (S3 buckets).
    display: JMESPath to the name people know it by (the Name tag is used when this is unset).
    tags: JMESPath to the resource's tags, a list of {Key, Value} (any letter case) or a mapping;
      checks can be scoped by tag (controls.yaml `tags:`).
    """

    name: str
    service: str
    list: Optional[Call]
    id: str = ""
    scope: Literal["regional", "global"] = "regional"
    arn: Optional[str] = None
    details: dict[str, Call] = field(default_factory=dict)
    shared: dict[str, Call] = field(default_factory=dict)
    normalise: Optional[Callable[[dict, dict], dict]] = None
    region_of: Optional[str] = None
    display: Optional[str] = None  # JMESPath to a human name; default: the Name tag, else the id
    tags: Optional[str] = "Tags"
    description: str = ""

    def calls(self) -> list[Call]:
        out = [self.list] if self.list else []
        return out + list(self.shared.values()) + list(self.details.values())

    def actions(self) -> list[str]:
        return sorted({c.action for c in self.calls()})

    def services(self) -> set[str]:
        return {c.service or self.service for c in self.calls()}
