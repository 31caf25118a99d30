"""docs/controls.md, generated from the catalog: criterion → checks → test procedure → manual evidence."""
from __future__ import annotations

import re

from auditbook.catalog.model import Catalog
from auditbook.catalog.parameters import as_text, parameter_rows
from auditbook.errors import UserError

HEADER = """# Controls

Generated from `controls.yaml` by `auditbook controls-doc > docs/controls.md` — do not edit by hand
(a test fails when this file and the catalog disagree).

{framework}: {criteria} criteria, {checks} automated checks. For each criterion: what it asks, who owns
it, how an auditor tests it, the automated checks that evidence it, and the manual evidence it needs.
A criterion with required manual evidence is never PASS on automated checks alone.

| category | criteria | with automated checks | manual only |
| --- | ---: | ---: | ---: |
"""


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_controls_md(catalog: Catalog) -> str:
    by_category: dict[str, list] = {}
    for control in catalog.controls:
        by_category.setdefault(control.category, []).append(control)
    out = [HEADER.format(framework=catalog.framework, criteria=len(catalog.controls), checks=len(catalog.checks))]
    for category, controls in by_category.items():
        automated = sum(1 for c in controls if catalog.checks_for(c.id))
        out.append(f"| {category} | {len(controls)} | {automated} | {len(controls) - automated} |\n")
    out.append(_thresholds_md(catalog))
    group = None
    for control in catalog.controls:
        if control.group != group:
            group = control.group
            out.append(f"\n## {group}\n")
        out.append(f"\n### {control.id} — {_cell(control.title)}\n\n")
        out.append(f"*Category:* {control.category} · *Owner:* {_cell(control.owner)}\n\n")
        out.append(f"**Test procedure.** {_cell(control.test_procedure)}\n\n")
        checks = catalog.checks_for(control.id)
        if checks:
            out.append("**Automated checks**\n\n| check | resource | severity | what it tests |\n| --- | --- | --- | --- |\n")
            for check in checks:
                scope = []
                if check.tags:
                    scope.append("only " + ", ".join(f"{k} in {'/'.join(v)}" for k, v in check.tags.items()))
                if check.accounts:
                    scope.append("accounts " + ", ".join(check.accounts))
                note = f" ({'; '.join(scope)})" if scope else ""
                out.append(f"| `{check.id}` | `{check.resource}` | {check.severity} | {_cell(check.title)}{note} |\n")
            out.append("\n")
        else:
            out.append("**Automated checks:** none — AWS configuration cannot evidence this criterion; "
                       "it rests on the manual evidence below.\n\n")
        if control.manual_evidence:
            out.append("**Manual evidence**\n\n")
            for item in control.manual_evidence:
                out.append(f"- {_cell(item.name)} ({item.cadence})\n")
            out.append("\n")
    return "".join(out).rstrip() + "\n"


def _thresholds_md(catalog: Catalog) -> str:
    """The parameters section: each threshold's value in force (docs/parameters.md)."""
    rows = parameter_rows(catalog.parameters, catalog.checks)
    if not rows:
        return ""
    out = ["\n## Thresholds\n\nThe values in force (`controls.yaml` defaults, the company's in "
           f"`{catalog.parameters_file or 'no parameters file'}`); see docs/parameters.md.\n\n"
           "| parameter | value | default | meaning | checks |\n| --- | --- | --- | --- | --- |\n"]
    for row in rows:
        out.append(f"| `{row['parameter']}` | {_cell(as_text(row['value']))} | {_cell(as_text(row['default']))} | "
                   f"{_cell(row['description'])} | {', '.join(f'`{c}`' for c in row['checks']) or '—'} |\n")
    return "".join(out)


def render_resource_types_md() -> str:
    """The "Resource types" section of docs/collectors.md, from the registry."""
    from auditbook.plugins import resource_types

    out = ["## Resource types (generated from the registry: `auditbook collectors-doc`)\n"]
    for name, rtype in sorted(resource_types().items()):
        out.append(f"\n### `{name}` ({rtype.scope})\n\n{_cell(rtype.description)}\n\n")
        out.append("Calls: " + ", ".join(f"`{a}`" for a in rtype.actions()) + "\n")
    return "".join(out)


def splice_collectors_md(text: str, source: str = "docs/collectors.md") -> str:
    """docs/collectors.md with its generated section (from a line `## Resource types` to the next
    `## ` heading, or the end) replaced, the hand-written parts kept. `source` names the file in the
    one-line UserError when it has no such section."""
    found = re.search(r"^## Resource types", text, re.MULTILINE)
    if found is None:
        raise UserError(f"{source}: no '## Resource types' section to regenerate")
    start = found.start()
    end = text.find("\n## ", start + 3)
    return text[:start] + render_resource_types_md() + (text[end:] if end != -1 else "")
