"""Thresholds a company sets (docs/parameters.md): named parameters with a default in controls.yaml
(`parameters:`), overridden in the one file `parameters_file:` names, validated, and read by checks as
`${name}` — in an expression as a JMESPath literal of the value, in text (title, remediation, message)
as the value written for a person. Pure: no AWS, no database."""
from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from auditbook.errors import UserError, name_of, shown, unsafe_character
from auditbook.yamlfile import parse_yaml, read_text

PARAMETER_NAME = r"^[a-z][a-z0-9_]{2,60}$"
REFERENCE = re.compile(r"\$\{([^{}]*)\}")
MAX_LIST = 1000
MAX_TEXT = 300
ParameterType = Literal["integer", "boolean", "string", "string_list", "cidr_list"]


class Parameter(BaseModel):
    """One threshold: its type and default (bounds: the value for an integer, the length for a
    string, the number of entries for a list), and, once loaded, the value in force and its source."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    type: ParameterType
    default: Any
    description: str = Field(min_length=5, max_length=400)
    minimum: Optional[int] = None
    maximum: Optional[int] = None
    pattern: Optional[str] = None  # a string's (or each list entry's) form, a regular expression it must match whole
    value: Any = None  # set at load: the default, or the company's value
    source: str = "default"  # "default", or the company file that set it


def _checked_integer(param: Parameter, value) -> int:
    if type(value) is not int:
        raise ValueError(f"must be a whole number (value {shown(value)})")
    if param.minimum is not None and value < param.minimum:
        raise ValueError(f"must be at least {param.minimum} (value {value})")
    if param.maximum is not None and value > param.maximum:
        raise ValueError(f"must be at most {param.maximum} (value {value})")
    return value


def _checked_string(param: Parameter, value) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text (value {shown(value)})")
    bad = unsafe_character(value, one_line=True)
    if bad is not None:
        raise ValueError(f"holds the unsafe character {bad!r}")
    low, high = param.minimum if param.minimum is not None else 0, min(param.maximum or MAX_TEXT, MAX_TEXT)
    if not low <= len(value) <= high:
        raise ValueError(f"must be {low} to {high} characters (value {shown(value)})")
    if param.pattern and not re.fullmatch(param.pattern, value):
        raise ValueError(f"must match {param.pattern} (value {shown(value)})")
    return value


def _checked_list(param: Parameter, value, cidr: bool) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f"must be a list (value {shown(value)})")
    low, high = param.minimum or 0, min(param.maximum or MAX_LIST, MAX_LIST)
    if not low <= len(value) <= high:
        raise ValueError(f"must list {low} to {high} entries ({len(value)} given)")
    entry = Parameter(type="string", default="", description="one entry", minimum=1, pattern=param.pattern)
    out = []
    for index, item in enumerate(value):
        try:
            text = _checked_string(entry, item)
            network = ipaddress.ip_network(text, strict=True) if cidr else None
            if network is not None and network.prefixlen == 0:
                raise ValueError(f"is {text}: every address (a list of approved networks cannot approve them all)")
            out.append(str(network) if cidr else text)
        except ValueError as exc:
            reason = str(exc) if not cidr or not isinstance(item, str) or str(exc).startswith("is ") else \
                f"is not a network in CIDR notation (value {shown(item)})"
            raise ValueError(f"entry {index + 1} {reason}") from None
        if out.count(out[-1]) > 1:
            raise ValueError(f"entry {index + 1} repeats {shown(out[-1])} (each entry once)")
    return out


def checked_value(param: Parameter, value):
    """The value, validated against the parameter's type and bounds; ValueError with a short reason."""
    if param.type == "integer":
        return _checked_integer(param, value)
    if param.type == "boolean":
        if type(value) is not bool:
            raise ValueError(f"must be true or false (value {shown(value)})")
        return value
    if param.type == "string":
        return _checked_string(param, value)
    return _checked_list(param, value, cidr=param.type == "cidr_list")


