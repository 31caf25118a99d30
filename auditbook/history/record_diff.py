"""A readable difference between two stored states of a resource (JSON records): each field path
that changed, was added or was removed, with its old and new values. Objects are compared key by key;
lists element by element as difflib aligns them (an element inserted at the front is one addition,
not every later element changed), and an element replaced by one of the same kind is compared inside,
so a changed port in a security group rule shows as that rule's port."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

CHANGED, ADDED, REMOVED = "changed", "added", "removed"
MAX_SHOWN = 300  # characters of a value in a one-line rendering
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class FieldChange:
    path: str
    change: str  # changed, added, removed
    old: Any = None
    new: Any = None

    def as_dict(self) -> dict:
        return {"path": self.path, "change": self.change, "old": self.old, "new": self.new}


def _key_path(path: str, key: str) -> str:
    if _PLAIN_KEY.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def diff(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """The field changes from `old` to `new` (JSON values), in path order."""
    out: list[FieldChange] = []
    _diff(old, new, path, out)
    return out


def _diff(old: Any, new: Any, path: str, out: list) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            where = _key_path(path, str(key))
            if key not in new:
                out.append(FieldChange(where, REMOVED, old=old[key]))
            elif key not in old:
                out.append(FieldChange(where, ADDED, new=new[key]))
            else:
                _diff(old[key], new[key], where, out)
    elif isinstance(old, list) and isinstance(new, list):
        _diff_lists(old, new, path, out)
    elif type(old) is not type(new) or old != new:
        out.append(FieldChange(path or "(the record)", CHANGED, old=old, new=new))


def _diff_lists(old: list, new: list, path: str, out: list) -> None:
    matcher = SequenceMatcher(None, [_canonical(v) for v in old], [_canonical(v) for v in new], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        pairs = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(pairs):  # replaced one for one: compared inside
            _diff(old[i1 + k], new[j1 + k], f"{path}[{j1 + k}]", out)
        for i in range(i1 + pairs, i2):
            out.append(FieldChange(f"{path}[{i}]", REMOVED, old=old[i]))
        for j in range(j1 + pairs, j2):
            out.append(FieldChange(f"{path}[{j}]", ADDED, new=new[j]))


def shown_value(value: Any, limit: int = MAX_SHOWN) -> str:
    """A value on one line: JSON (text without quotes), cut to `limit` characters."""
    text = value if isinstance(value, str) else _canonical(value)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)"


def summary_line(change: FieldChange) -> str:
    """`path: old → new`, `path: added new`, `path: removed old`."""
    if change.change == ADDED:
        return f"{change.path}: added {shown_value(change.new)}"
    if change.change == REMOVED:
        return f"{change.path}: removed {shown_value(change.old)}"
    return f"{change.path}: {shown_value(change.old)} → {shown_value(change.new)}"
