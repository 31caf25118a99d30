"""A check's FAIL message (`message:` in controls.yaml): text with `{JMESPath}` placeholders evaluated on
the failing record, so a finding says what is wrong — "retention 1 day, required 30", "tcp 22 open to
0.0.0.0/0" — not only "not met: <title>". `${name}` is a parameter (catalog/parameters.py): its value
as text outside a placeholder, as a JMESPath literal inside one; `{{` and `}}` are literal braces.
Parsed and compiled here, when the catalog loads; written for each failing record by
auditbook.evaluate.observed.rendered."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from auditbook.catalog.expressions import compile_expression
from auditbook.catalog.parameters import Parameter, references, substituted
from auditbook.errors import UserError, name_of


@dataclass(frozen=True)
class MessageTemplate:
    """Literal text and compiled placeholders, alternating: parts[i] is a str or a compiled expression."""
    parts: tuple


_SPECIAL = re.compile(r"\{\{|\}\}|\$\{|[{}]")  # what split_template acts on, longest first


def split_template(text: str) -> list[tuple[str, str]]:
    """[("text" | "expr", source)]: ValueError on unbalanced braces or an empty placeholder."""
    out, buf, i = [], [], 0
    found = _SPECIAL.search(text, i)
    while found is not None:
        at, token = found.start(), found.group()
        buf.append(text[i:at])
        if token in ("{{", "}}"):
            buf.append(token[0])
            i = at + 2
        elif token == "${":
            end = text.find("}", at)
            if end < 0:
                raise ValueError("a ${ without its closing }")
            buf.append(text[at:end + 1])
            i = end + 1
        elif token == "{":
            end = _closing(text, at)
            out.append(("text", "".join(buf)))
            buf = []
            source = text[at + 1:end].strip()
            if not source:
                raise ValueError("an empty {} placeholder")
            out.append(("expr", source))
            i = end + 1
        else:
            raise ValueError("a } without its opening { (write }} for a brace)")
        found = _SPECIAL.search(text, i)
    buf.append(text[i:])
    out.append(("text", "".join(buf)))
    return [(kind, source) for kind, source in out if kind == "expr" or source]


def _closing(text: str, start: int) -> int:
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError("a { placeholder without its closing }")


def resolved(text: str, params: dict) -> str:
    """The template with every ${name} replaced — as text outside placeholders, as a JMESPath literal
    inside them — and literal braces kept escaped: a template that reads no parameter any more."""
    out = []
    for kind, source in split_template(text):
        if kind == "text":
            out.append(substituted(source, params, literal=False).replace("{", "{{").replace("}", "}}"))
        else:
            out.append("{" + substituted(source, params, literal=True) + "}")
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def compile_template(text: str) -> MessageTemplate:
    """Parse and compile a resolved message (ValueError with a short reason)."""
    return MessageTemplate(tuple(source if kind == "text" else compile_expression(source)
                                 for kind, source in split_template(text)))


RESOLVED_AS_LITERAL = ("applies", "expect")
RESOLVED_AS_TEXT = ("title", "remediation")


def resolved_check(item, params: dict[str, Parameter], where: str) -> tuple[object, list[str]]:
    """A raw check with every ${name} replaced by its value in force, and the names it read."""
    if not isinstance(item, dict):
        return item, []
    out, used = dict(item), []
    label = f"{where}: check {name_of(item.get('id'))}"
    for field_name in (*RESOLVED_AS_LITERAL, *RESOLVED_AS_TEXT, "message"):
        text = item.get(field_name)
        if not isinstance(text, str):
            continue
        used += references(text)
        try:
            if field_name == "message":
                out[field_name] = resolved(text, params)
                compile_template(out[field_name])
            else:
                out[field_name] = substituted(text, params, literal=field_name in RESOLVED_AS_LITERAL)
        except ValueError as exc:
            raise UserError(f"{label}: field {field_name}: {exc}") from None
    return out, list(dict.fromkeys(used))
