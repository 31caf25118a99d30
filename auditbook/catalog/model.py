"""controls.yaml: the SOC 2 criteria, their manual evidence and their automated checks.

Validated before anything runs; each mistake is reported as one line naming the control or check
and the field (CatalogError, exit code 2).
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Literal, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from auditbook.catalog.expressions import analyse, compile_expression
from auditbook.catalog.functions import takes_one_record
from auditbook.catalog.messages import resolved_check
from auditbook.catalog.parameters import Parameter, parameters_in_force
from auditbook.errors import UserError, field_path, first_error, name_of, shown
from auditbook.plugins import check_functions, resource_types
from auditbook.yamlfile import parse_yaml, read_text

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "controls.yaml"

Category = Literal["security", "availability", "confidentiality", "processing-integrity", "privacy"]
Cadence = Literal["monthly", "quarterly", "semiannual", "annual", "per-event"]
Severity = Literal["critical", "high", "medium", "low", "informational"]
Frequency = Literal["annual", "quarterly", "monthly", "weekly", "daily", "many-times-a-day"]
CONTROL_ID = r"^(CC[1-9]\.[1-9]|A1\.[1-9]|C1\.[1-9]|PI1\.[1-9]|P[1-8]\.[1-9])$"
COMPANY_ID = r"^[A-Za-z][A-Za-z0-9._-]{0,39}$"  # a company control's id, e.g. AC-01


class CatalogError(UserError):
    pass


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ManualEvidence(Strict):
    name: str = Field(min_length=3, max_length=200)  # stored as ManualEvidence.item: String(200)
    cadence: Cadence
    description: Optional[str] = None
    # items matched to the population they evidence (docs/manual-evidence.md): `per: incident` (each
    # incident of the period has its own approved record), `per: change` / `per: access-change` (each
    # CloudTrail write event / IAM write event of the period is linked to a ticket), both per-event;
    # `per: account` (each account in scope has its own approved review every cadence)
    per: Optional[Literal["incident", "change", "access-change", "account"]] = None

    @model_validator(mode="after")
    def _per_fits_cadence(self):
        if self.per == "account" and self.cadence == "per-event":
            raise ValueError("per: account is one review per account per cycle: give its cadence (e.g. quarterly)")
        if self.per not in (None, "account") and self.cadence != "per-event":
            raise ValueError(f"per: {self.per} needs cadence per-event (not {self.cadence})")
        return self


class Control(Strict):
    id: str = Field(pattern=CONTROL_ID)
    category: Category
    group: str = Field(min_length=3)
    title: str = Field(min_length=5)
    owner: str = Field(min_length=2)
    test_procedure: str = Field(min_length=20)
    manual_evidence: list[ManualEvidence] = Field(default_factory=list)
    # how often the control operates, which sizes its sample (docs/samples.md); sample_size overrides
    frequency: Optional[Frequency] = None
    sample_size: Optional[int] = Field(default=None, ge=1, le=1000)


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
    # the FAIL message: what is wrong, with {JMESPath} placeholders (catalog/messages.py)
    message: Optional[str] = Field(default=None, min_length=3, max_length=600)

    _parameters: list[str] = PrivateAttr(default_factory=list)  # set at load, when its texts are resolved

    @property
    def parameters(self) -> list[str]:
        """The parameters the check reads, in order of first use."""
        return list(self._parameters)

    def covers_account(self, account: str) -> bool:
        return not self.accounts or account in self.accounts

    def matches_tags(self, tags: dict) -> bool:
        return all(tags.get(key) in values for key, values in self.tags.items())

    def in_scope(self, account: str, tags: dict) -> bool:
        return self.covers_account(account) and self.matches_tags(tags)


class CompanyControl(Strict):
    """One of the company's own controls (docs/company-controls.md): its words, owner and frequency,
    mapped to the criteria it addresses and to the checks and manual items that evidence it."""
    id: str = Field(pattern=COMPANY_ID)
    statement: str = Field(min_length=1, max_length=4000)
    owner: str = Field(min_length=2, max_length=200)
    frequency: Frequency
    criteria: list[str] = Field(min_length=1, max_length=100)
    checks: list[str] = Field(default_factory=list, max_length=500)
    manual_items: list[str] = Field(default_factory=list, max_length=500)  # "CRITERION: item name"


class Catalog(Strict):
    version: Literal[1]
    framework: str
    controls: list[Control] = Field(min_length=1)
    checks: list[Check] = Field(default_factory=list)
    include: Optional[str] = Field(default=None, min_length=1)  # the company's control library (a file)
    company_controls: list[CompanyControl] = Field(default_factory=list)
    parameters_file: Optional[str] = Field(default=None, min_length=1)  # the company's thresholds (a file)
    parameters: dict[str, Parameter] = Field(default_factory=dict)  # set at load: values in force
    parameters_path: str = ""  # the company's parameters file, when there is one
    sha256: str = ""  # of the catalog file's bytes, then the included library's, then the parameters file's
    path: str = ""
    library_path: str = ""  # the included company control library, when there is one

    def parameter_value(self, name: str):  # a threshold's value in force (docs/parameters.md)
        return self.parameters[name].value

    def company_control(self, ident: str) -> CompanyControl:
        return next(c for c in self.company_controls if c.id == ident)

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


_validated: dict[str, tuple[tuple, Catalog]] = {}  # catalog file -> (its sources, the catalog); get/set atomic


def load_catalog(path: Optional[Path] = None) -> Catalog:
    """Read and validate a catalog; raises CatalogError with one line on the first mistake. The same files
    (byte for byte: catalog, included library, parameters file) under the same registered resource types
    and functions are validated once per process; each call gets a copy of its own."""
    path = Path(path or DEFAULT_PATH)
    text = _text_of(path, required=True)
    cached = _validated.get(os.path.abspath(path))
    if cached is not None and cached[0] == _sources(path, text, cached[1]):
        return cached[1].model_copy(deep=True)
    catalog = _validated_catalog(path, text)
    sources = _sources(path, text, catalog)
    text, include, _, (library, params), _ = sources
    if files_digest(text, library if include else None, params) == catalog.sha256:  # else edited meanwhile:
        _validated[os.path.abspath(path)] = (sources, catalog.model_copy(deep=True))  # not cached, read again
    return catalog


def files_digest(text: str, library: Optional[str], params: Optional[str]) -> str:
    """catalog.sha256: of the catalog's bytes (UTF-8), then the included library's, then the parameters file's."""
    return hashlib.sha256(text.encode("utf-8") + (b"\0" + library.encode("utf-8") if library is not None else b"")
                          + (b"\0\0" + params.encode("utf-8") if params is not None else b"")).hexdigest()


