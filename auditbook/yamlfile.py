"""Reading a file the user gave us (controls.yaml, accounts, exceptions, alerts.yml, notify.yml, a
manual-evidence document).

Every such file is hostile until validated: it must be a regular file (no FIFO, device or folder)
of bounded size, and a YAML file must be UTF-8 plain YAML. Dates are left as text so that the
pydantic model that validates the file reports an impossible date (`2026-02-30`) as a field error
naming the field, instead of the YAML library raising a bare ValueError (a date field takes
`YamlDate`, which reads the text as YAML would have); aliases are refused (a "billion laughs" file
expands exponentially once validated). Every problem is a `UserError` whose one line names the file."""
from __future__ import annotations

import datetime as dt
import errno
import os
import stat
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator

from auditbook.errors import UserError, one_line, shown

MAX_BYTES = 16 * 2**20

_BASE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(_BASE):  # type: ignore[misc, valid-type]
    """SafeLoader that keeps timestamps as strings, refuses aliases and refuses a key repeated in a
    mapping (YAML would keep the last one silently: a repeated `expires:` further down an exception
    would quietly extend it)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue  # `<<:` merges keys that the mapping's own keys may override
                key = self.construct_object(key_node, deep=True)
                try:
                    repeated = key in seen
                    seen.add(key)
                except TypeError:
                    continue  # an unhashable key: the base constructor reports it
                if repeated:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {shown(key)}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _timestamp_as_text(loader, node):
    return loader.construct_scalar(node)


_Loader.add_constructor(_TIMESTAMP_TAG, _timestamp_as_text)


def _check_aliases(text: str, path: Path) -> None:
    for event in yaml.parse(text, Loader=_BASE):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark else "?"
            raise UserError(f"{path}: line {line}: aliases (*name) are not allowed")


def read_bytes(path: Path, *, max_bytes: int = MAX_BYTES, follow_symlinks: bool = True) -> bytes:
    """The file's bytes: a regular file (no FIFO, device or folder), at most max_bytes.
    follow_symlinks=False refuses a symbolic link (its last component), checked with lstat and again
    by opening with O_NOFOLLOW (a link swapped in between is refused too)."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        if not follow_symlinks and stat.S_ISLNK(os.lstat(path).st_mode):
            raise UserError(f"{path}: is a symbolic link (not followed)")
        fd = os.open(path, flags)
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        if getattr(exc, "errno", None) == errno.ELOOP and not follow_symlinks:
            raise UserError(f"{path}: is a symbolic link (not followed)") from None
        raise UserError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{path}: not a regular file")
        if info.st_size > max_bytes:
            raise UserError(f"{path}: {info.st_size} bytes, more than the {max_bytes} allowed")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror}")
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise UserError(f"{path}: more than the {max_bytes} bytes allowed")
    return data


def read_text(path: Path, *, max_bytes: int = MAX_BYTES) -> str:
    """The file's text: a regular file, at most max_bytes, UTF-8."""
    data = read_bytes(path, max_bytes=max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})")


def parse_yaml(text: str, path: Path) -> Any:
    """Parse YAML text read from `path`; dates stay strings; one-line UserError naming the file."""
    try:
        if "*" in text:
            _check_aliases(text, path)
        return yaml.load(text, Loader=_Loader)
    except UserError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None)
        raise UserError(f"{path}: not valid YAML" + (f" at line {mark.line + 1}" if mark else "")
                        + (f": {one_line(problem)}" if problem else ""))
    except (ValueError, TypeError, RecursionError) as exc:  # constructors that reject a scalar
        raise UserError(f"{path}: not valid YAML: {type(exc).__name__}: {one_line(str(exc)[:200])}")


def load_yaml(path: Path, *, max_bytes: int = MAX_BYTES) -> Any:
    """Read and parse a YAML file; dates stay strings; one-line UserError naming the file on any problem."""
    path = Path(path)
    return parse_yaml(read_text(path, max_bytes=max_bytes), path)


def as_date(value: Any) -> Any:
    """A date field's value read as YAML 1.1 reads a timestamp (`2027-01-31`, `2027-01-31 10:00:00`,
    `2027-01-31T10:00:00Z`: the date part), so a field accepts what it accepted when the YAML library
    parsed dates; an impossible date raises ValueError, which pydantic reports against the field.
    Anything else is left for pydantic to validate."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str) and yaml.constructor.SafeConstructor.timestamp_regexp.match(value):
        node = yaml.ScalarNode(_TIMESTAMP_TAG, value)
        try:
            parsed = yaml.constructor.SafeConstructor().construct_yaml_timestamp(node)
        except OverflowError as exc:
            raise ValueError(str(exc))
        return parsed.date() if isinstance(parsed, dt.datetime) else parsed
    return value


YamlDate = Annotated[dt.date, BeforeValidator(as_date)]
