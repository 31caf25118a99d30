"""What a failing resource actually holds: the offending value behind a check's NO_MATCH, read from the
check's own expression, so a finding says "found public_ingress[?…] = [{"protocol": "tcp",
"from_port": 22, …}] (expected length 0)" instead of only "not met: <title>".

The expression is walked from its top: an `&&` is explained by its first false side, an `||` by both,
a comparison by its left side (a `length(X)` by X itself) and what it was compared with, `!X` and a
function call by their first argument, anything else by its own value. Values pass through the
evidence redaction and are cut to MAX_CHARS; an expression that cannot be explained gives None (the
finding keeps its title alone)."""
from __future__ import annotations

import json
from typing import Any, Optional

from jmespath import exceptions as jexc
from jmespath.visitor import Options, TreeInterpreter

from auditbook.catalog.messages import MessageTemplate
from auditbook.collect.evidence import redact_cloudtrail

MAX_CHARS = 240
MAX_ITEMS = 10  # a message placeholder's list: the first ten, then "… and N more"
MAX_VALUE_CHARS = 200
MAX_MESSAGE_CHARS = 600
OPERATORS = {"eq": "==", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
FALSY = (None, False, [], {}, "")


def observed(parsed: Any, data: dict, options: Optional[Options] = None) -> Optional[str]:
    """`found <what> = <value>` for a compiled expression (jmespath ParsedResult) that is false on
    `data`; None when it cannot be said."""
    interpreter = TreeInterpreter(options)
    try:
        parts = _explain(parsed.parsed, data, interpreter)
    except (jexc.JMESPathError, TypeError, ValueError, KeyError, RecursionError):
        return None
    return "; ".join(parts) if parts else None


def _explain(node: dict, data: dict, interpreter: TreeInterpreter) -> list[str]:
    kind, children = node["type"], node.get("children", [])
    if kind == "and_expression":
        left = interpreter.visit(children[0], data)
        return _explain(children[0] if _falsy(left) else children[1], data, interpreter)
    if kind == "or_expression":
        return _explain(children[0], data, interpreter) + _explain(children[1], data, interpreter)
    if kind == "comparator":
        return [_comparison(node, data, interpreter)]
    if kind in ("not_expression", "function_expression") and children:
        target = children[0]
        return [_found(target, interpreter.visit(target, data))]
    return [_found(node, interpreter.visit(node, data))]


def _comparison(node: dict, data: dict, interpreter: TreeInterpreter) -> str:
    left, right = node["children"]
    shown = left
    if left["type"] == "function_expression" and left.get("value") == "length" and left["children"]:
        shown = left["children"][0]  # length(X) == 0: the offending items are X
    expected = f"expected {'length ' if shown is not left else ''}{OPERATORS.get(node['value'], node['value'])} " \
               f"{_text(interpreter.visit(right, data))}"
    return f"{_found(shown, interpreter.visit(shown, data))} ({expected})"


def _found(node: dict, value: Any) -> str:
    name = label(node)
    return f"found {name} = {_text(_redacted(name, value))}"


def _redacted(name: str, value: Any) -> Any:
    """The value as evidence may show it, under its own field name (the CloudTrail rules are the
    strictest: secret-named fields at any depth, environment-like containers, name/value pairs)."""
    key = name.rsplit(".", 1)[-1].split("[", 1)[0] or "value"
    return redact_cloudtrail({key: value})[key]


def _falsy(value: Any) -> bool:
    return any(value is f or (value == f and type(value) is type(f)) for f in FALSY)


def _text(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 1] + "…"


def label(node: dict) -> str:
    """A short readable name of an expression node: fields and paths as written, a filter as `x[?…]`,
    a call as `f(…)`, anything else `…`."""
    kind, children = node["type"], node.get("children", [])
    if kind == "field":
        return str(node["value"])
    if kind == "subexpression":
        return ".".join(label(c) for c in children)
    if kind in ("filter_projection", "projection", "flatten", "index_expression") and children:
        return label(children[0]) + ("[?…]" if kind == "filter_projection" else "[]")
    if kind == "function_expression":
        return f"{node['value']}({', '.join(label(c) for c in children)})"
    if kind == "literal":
        return _text(node.get("value"))
    if kind == "current":
        return "@"
    return "…"


def rendered(template: MessageTemplate, data: dict, options: Optional[Options] = None) -> str:
    """A check's FAIL message (catalog/messages.py) for one record. A placeholder that cannot be
    evaluated says so in place: the finding stays a FAIL, the message only explains it."""
    out = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
            continue
        try:
            out.append(written(part.search(data, options=options)))
        except (jexc.JMESPathError, TypeError, ValueError, KeyError) as exc:
            out.append(f"(cannot be shown: {type(exc).__name__})")
    text = "".join(out)
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS - 1] + "…"


def written(value: Any) -> str:
    """A placeholder's value as a person reads it: a list as "a, b, c", null or empty as "none",
    through the evidence redaction, cut to MAX_VALUE_CHARS."""
    value = redact_cloudtrail({"value": value})["value"]
    if isinstance(value, list):
        items = [written(v) for v in value if v is not None and v != []]
        if not items:
            return "none"
        more = len(items) - MAX_ITEMS
        return ", ".join(items[:MAX_ITEMS]) + (f" … and {more} more" if more > 0 else "")
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dict):
        value = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    text = str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 1] + "…"
