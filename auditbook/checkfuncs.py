"""Checks that cannot be a JMESPath condition register a Python function here.

A function takes the resource record (a dict) and returns True (met) or False (not met); it must not
call AWS. controls.yaml names it with `function:` instead of `expect:`.
"""
from __future__ import annotations

from typing import Callable

CHECK_FUNCTIONS: dict[str, Callable[[dict], bool]] = {}


def check_function(name: str):
    def register(fn: Callable[[dict], bool]):
        CHECK_FUNCTIONS[name] = fn
        return fn
    return register
