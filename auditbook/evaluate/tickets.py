"""Ticket references in CloudTrail write events (CC8.1, CC6.2): the configurable pattern (checked so
a caller-chosen session name cannot make it backtrack for minutes) and the reference a write event
carries in its role session name or a request tag. Pure: the resource timeline, the populations, the
per-event manual evidence and the scan read tickets through these two functions."""
from __future__ import annotations

import os
import re
from typing import Optional

from auditbook.errors import UserError, shown

TICKET_ENV = "AUDITBOOK_TICKET_PATTERN"
DEFAULT_TICKET = r"[A-Z][A-Z0-9]+-[0-9]+"  # CHG-1042, INC-7, OPS2-311
MAX_PATTERN = 200
MAX_SESSION_TEXT, MAX_TAG_TEXT = 64, 128  # characters of a session name (AWS: at most 64) / tag value searched
_QUANTIFIER = re.compile(r"[*+?]|\{\d*,?\d*\}")


def ticket_pattern(text: Optional[str] = None) -> re.Pattern:
    """The ticket-reference pattern: `text`, else AUDITBOOK_TICKET_PATTERN, else DEFAULT_TICKET; a
    pattern that does not compile is a UserError naming where it came from."""
    where = "--ticket-pattern" if text else TICKET_ENV
    text = text or os.environ.get(TICKET_ENV) or DEFAULT_TICKET
    if len(text) > MAX_PATTERN:
        raise UserError(f"{where}: {len(text)} characters, more than {MAX_PATTERN}")
    try:
        compiled = re.compile(text)
    except re.error as exc:
        raise UserError(f"{where}: {shown(text)} is not a regular expression ({exc})") from None
    if nested_quantifier(text):
        raise UserError(f"{where}: {shown(text)} repeats a group that holds a repetition (like (A+)+): "
                        "such a pattern can take minutes on one caller-chosen session name")
    return compiled


def nested_quantifier(text: str) -> bool:
    """Whether a pattern repeats (*, + or {m,n}) a group that itself holds a quantifier: the shape of
    catastrophic backtracking. Escapes and character classes are skipped; a group made optional (?)
    is not a repetition."""
    holds, i, in_class = [False], 0, False  # holds[-1]: the open group holds a quantifier
    while i < len(text):
        ch, i = text[i], i + 1
        if ch == "\\":
            i += 1
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class, i = True, i + (text[i:i + 1] == "^")
            i += text[i:i + 1] == "]"  # a leading ] is a literal
        elif ch == "(":
            holds.append(False)
            i += text[i:i + 1] == "?"  # (?:…), (?P<…>…): not a quantifier
        elif ch == ")" and len(holds) > 1:
            inner = holds.pop()
            repeat = _QUANTIFIER.match(text, i)
            if inner and repeat and repeat.group(0) != "?":
                return True
            holds[-1] = holds[-1] or inner or bool(repeat)
        elif _QUANTIFIER.match(text, i - 1):
            holds[-1] = True
    return False


def ticket_of(event: dict, pattern: re.Pattern) -> tuple[Optional[str], Optional[str]]:
    """(the ticket reference a write event carries, where: the role session name or a request tag). The
    pattern runs on at most MAX_SESSION_TEXT / MAX_TAG_TEXT characters of caller-chosen text."""
    found = pattern.search((event.get("session_name") or "")[:MAX_SESSION_TEXT])
    if found and found.group(0):
        return found.group(0), "session name"
    for key, value in (event.get("tags") or {}).items():
        found = pattern.search(value[:MAX_TAG_TEXT]) if isinstance(value, str) else None
        if found and found.group(0):
            return found.group(0), f"tag {key}"
    return None, None
