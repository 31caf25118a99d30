"""The exception register (exceptions.yaml): accepted risks matched to findings by check, account
and resource pattern. A matched FAIL is EXCEPTED until the expiry date, then FAIL again. Never PASS;
an evidence gap (ERROR) is never excepted.

Editing it is authorised here (manage_exceptions) and each change is handed to a `trail`, the
caller's record of it: auditbook.scan.register_trail(engine) writes it to the store's audit log."""
from __future__ import annotations

import datetime as dt
import fnmatch
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditbook.auth import Actor, authorize
from auditbook.errors import (
    UserError,
    field_path,
    first_duplicate,
    first_error,
    name_of,
    shown,
)
from auditbook.yamlfile import YamlDate, load_yaml

DEFAULT_PATH = Path("exceptions.yaml")
EXCEPTED = "EXCEPTED"
# trail(actor, action, exception id, {"before": …} or {"after": …}): records one change of the register
Trail = Callable[[Actor, str, str, dict], None]


class ExceptionEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    check: str = Field(min_length=3)
    account: str = Field(default="*", pattern=r"^(\*|[0-9]{12})$")
    resource: str = Field(default="*", min_length=1)  # fnmatch pattern over the ARN/id or the name
    owner: str = Field(min_length=2)
    justification: str = Field(min_length=10)
    approver: str = Field(min_length=2)
    expires: YamlDate  # YYYY-MM-DD (a YAML timestamp counts by its date)

    def in_force(self, on: dt.date) -> bool:
        return on <= self.expires

    def matches(self, finding) -> bool:
        return (finding.check == self.check and self.account in ("*", finding.account)
                and (fnmatch.fnmatchcase(finding.resource, self.resource)
                     or fnmatch.fnmatchcase(finding.resource_name, self.resource)))


class Register(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exceptions: list[ExceptionEntry] = Field(default_factory=list)


def _one_line(path: Path, raw: dict, exc: ValidationError) -> str:
    loc, message = first_error(exc)
    where = f"field {field_path(loc)}" if loc else "(document)"
    if len(loc) >= 2 and loc[0] == "exceptions" and isinstance(loc[1], int):
        entries = raw.get("exceptions") or []
        entry = entries[loc[1]] if loc[1] < len(entries) and isinstance(entries[loc[1]], dict) else {}
        where = f"exception {name_of(entry['id']) if entry.get('id') else '#' + str(loc[1] + 1)}"
        if len(loc) > 2:
            where += f": field {field_path(loc[2:])}"
    return f"{path}: {where}: {message}"


def load_register(path: Optional[Path] = None, *, required: bool = False,
                  known_checks: Optional[set[str]] = None) -> Register:
    """The register at `path` (none there: empty, or a UserError when `required`). With
    `known_checks` (the catalog's check ids), an exception for any other check is refused: it
    would silently never match."""
    path = Path(path or DEFAULT_PATH)
    if not path.exists() and not path.is_symlink():
        if required:
            raise UserError(f"{path}: no such exceptions file")
        return Register()
    raw = load_yaml(path)
    if raw is None:
        return Register()
    if not isinstance(raw, dict):
        raise UserError(f"{path}: must be a mapping with a list `exceptions`")
    try:
        register = Register.model_validate(raw)
    except ValidationError as exc:
        raise UserError(_one_line(path, raw, exc))
    dupe = first_duplicate(e.id for e in register.exceptions)
    if dupe:
        raise UserError(f"{path}: exception {dupe}: field id: duplicate id")
    for entry in register.exceptions:
        if known_checks is not None and entry.check not in known_checks:
            raise UserError(f"{path}: exception {entry.id}: field check: {shown(entry.check)} is not a check "
                            "in the catalog")
    return register


def save_register(register: Register, path: Optional[Path] = None) -> None:
    """Write atomically (a temporary file renamed over the old one): never half-written."""
    path = Path(path or DEFAULT_PATH)
    data = {"exceptions": [e.model_dump(mode="json") for e in register.exceptions]}
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".exceptions-",
                                   suffix=".yaml")
    except OSError as exc:
        raise UserError(f"{path}: cannot write: {exc.strerror}")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("# auditbook exception register: see docs/exceptions.md\n")
            yaml.safe_dump(data, fh, sort_keys=False, allow_unicode=True)
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise UserError(f"{path}: cannot write: {exc.strerror}")


def apply_exceptions(findings: list, register: Register, on: Optional[dt.date] = None) -> list:
    """Findings with FAILs matched by an exception in force turned into EXCEPTED."""
    on = on or dt.date.today()
    out = []
    for finding in findings:
        if finding.status == "FAIL":
            entry = next((e for e in register.exceptions if e.matches(finding)), None)
            if entry and entry.in_force(on):
                finding = replace(finding, status=EXCEPTED, message=(
                    f"excepted by {entry.id} until {entry.expires} (owner {entry.owner}, approved by "
                    f"{entry.approver}): {finding.message}"))
            elif entry:
                finding = replace(finding, message=f"{finding.message} (exception {entry.id} expired {entry.expires})")
        out.append(finding)
    return out


def add_exception(fields: dict, known_checks: set[str], path: Optional[Path] = None, *, actor: Actor,
                  trail: Optional[Trail]) -> ExceptionEntry:
    """Validate and append an exception; refused (one line) without owner, justification, approver or
    expiry, for an unknown check, or for an id in use. `actor` must hold manage_exceptions; the change
    is then given to `trail` (None: the caller keeps no record, e.g. a register with no store)."""
    authorize(actor, "manage_exceptions")
    register = load_register(path, known_checks=known_checks)
    try:
        entry = ExceptionEntry(**fields)
    except ValidationError as exc:
        loc, message = first_error(exc)
        raise UserError(f"--{field_path(loc)}: {message}")
    if entry.check not in known_checks:
        raise UserError(f"--check: {shown(entry.check)} is not a check in the catalog")
    if any(e.id == entry.id for e in register.exceptions):
        raise UserError(f"{entry.id}: an exception with this id exists")
    register.exceptions.append(entry)
    save_register(register, path)
    if trail is not None:
        trail(actor, "add", entry.id, {"after": entry.model_dump(mode="json")})
    return entry


def remove_exception(exception_id: str, path: Optional[Path] = None, *, actor: Actor,
                     trail: Optional[Trail]) -> None:
    """Remove an exception by id; `actor` must hold manage_exceptions (the change given to `trail`)."""
    authorize(actor, "manage_exceptions")
    register = load_register(path, required=True)
    gone = [e for e in register.exceptions if e.id == exception_id]
    if not gone:
        raise UserError(f"{name_of(exception_id)}: no such exception")
    register.exceptions = [e for e in register.exceptions if e.id != exception_id]
    save_register(register, path)
    if trail is not None:
        trail(actor, "remove", exception_id, {"before": gone[0].model_dump(mode="json")})
