"""A readable difference between two stored states of a resource (JSON records): each field path
that changed, was added or was removed, with its old and new values. Objects are compared key by key;
lists element by element as difflib aligns them (an element inserted at the front is one addition,
not every later element changed), and an element replaced by one of the same kind is compared inside,
so a changed port in a security group rule shows as that rule's port. Past MAX_ALIGNED elements
(aligning costs the product of the two lengths), the elements a common start and end do not match
are compared as a multiset (a canonical element in `old` more often than in `new` is removed, and
the reverse added): linear, and a list reordered is no change."""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

CHANGED, ADDED, REMOVED = "changed", "added", "removed"
MAX_ALIGNED = 500 * 500  # elements of old × new (after the common start and end) aligned by difflib
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
    a, b = [_canonical(v) for v in old], [_canonical(v) for v in new]
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    if (len(a) - start - end) * (len(b) - start - end) > MAX_ALIGNED:
        _diff_multisets(old, new, a, b, (start, len(a) - end), (start, len(b) - end), path, out)
        return
    matcher = SequenceMatcher(None, a[start:len(a) - end], b[start:len(b) - end], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        i1, i2, j1, j2 = i1 + start, i2 + start, j1 + start, j2 + start
        if op == "equal":
            continue
        pairs = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(pairs):  # replaced one for one: compared inside
            _diff(old[i1 + k], new[j1 + k], f"{path}[{j1 + k}]", out)
        for i in range(i1 + pairs, i2):
            out.append(FieldChange(f"{path}[{i}]", REMOVED, old=old[i]))
        for j in range(j1 + pairs, j2):
            out.append(FieldChange(f"{path}[{j}]", ADDED, new=new[j]))


def _diff_multisets(old: list, new: list, a: list, b: list, old_span: tuple, new_span: tuple, path: str,
                    out: list) -> None:
    """Lists too long to align: each element (canonical JSON `a`/`b`) in old_span beyond its count in
    new_span removed, each in new_span beyond its count in old_span added."""
    spare = Counter(b[new_span[0]:new_span[1]])
    spare.subtract(a[old_span[0]:old_span[1]])
    for i in range(*old_span):
        if spare[a[i]] < 0:
            spare[a[i]] += 1
            out.append(FieldChange(f"{path}[{i}]", REMOVED, old=old[i]))
    for j in range(*new_span):
        if spare[b[j]] > 0:
            spare[b[j]] -= 1
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
