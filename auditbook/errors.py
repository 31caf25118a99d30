"""Errors that end a command with one clear line and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a file, a field, a value. Printed as one line, exit 2."""


def first_error(exc) -> tuple[tuple, str]:
    """The first error of a pydantic ValidationError: its location, and its message with the
    offending value (left out for a missing field or a whole mapping/list)."""
    err = exc.errors()[0]
    value = err.get("input")
    shown = "" if err["type"] == "missing" or isinstance(value, (dict, list)) else f" (value {value!r})"
    return tuple(err["loc"]), f"{err['msg']}{shown}"


def first_duplicate(values) -> object:
    """The smallest value that occurs more than once, or None."""
    seen, dupes = set(), set()
    for value in values:
        (dupes if value in seen else seen).add(value)
    return min(dupes) if dupes else None


class ScanAborted(Exception):
    """The scan cannot know its own scope (e.g. the organisation cannot be listed)."""
