"""app-audit.yml: which CloudWatch Logs groups hold the application's audit events and how to read
them (docs/app-audit.md). The one place this is configured; `auditbook app-audit ingest --config` and
`auditbook watch --app-audit` read it. A bad file is one line naming the file, the field and the value.

    sources:                                  # each log group read: its region, and the role to assume
      - log_group: /prod/app/audit            #   (none: the current credentials' account)
        region: us-east-1
        role: arn:aws:iam::123456789012:role/AuditbookReader
        external_id: optional
    fields:                                   # where each field is in an event's JSON (dotted paths)
      event: event_type                       #   the defaults: the seed application's names
      user: user
      source_ip: source_ip
      user_agent: user_agent
      time: timestamp
      action: action
      outcome: outcome
      resource: resource
    event_types:                              # the event field's value(s) for each kind
      data_access: [data_access]              #   CC6.3
      system_change: [system_change]          #   CC8.1
      admin_action: [admin_action]            #   CC6.3 (privileged access)
    lag: 15m                                  # how late an event may reach CloudWatch Logs
    max_message_kb: 256                       # a larger message is an evidence gap, not parsed
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auditbook.errors import UserError, field_path, first_duplicate, first_error, shown
from auditbook.monitor.rules import seconds
from auditbook.store.app_audit import KINDS, OTHER
from auditbook.yamlfile import load_yaml

DEFAULT_FIELDS = {"event": "event_type", "user": "user", "source_ip": "source_ip", "user_agent": "user_agent",
                  "time": "timestamp", "action": "action", "outcome": "outcome", "resource": "resource"}
FIELD_PATH = r"^[A-Za-z0-9_@$-]{1,64}(?:\.[A-Za-z0-9_@$-]{1,64}){0,7}$"
LOG_GROUP = r"^[A-Za-z0-9._/#-]{1,512}$"  # CloudWatch Logs' own rule for a group name
REGION = r"^[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}$"
ROLE_ARN = r"^arn:aws[a-z-]{0,10}:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$"
MAX_LAG = 86400
MAX_MESSAGE_KB = 1024  # CloudWatch Logs takes events of at most 1 MiB


class Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: str = Field(DEFAULT_FIELDS["event"], pattern=FIELD_PATH)
    user: str = Field(DEFAULT_FIELDS["user"], pattern=FIELD_PATH)
    source_ip: str = Field(DEFAULT_FIELDS["source_ip"], pattern=FIELD_PATH)
    user_agent: str = Field(DEFAULT_FIELDS["user_agent"], pattern=FIELD_PATH)
    time: str = Field(DEFAULT_FIELDS["time"], pattern=FIELD_PATH)
    action: str = Field(DEFAULT_FIELDS["action"], pattern=FIELD_PATH)
    outcome: str = Field(DEFAULT_FIELDS["outcome"], pattern=FIELD_PATH)
    resource: str = Field(DEFAULT_FIELDS["resource"], pattern=FIELD_PATH)


_Values = Union[str, list[str]]


class EventTypes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data_access: _Values = ["data_access"]
    system_change: _Values = ["system_change"]
    admin_action: _Values = ["admin_action"]

    @field_validator("data_access", "system_change", "admin_action")
    @classmethod
    def _listed(cls, value: _Values) -> list[str]:
        values = [value] if isinstance(value, str) else value
        if not values:
            raise ValueError("name at least one value")
        for text in values:
            if not 1 <= len(text) <= 100 or not text.isprintable():
                raise ValueError(f"{shown(text)} is not 1 to 100 printable characters")
        return values


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    log_group: str = Field(pattern=LOG_GROUP)
    region: str = Field(pattern=REGION)
    role: Optional[str] = Field(None, pattern=ROLE_ARN)
    external_id: Optional[str] = Field(None, pattern=r"^[A-Za-z0-9+=,.@:/_-]{2,1224}$")


class AppAuditConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[Source] = Field(min_length=1, max_length=500)
    fields: Fields = Fields()
    event_types: EventTypes = EventTypes()
    lag: str = "15m"
    max_message_kb: int = Field(256, ge=1, le=MAX_MESSAGE_KB)

    @property
    def lag_seconds(self) -> int:
        return seconds(self.lag)

    def kind_of(self, event_type: str) -> str:
        """The kind an event type value names (OTHER when none)."""
        for kind in KINDS:
            if event_type in getattr(self.event_types, kind):
                return kind
        return OTHER


def load_config(path: Path) -> AppAuditConfig:
    """app-audit.yml, validated (auditbook.yamlfile: a regular file, bounded, no aliases); any problem is
    a UserError naming the file, the field and the value."""
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise UserError(f"{path}: the top level must be a mapping with sources, not {type(raw).__name__}")
    try:
        config = AppAuditConfig.model_validate(raw)
    except ValidationError as exc:
        loc, message = first_error(exc)
        raise UserError(f"{path}: {field_path(loc) or 'top level'}: {message}")
    try:
        if not 0 <= config.lag_seconds <= MAX_LAG:
            raise ValueError(f"{shown(config.lag)} is more than a day")
    except ValueError as exc:
        raise UserError(f"{path}: lag: {exc}")
    where = [(s.role or "", s.region, s.log_group) for s in config.sources]
    twice = first_duplicate(where)
    if twice is not None:
        raise UserError(f"{path}: sources.{where.index(twice, where.index(twice) + 1)}: log group "
                        f"{shown(twice[2])} in {twice[1]} is listed twice")
    values = [v for kind in KINDS for v in getattr(config.event_types, kind)]
    again = first_duplicate(values)
    if again is not None:
        raise UserError(f"{path}: event_types: {shown(again)} names more than one kind")
    return config