def declared_parameters(raw, where: str) -> dict[str, Parameter]:
    """controls.yaml's `parameters:` validated, each with its default in force."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{where}: field parameters: must be a mapping of name to {{type, default, description}}")
    out = {}
    for name, spec in raw.items():
        label = f"{where}: parameter {name_of(name)}"
        if not isinstance(name, str) or not re.fullmatch(PARAMETER_NAME, name):
            raise UserError(f"{label}: field name: lower-case letters, digits and _ (3 to 61 characters)")
        if not isinstance(spec, dict):
            raise UserError(f"{label}: must be a mapping with type, default and description")
        try:
            param = Parameter.model_validate(spec)
        except ValueError as exc:
            raise UserError(f"{label}: {_pydantic_reason(exc)}") from None
        try:
            re.compile(param.pattern or "")
        except re.error as exc:
            raise UserError(f"{label}: field pattern: not a regular expression ({exc})") from None
        try:
            param.value = checked_value(param, param.default)
        except ValueError as exc:
            raise UserError(f"{label}: field default: {exc}") from None
        out[name] = param
    return out


def _pydantic_reason(exc) -> str:
    errors = getattr(exc, "errors", lambda: [])()
    if not errors:
        return str(exc)
    first = errors[0]
    return f"field {'.'.join(str(p) for p in first['loc']) or '(parameter)'}: {first['msg']}"


def apply_company_values(params: dict[str, Parameter], path: Path) -> str:
    """The company's values from `path` ({version: 1, parameters: {name: value}}) set in force, each
    validated; the file's text (hashed into the catalog's digest)."""
    text = read_text(path)
    raw = parse_yaml(text, path)
    if raw is None:
        return text
    if not isinstance(raw, dict) or set(raw) - {"version", "parameters"}:
        raise UserError(f"{path}: must be a mapping with version: 1 and parameters: {{name: value}}")
    if type(raw.get("version")) is not int or raw.get("version") != 1:
        raise UserError(f"{path}: field version: must be 1 (value {shown(raw.get('version'))})")
    values = raw.get("parameters") or {}
    if not isinstance(values, dict):
        raise UserError(f"{path}: field parameters: must be a mapping of parameter name to value")
    for name, value in values.items():
        if name not in params:
            raise UserError(f"{path}: field parameters.{name_of(name)}: not a parameter of the catalog "
                            f"(known: {', '.join(sorted(params)) or 'none'})")
        try:
            params[name].value = checked_value(params[name], value)
        except ValueError as exc:
            raise UserError(f"{path}: field parameters.{name}: {exc}") from None
        params[name].source = path.name
    return text


def as_literal(value) -> str:
    """A value as a JMESPath literal: `30`, `["10.0.0.0/8"]`, `true`."""
    return "`" + json.dumps(value).replace("`", "\\`") + "`"


def as_text(value) -> str:
    """A value as a person reads it beside a check: 30, true, 10.0.0.0/8, 192.168.0.0/16, (none)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(as_text(v) for v in value) or "(none)"
    return str(value)


def references(text: Optional[str]) -> list[str]:
    """The parameter names a text reads, in order of first use."""
    return list(dict.fromkeys(REFERENCE.findall(text or "")))


def substituted(text: Optional[str], params: dict[str, Parameter], literal: bool) -> Optional[str]:
    """`text` with each ${name} replaced by its value in force (as a JMESPath literal when `literal`);
    ValueError naming an unknown parameter."""
    if text is None:
        return None

    def value_of(match: re.Match) -> str:
        name = match.group(1)
        if name not in params:
            raise ValueError(f"unknown parameter ${{{name_of(name)}}} (known: {', '.join(sorted(params)) or 'none'})")
        value = params[name].value
        return as_literal(value) if literal else as_text(value)

    return REFERENCE.sub(value_of, text)


def parameters_in_force(raw: dict, path: Path) -> tuple[dict[str, Parameter], Optional[str]]:
    """A catalog's parameters with the values in force (defaults, then the company's file named by
    parameters_file, beside the catalog), and that file's text (None: no file)."""
    params = declared_parameters(raw.get("parameters"), str(path))
    name = raw.get("parameters_file")
    if name is None:
        return params, None
    if not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name:
        raise UserError(f"{path}: field parameters_file: must name a file beside the catalog (value {shown(name)})")
    return params, apply_company_values(params, path.parent / name)


def parameter_rows(parameters: dict[str, Parameter], checks) -> list[dict]:
    """Every parameter as the packet and `auditbook parameters` list it: value in force, default,
    where it was set, bounds, and the checks that read it."""
    return [{"parameter": name, "value": param.value, "default": param.default, "source": param.source,
             "type": param.type, "minimum": param.minimum, "maximum": param.maximum,
             "description": param.description, "checks": [c.id for c in checks if name in c.parameters]}
            for name, param in sorted(parameters.items())]
