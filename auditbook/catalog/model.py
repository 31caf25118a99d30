"""controls.yaml: the SOC 2 criteria, their manual evidence and their automated checks.

Validated before anything runs; each mistake is reported as one line naming the control or check
and the field (CatalogError, exit code 2).
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditbook.catalog.expressions import analyse, compile_expression
from auditbook.catalog.functions import takes_one_record
from auditbook.errors import UserError, field_path, first_error, name_of, shown
from auditbook.plugins import check_functions, resource_types
from auditbook.yamlfile import parse_yaml, read_text

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "controls.yaml"

Category = Literal["security", "availability", "confidentiality", "processing-integrity", "privacy"]
Cadence = Literal["monthly", "quarterly", "semiannual", "annual", "per-event"]
Severity = Literal["critical", "high", "medium", "low", "informational"]
CONTROL_ID = r"^(CC[1-9]\.[1-9]|A1\.[1-9]|C1\.[1-9]|PI1\.[1-9]|P[1-8]\.[1-9])$"


class CatalogError(UserError):
    pass


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ManualEvidence(Strict):
    name: str = Field(min_length=3, max_length=200)  # stored as ManualEvidence.item: String(200)
    cadence: Cadence
    description: Optional[str] = None


class Control(Strict):
    id: str = Field(pattern=CONTROL_ID)
    category: Category
    group: str = Field(min_length=3)
    title: str = Field(min_length=5)
    owner: str = Field(min_length=2)
    test_procedure: str = Field(min_length=20)
    manual_evidence: list[ManualEvidence] = Field(default_factory=list)


class Check(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,80}$")
    title: str = Field(min_length=5)
    controls: list[str] = Field(min_length=1)
    resource: str
    scope: Literal["resource", "account"] = "resource"
    applies: Optional[str] = None
    expect: Optional[str] = None
    function: Optional[str] = None
    severity: Severity
    remediation: str = Field(min_length=10)
    actions: list[str] = Field(min_length=1)
    # scoping: only resources whose tag KEY has one of the listed values; only these account ids
    tags: dict[str, list[str]] = Field(default_factory=dict)
    accounts: list[str] = Field(default_factory=list)

    def covers_account(self, account: str) -> bool:
        return not self.accounts or account in self.accounts

    def matches_tags(self, tags: dict) -> bool:
        return all(tags.get(key) in values for key, values in self.tags.items())

    def in_scope(self, account: str, tags: dict) -> bool:
        return self.covers_account(account) and self.matches_tags(tags)


class Catalog(Strict):
    version: Literal[1]
    framework: str
    controls: list[Control] = Field(min_length=1)
    checks: list[Check] = Field(default_factory=list)
    sha256: str = ""
    path: str = ""

    def control(self, cid: str) -> Control:
        return next(c for c in self.controls if c.id == cid)

    def checks_for(self, cid: str) -> list[Check]:
        return [c for c in self.checks if cid in c.controls]


def _first_error(exc: ValidationError) -> tuple[str, str]:
    loc, message = first_error(exc)
    return field_path(loc) or "(document)", message


def _validate_items(kind: str, items, model, where: str):
    out = []
    for index, item in enumerate(items or []):
        ident = item.get("id") if isinstance(item, dict) else None
        label = f"{kind} {name_of(ident)}" if ident else f"{kind} #{index + 1}"
        if not isinstance(item, dict):
            raise CatalogError(f"{where}: {label}: must be a mapping")
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            field_name, msg = _first_error(exc)
            raise CatalogError(f"{where}: {label}: field {field_name}: {msg}")
    return out


def load_catalog(path: Optional[Path] = None) -> Catalog:
    """Read and validate a catalog; raises CatalogError with one line on the first mistake."""
    path = Path(path or DEFAULT_PATH)
    try:
        text = read_text(path)
        raw = parse_yaml(text, path)
    except CatalogError:
        raise
    except UserError as exc:
        raise CatalogError(str(exc)) from None
    if not isinstance(raw, dict):
        raise CatalogError(f"{path}: must be a mapping with version, framework, controls and checks")
    for key in ("controls", "checks"):
        if key in raw and not isinstance(raw[key], list):
            raise CatalogError(f"{path}: field {key}: must be a list")
    controls = _validate_items("control", raw.get("controls"), Control, str(path))
    checks = _validate_items("check", raw.get("checks"), Check, str(path))
    try:
        catalog = Catalog.model_validate({k: v for k, v in raw.items() if k not in ("controls", "checks")}
                                         | {"controls": controls, "checks": checks})
    except ValidationError as exc:
        field_name, msg = _first_error(exc)
        raise CatalogError(f"{path}: field {field_name}: {msg}")
    _cross_check(catalog, str(path))
    catalog.sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()  # the file's bytes: it is UTF-8
    catalog.path = str(path)
    return catalog


def _cross_check(catalog: Catalog, where: str) -> None:
    seen: set[str] = set()
    for control in catalog.controls:
        if control.id in seen:
            raise CatalogError(f"{where}: control {control.id}: field id: duplicate id")
        seen.add(control.id)
    types, functions = resource_types(), check_functions()
    check_ids: set[str] = set()
    for check in catalog.checks:
        label = f"{where}: check {check.id}"
        if check.id in check_ids:
            raise CatalogError(f"{label}: field id: duplicate id")
        check_ids.add(check.id)
        for cid in check.controls:
            if cid not in seen:
                raise CatalogError(f"{label}: field controls: unknown criterion {shown(cid)}")
        if check.resource not in types:
            raise CatalogError(f"{label}: field resource: unknown resource type {shown(check.resource)}")
        if (check.expect is None) == (check.function is None):
            raise CatalogError(f"{label}: field expect: give exactly one of expect or function")
        if check.function is not None and check.function not in functions:
            raise CatalogError(f"{label}: field function: no registered function {shown(check.function)}")
        if check.function is not None and not takes_one_record(functions[check.function]):
            raise CatalogError(f"{label}: field function: {shown(check.function)} must take exactly one "
                               "argument (the resource record)")
        read_types = {check.resource}
        for field_name in ("applies", "expect"):
            text = getattr(check, field_name)
            if text is None:
                continue
            try:
                parsed = compile_expression(text)
            except ValueError as exc:
                raise CatalogError(f"{label}: field {field_name}: {exc}")
            for rtype in analyse(parsed).types:
                if rtype not in types:
                    raise CatalogError(f"{label}: field {field_name}: values() names unknown resource type {shown(rtype)}")
                read_types.add(rtype)
        for account in check.accounts:
            if not re.fullmatch(r"[0-9]{12}", account):
                raise CatalogError(f"{label}: field accounts: {shown(account)} is not a 12-digit account id")
        for key, values in check.tags.items():
            if not values:
                raise CatalogError(f"{label}: field tags.{name_of(key)}: list at least one value")
        if check.tags and not types[check.resource].tags:
            raise CatalogError(f"{label}: field tags: {check.resource} records carry no tags")
        declared = {a for t in read_types for a in types[t].actions()}
        for action in check.actions:
            if not re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9*]+", action):
                raise CatalogError(f"{label}: field actions: {shown(action)} is not an IAM action")
            if action not in declared:
                raise CatalogError(f"{label}: field actions: {shown(action)} is not made by the collectors of "
                                   f"{', '.join(sorted(read_types))} (they make {', '.join(sorted(declared))})")