def _text_of(path: Path, required: bool = False) -> Optional[str]:
    """A file's text; a file that cannot be read is a CatalogError if required, else None."""
    try:
        return read_text(path)
    except UserError as exc:
        if required:
            raise CatalogError(str(exc)) from None
        return None


def _sources(path: Path, text: str, catalog: Catalog) -> tuple:
    """What a validated catalog depends on: its files' texts (None: unreadable, as the full load reports)
    and the registered resource types and check functions (kept, not their ids)."""
    files = tuple(_text_of(path.parent / name) if name else None for name in (catalog.include, catalog.parameters_file))
    registered = tuple(tuple(sorted(found.items())) for found in (resource_types(), check_functions()))
    return text, catalog.include, catalog.parameters_file, files, registered


def _validated_catalog(path: Path, text: str) -> Catalog:
    try:
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
    for key in ("company_controls", "library_path"):
        if key in raw:
            raise CatalogError(f"{path}: field {key}: the company's controls go in their own file, named by include:")
    try:
        params, params_text = parameters_in_force(raw, path)
        raw_checks = [resolved_check(item, params, str(path)) for item in raw.get("checks") or []]
    except UserError as exc:
        raise CatalogError(str(exc)) from None
    controls = _validate_items("control", raw.get("controls"), Control, str(path))
    checks = _validate_items("check", [item for item, _ in raw_checks], Check, str(path))
    for check, (_, used) in zip(checks, raw_checks):
        check._parameters = used
    try:
        catalog = Catalog.model_validate({k: v for k, v in raw.items() if k not in ("controls", "checks", "parameters")}
                                         | {"controls": controls, "checks": checks, "parameters": params})
    except ValidationError as exc:
        field_name, msg = _first_error(exc)
        raise CatalogError(f"{path}: field {field_name}: {msg}")
    _cross_check(catalog, str(path))
    library_path, library_text = _include(catalog, path)
    catalog.sha256 = files_digest(text, library_text if library_path else None, params_text)
    catalog.path = str(path)
    if params_text is not None:
        catalog.parameters_path = str(path.parent / catalog.parameters_file)
    return catalog


