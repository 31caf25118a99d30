"""A scan's inputs about where it reads, checked before anything else is done: the accounts file and
--regions (collect.targets reaches the accounts; nothing here imports botocore)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditbook.errors import (
    UserError,
    field_path,
    first_duplicate,
    first_error,
    name_of,
    shown,
)
from auditbook.yamlfile import load_yaml


class AccountEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[0-9]{12}$")
    role: Optional[str] = None
    external_id: Optional[str] = None
    name: Optional[str] = None


class AccountsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    accounts: list[AccountEntry] = Field(min_length=1)


def load_accounts_file(path: Path) -> AccountsFile:
    """Read and validate an accounts file: one-line UserError naming the file, entry and field.
    An account listed twice is refused too."""
    raw = load_yaml(path)
    try:
        spec = AccountsFile.model_validate(raw)
    except ValidationError as exc:
        loc, message = first_error(exc)
        field_name = field_path(loc) or "(document)"
        if len(loc) >= 2 and loc[0] == "accounts" and isinstance(loc[1], int):
            entries = raw.get("accounts") or []
            entry = entries[loc[1]] if loc[1] < len(entries) else {}
            ident = entry.get("id") if isinstance(entry, dict) else None
            field_name = f"accounts[{loc[1]}]" + (f" (id {name_of(ident)})" if ident else "") + (
                f" field {field_path(loc[2:])}" if len(loc) > 2 else "")
        raise UserError(f"{path}: {field_name}: {message}")
    dupe = first_duplicate(e.id for e in spec.accounts)
    if dupe:
        raise UserError(f"{path}: accounts: id {dupe} is listed twice")
    return spec


def parse_regions(regions: Optional[str]) -> Optional[list[str]]:
    """--regions as a list of region names; None for "all" or none given (resolved with AWS)."""
    if not regions or regions.strip().lower() == "all":
        return None
    out = [r.strip() for r in regions.split(",") if r.strip()]
    bad = [r for r in out if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+){2,4}", r)]
    if bad or not out:
        raise UserError(f"--regions: {shown(bad[0] if bad else regions)} is not a region name")
    return out
