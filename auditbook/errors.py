"""Errors that end a command with one clear line and exit code 2."""
from __future__ import annotations

import re
import unicodedata

SHOWN_CHARS = 80  # a value quoted in a message is cut to this many characters
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.*-]{1,80}$")


class UserError(Exception):
    """Bad input from the user: a file, a field, a value. Printed as one line, exit 2."""


class ScanAborted(Exception):
    """The scan cannot know its own scope (e.g. the organisation cannot be listed)."""


def one_line(text: str) -> str:
    """The text as one printable line: line breaks, tabs, terminal escapes and other control or
    format characters (e.g. bidirectional overrides) each become a space."""
    return "".join(ch if ch.isprintable() else " " for ch in str(text))


def shown(value, limit: int = SHOWN_CHARS) -> str:
    """A value from hostile input, fit to quote in a one-line message: its repr (escapes every
    control character), cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def unsafe_character(text: str, one_line: bool = False):
    """The first character free text a person typed may not hold, or None: C0 and C1 control characters
    (but tab and line breaks unless `one_line`: PostgreSQL refuses NUL, terminals obey escapes) and
    Unicode format characters (bidirectional overrides, zero-width ones: text that reads other than
    it is)."""
    allowed = "" if one_line else "\t\n\r"
    return next((ch for ch in text if ch not in allowed and (ord(ch) < 32 or 127 <= ord(ch) < 160
                                                             or unicodedata.category(ch) == "Cf")), None)


def checked_text(value, option: str, limit: int, required: bool = False, one_line: bool = False):
    """Free text typed by a person, as stored: stripped, at most `limit` characters, no character
    unsafe_character refuses; None when empty and not required. A UserError names the option."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise UserError(f"{option}: required")
        return None
    if len(text) > limit:
        raise UserError(f"{option}: {len(text)} characters, more than the {limit} allowed: {shown(text[:40])}…")
    bad = unsafe_character(text, one_line)
    if bad is not None:
        raise UserError(f"{option}: {shown(text, 80)} contains the character {bad!r} (U+{ord(bad):04X})")
    return text


def name_of(value) -> str:
    """A key or id from hostile input as it appears in a message: as is when it is a plain name
    (letters, digits, . _ - *), else quoted and cut like `shown`."""
    text = str(value)
    return text if _PLAIN_NAME.match(text) else shown(value)


def field_path(loc) -> str:
    """A pydantic error location (`('checks', 3, 'severity')`) as `checks.3.severity`."""
    return ".".join(name_of(part) for part in loc)


def first_error(exc) -> tuple[tuple, str]:
    """The first error of a pydantic ValidationError: its location, and its message with the
    offending value (left out for a missing field or a whole mapping/list)."""
    err = exc.errors()[0]
    value = err.get("input")
    show = err["type"] != "missing" and not isinstance(value, (dict, list))
    return tuple(err["loc"]), one_line(err["msg"]) + (f" (value {shown(value)})" if show else "")


def first_duplicate(values) -> object:
    """The smallest value that occurs more than once, or None."""
    seen, dupes = set(), set()
    for value in values:
        (dupes if value in seen else seen).add(value)
    return min(dupes) if dupes else None
