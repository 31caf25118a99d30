"""JMESPath conditions over resource records, with the few functions SOC 2 checks need.

Extra functions (beside JMESPath's own):
  days_since(timestamp)  whole days from an ISO 8601 timestamp to the evaluation time (null if null)
  days_until(timestamp)  whole days from the evaluation time to the timestamp (null if null)
  values(type, field)    every value of a top-level field across all records of a resource type
                         in the scan (e.g. the buckets CloudTrail writes to)
  values_in(type, field, account)  the same, of the records of one account only (e.g. the buckets
                         the log-archive account owns)
"""
from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import jmespath
from jmespath import exceptions as jexc
from jmespath import functions as jfun

from auditbook.errors import one_line

EXTRA_FUNCTIONS = ("days_since", "days_until", "values", "values_in")
KNOWN_FUNCTIONS = frozenset(jfun.Functions.FUNCTION_TABLE) | frozenset(EXTRA_FUNCTIONS)


def parse_time(value: str) -> dt.datetime:
    value = value.replace("Z", "+00:00")
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


class AuditFunctions(jfun.Functions):
    """JMESPath functions bound to one evaluation: its clock and the scan's records."""

    def __init__(self, now: dt.datetime, lookup: Callable[..., list]):
        super().__init__()
        self._now = now
        self._lookup = lookup  # (type, field[, account]) -> values

    @jfun.signature({"types": ["string", "null"]})
    def _func_days_since(self, ts):
        return None if ts is None else (self._now - parse_time(ts)).days

    @jfun.signature({"types": ["string", "null"]})
    def _func_days_until(self, ts):
        return None if ts is None else (parse_time(ts) - self._now).days

    @jfun.signature({"types": ["string"]}, {"types": ["string"]})
    def _func_values(self, rtype, fieldname):
        return self._lookup(rtype, fieldname)

    @jfun.signature({"types": ["string"]}, {"types": ["string"]}, {"types": ["string"]})
    def _func_values_in(self, rtype, fieldname, account):
        return self._lookup(rtype, fieldname, account)


@dataclass
class Analysis:
    """What an expression reads: top-level record fields and the resource types values() names."""

    fields: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)
    calls: set[tuple[str, int]] = field(default_factory=set)  # (function, number of arguments)


def _walk(node: dict, out: Analysis, top: bool) -> None:
    kind = node.get("type")
    children = node.get("children", [])
    if kind == "field" and top:
        out.fields.add(node["value"])
    if kind == "function_expression":
        out.functions.add(node["value"])
        out.calls.add((node["value"], len(children)))
        if node["value"] in ("values", "values_in") and children and children[0].get("type") == "literal":
            out.types.add(str(children[0].get("value")))
    if kind in ("subexpression", "index_expression"):
        # only the left-most part of a.b.c names a top-level field
        if children:
            _walk(children[0], out, top)
            for child in children[1:]:
                _walk(child, out, False)
        return
    if kind in ("projection", "value_projection", "filter_projection", "flatten"):
        # the right side of a projection is evaluated on the projected elements
        if children:
            _walk(children[0], out, top)
            for child in children[1:]:
                _walk(child, out, False)
        return
    for child in children:
        if isinstance(child, dict):
            _walk(child, out, top)


@functools.lru_cache(maxsize=4096)
def compile_expression(text: str):
    """Parse a JMESPath expression; raises ValueError with a short reason if it is invalid. Compiled once
    per text (the catalog validates each expression, the evaluator compiles it again; jmespath's own
    cache keeps 128 and a catalog has ~500): the result is only ever searched and read, never changed."""
    try:
        parsed = jmespath.compile(text)
        info = analyse(parsed)
    except jexc.JMESPathError as exc:  # parse and lexer errors, an empty expression
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"invalid JMESPath ({one_line(first)[:200]})") from None
    except RecursionError:
        raise ValueError("invalid JMESPath (nested too deeply)") from None
    unknown = info.functions - KNOWN_FUNCTIONS
    if unknown:
        raise ValueError(f"unknown function {sorted(unknown)[0]}()")
    for name, count in sorted(info.calls):
        problem = _arity_problem(name, count)
        if problem:
            raise ValueError(f"{name}() {problem}, not {count}")
    return parsed


def _arity_problem(name: str, count: int) -> str:
    """Why `count` arguments do not fit the function's signature ("" when they do): jmespath checks
    arity only when it calls the function, so a wrong count would fail on every record."""
    signature = AuditFunctions.FUNCTION_TABLE[name]["signature"]
    if signature and signature[-1].get("variadic"):
        return "" if count >= len(signature) else f"takes at least {len(signature)} argument(s)"
    return "" if count == len(signature) else f"takes {len(signature)} argument(s)"


def analyse(parsed) -> Analysis:
    out = Analysis()
    _walk(parsed.parsed, out, True)
    return out


def options(functions: AuditFunctions) -> jmespath.Options:
    return jmespath.Options(custom_functions=functions)


def truthy(value: Any) -> bool:
    """JMESPath truth: false, null, empty string/list/object are false."""
    return value not in (False, None, "", [], {}) and value is not None


# --- what an expression reads of the document it is applied to ---------------------------------------
WHOLE_DOCUMENT = "@"  # `@` or an identity at the top: the whole document, every field
_LEFT_ONLY = ("subexpression", "index_expression", "projection", "value_projection", "filter_projection",
              "flatten", "pipe")  # only the first child is evaluated on the document; the rest on its result
_READ_NOTHING = ("literal", "index", "slice", "expref")  # an expref's body is applied to elements later
_ALL_CHILDREN = ("comparator", "and_expression", "or_expression", "not_expression", "function_expression",
                 "multi_select_list", "multi_select_dict", "key_val_pair")  # every child on the document


def root_reads(node: dict) -> frozenset:
    """The top-level fields a node reads when it is evaluated on the document itself (WHOLE_DOCUMENT
    for `@`, an identity, or a node type this does not know). Exact where analyse() is generous: the
    right side of a pipe and an expref's body are relative to other values."""
    kind, children = node.get("type"), [c for c in node.get("children", []) if isinstance(c, dict)]
    if kind == "field":
        return frozenset({node["value"]})
    if kind in ("current", "identity"):
        return frozenset({WHOLE_DOCUMENT})
    if kind in _READ_NOTHING:
        return frozenset()
    if kind in _LEFT_ONLY:
        return root_reads(children[0]) if children else frozenset()
    if kind in _ALL_CHILDREN:
        return frozenset().union(*(root_reads(c) for c in children))
    return frozenset({WHOLE_DOCUMENT})


def subtrees_reading_only(parsed, fields: frozenset) -> list[dict]:
    """The largest parts of a compiled expression that are evaluated on the document itself and read
    only (some of) `fields` of it — e.g. the `length(all[?…]) > \\`0\\`` side of an account check, which
    is the same for every account. Parts inside a filter or projection are relative to elements, never
    returned; a bare field is not worth returning. The nodes are the parsed tree's own (do not modify:
    jmespath caches parsed expressions)."""
    out: list[dict] = []
    _collect(parsed.parsed, fields, out)
    return out


def _collect(node: dict, fields: frozenset, out: list) -> None:
    reads = root_reads(node)
    if reads and reads <= fields:
        if node.get("type") != "field":
            out.append(node)
        return
    kind, children = node.get("type"), [c for c in node.get("children", []) if isinstance(c, dict)]
    if kind in _LEFT_ONLY or kind in _ALL_CHILDREN:  # any other node: nothing below it is on the document
        for child in children[:1] if kind in _LEFT_ONLY else children:
            _collect(child, fields, out)
