"""Checks that cannot be a JMESPath condition: the built-in check functions (the `check_functions`
seam of auditbook/hookspecs.py; a plugin adds its own through the same hook).

A function takes the resource record (a dict) and returns True (met) or False (not met); it must not
call AWS. controls.yaml names it with `function:` instead of `expect:`; loading the catalog refuses
a function that cannot be called with the record alone (it would ERROR on every resource).
"""
from __future__ import annotations

import inspect
from typing import Callable

from auditbook.hookspecs import hookimpl

CHECK_FUNCTIONS: dict[str, Callable[[dict], bool]] = {}  # the built-ins, registered with @check_function


@hookimpl
def check_functions() -> dict[str, Callable[[dict], bool]]:
    return dict(CHECK_FUNCTIONS)


def takes_one_record(fn: Callable) -> bool:
    """Whether `fn(record)` binds: one positional argument, every other one optional."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check against
        return callable(fn)
    try:
        signature.bind({})
    except TypeError:
        return False
    return True


def check_function(name: str):
    def register(fn: Callable[[dict], bool]):
        if not takes_one_record(fn):
            raise TypeError(f"check function {name!r}: must take exactly one argument (the resource record)")
        CHECK_FUNCTIONS[name] = fn
        return fn
    return register