# -- the company's own controls: a library file named by `include:` (docs/company-controls.md) -------

def _include(catalog: Catalog, path: Path) -> tuple[Optional[Path], str]:
    """Load the library `include:` names (relative to the catalog's folder) into the catalog."""
    if catalog.include is None:
        return None, ""
    library = path.parent / catalog.include
    try:
        text = read_text(library)
        raw = parse_yaml(text, library)
    except UserError as exc:
        raise CatalogError(f"{path}: field include: {exc}") from None
    catalog.company_controls = validate_company_controls(library_entries(raw, library), catalog, str(library))
    catalog.library_path = str(library)
    return library, text


def library_entries(raw, where) -> list:
    """The raw list of controls of a library file ({version: 1, company_controls: [...]})."""
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: must be a mapping with version and company_controls")
    for key in raw:
        if key not in ("version", "company_controls"):
            raise CatalogError(f"{where}: field {name_of(key)}: not a field of a company control library "
                               "(version, company_controls)")
    if type(raw.get("version")) is not int or raw["version"] != 1:
        raise CatalogError(f"{where}: field version: must be 1 (value {shown(raw.get('version'))})")
    entries = raw.get("company_controls")
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{where}: field company_controls: must be a list of at least one control")
    return entries


WINDOWS_DEVICES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def _portable_file_name(ident: str) -> bool:
    """Whether an id can name a file (company/<id>.html) on Linux, macOS and Windows alike."""
    return not ident.endswith(".") and ident.split(".")[0].casefold() not in WINDOWS_DEVICES


def validate_company_controls(entries: list, catalog: Catalog, where: str) -> list[CompanyControl]:
    """Raw company controls validated against the catalog: each mistake one CatalogError line naming
    the file, the control, the field and the value (the CSV import validates through here too)."""
    validated = _validate_items("company control", entries, CompanyControl, where)
    criteria, check_ids, seen = {c.id for c in catalog.controls}, {c.id: c for c in catalog.checks}, set()
    for company in validated:
        label = f"{where}: company control {company.id}"
        if company.id.casefold() in seen:  # its page is company/<id>.html: AC-01 and ac-01 are one file on macOS/Windows
            raise CatalogError(f"{label}: field id: duplicate id (ids are compared without case)")
        seen.add(company.id.casefold())
        if not _portable_file_name(company.id):
            raise CatalogError(f"{label}: field id: {shown(company.id)} cannot name a file on every system "
                               "(a device name like CON or NUL, or a trailing dot)")
        if re.fullmatch(CONTROL_ID, company.id):
            raise CatalogError(f"{label}: field id: {shown(company.id)} is a criterion's id; give the company's own")
        for cid in company.criteria:
            if cid not in criteria:
                raise CatalogError(f"{label}: field criteria: unknown criterion {shown(cid)}")
        for ident in company.checks:
            check = check_ids.get(ident)
            if check is None:
                raise CatalogError(f"{label}: field checks: unknown check {shown(ident)}")
            if not set(check.controls) & set(company.criteria):
                raise CatalogError(f"{label}: field checks: {shown(ident)} evidences {', '.join(check.controls)}, "
                                   "none of this control's criteria")
        for item in company.manual_items:
            _check_item(catalog, company, item, label)
    return validated


def split_item(text: str) -> tuple[str, str]:
    """A manual item reference "CC1.1: Code of conduct" as (criterion, item name)."""
    criterion, sep, name = text.partition(":")
    return criterion.strip(), name.strip() if sep else ""


def _check_item(catalog: Catalog, company: CompanyControl, item: str, label: str) -> None:
    criterion, name = split_item(item)
    if not name:
        raise CatalogError(f"{label}: field manual_items: {shown(item)} must be 'CRITERION: item name'")
    if criterion not in company.criteria:
        raise CatalogError(f"{label}: field manual_items: {shown(item)}: {name_of(criterion)} is not one of this "
                           "control's criteria")
    required = [m.name for m in catalog.control(criterion).manual_evidence]
    if name not in required:
        raise CatalogError(f"{label}: field manual_items: {shown(item)} is not required by {criterion} (it "
                           f"requires: {'; '.join(required) or 'nothing'})")


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
