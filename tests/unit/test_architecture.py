"""The shape of the house (docs/architecture.md), held by tests: layers and no cycles
(import-linter, .importlinter), queries only in the store, small modules and functions, no use of
another module's private names, and README numbers that match the catalog."""
from __future__ import annotations

import ast
import json
import logging.config
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "auditbook"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# generated code: Alembic migrations
EXEMPT = ("auditbook/store/migrations/",)


def sources(*roots: str) -> list[Path]:
    return sorted(p for r in roots for p in (ROOT / r).rglob("*.py") if "__pycache__" not in p.parts)


def notebook_cells() -> list[tuple[str, str]]:
    out = []
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            if cell["cell_type"] == "code":
                out.append((f"{nb.name} cell {i}", "".join(cell["source"])))
    return out


def exempt(path: Path) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel.startswith(e) for e in EXEMPT)


def test_the_import_contracts_hold(monkeypatch, capsys):
    """Layers (a layer imports only from those below it), only the store imports the ORM models
    and SQLAlchemy, and no import cycles (.importlinter), checked in-process by import-linter."""
    from importlinter.cli import lint_imports
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "path", list(sys.path))  # lint_imports puts the working folder first
    # lint_imports configures logging with dictConfig, which disables every logger the tests use
    monkeypatch.setattr(logging.config, "dictConfig", lambda config: None)
    status = lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    report = out[out.find("Contracts"):]
    assert status == 0, report
    assert "0 broken" in report


def test_the_contracts_name_every_layer():
    """A new top-level package must be placed in the layers contract, or it escapes every check."""
    config = (ROOT / ".importlinter").read_text()
    layers = config.split("layers =", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"auditbook\.(\w+)", layers))
    present = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    present |= {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert present - named == set(), f"not placed in a layer: {sorted(present - named)}"


FORBIDDEN_OUTSIDE_STORE = re.compile(
    r"^\s*(from\s+(sqlalchemy\b|auditbook\.store\.models\b|auditbook\.store\s+import\s+(\w+\s*,\s*)*models\b)"
    r"|import\s+(sqlalchemy\b|auditbook\.store\.models\b))", re.M)


@pytest.mark.parametrize("where", ["app", "notebooks", "bench"])
def test_front_ends_never_query_the_store_themselves(where):
    """app/ and the notebooks are not packages import-linter sees: the same rule, by reading them."""
    found = []
    if where == "notebooks":
        found = [name for name, code in notebook_cells() if FORBIDDEN_OUTSIDE_STORE.search(code)]
    else:
        found = [str(p.relative_to(ROOT)) for p in sources(where) if FORBIDDEN_OUTSIDE_STORE.search(p.read_text())]
    if where == "bench":  # benchmarks may build stores directly, but not through the ORM models
        found = [f for f in found if "auditbook.store.models" in (ROOT / f).read_text()]
    assert found == []


def test_modules_are_small():
    big = {str(p.relative_to(ROOT)): n for p in sources("auditbook", "collectors", "app")
           if not exempt(p) and (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert big == {}, f"over {MAX_MODULE_LINES} lines: {big}"


def test_functions_are_short():
    long = []
    for path in sources("auditbook", "collectors", "app"):
        if exempt(path):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert long == [], f"over {MAX_FUNCTION_LINES} lines: {long}"


OURS = ("auditbook", "collectors")  # the packages whose private names nobody else may use


def _private_uses(tree: ast.AST, where: str) -> list[str]:
    """`from auditbook.x import _name`, and `m._name` where m is a module imported from auditbook."""
    modules, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(OURS):
                    modules.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(OURS):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{where}: from {node.module} import {alias.name}")
                elif alias.name[:1].islower():  # possibly a module: checked by attribute use below
                    modules.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{where}: {node.value.id}.{node.attr}")
    return found


def test_no_module_uses_another_modules_private_names():
    found = []
    for path in sources("auditbook", "collectors", "app", "bench"):
        found += _private_uses(ast.parse(path.read_text()), str(path.relative_to(ROOT)))
    for name, code in notebook_cells():
        found += _private_uses(ast.parse(code), name)
    assert found == []


def test_the_store_check_sees_every_spelling():
    for code in ("from sqlalchemy import select", "import sqlalchemy", "from auditbook.store.models import Run",
                 "from auditbook.store import models", "from auditbook.store import runs, models",
                 "import auditbook.store.models"):
        assert FORBIDDEN_OUTSIDE_STORE.search(code), code
    for code in ("from auditbook.store import runs", "from auditbook.store.session import reading"):
        assert not FORBIDDEN_OUTSIDE_STORE.search(code), code


def test_the_private_name_check_can_fail():
    code = "from auditbook.history import type2 as h\nfrom auditbook.demo.quarter import _session\nh._ranges([])\n"
    assert _private_uses(ast.parse(code), "x") == ["x: from auditbook.demo.quarter import _session", "x: h._ranges"]


def test_readme_numbers_match_the_catalog():
    from auditbook.catalog.model import load_catalog
    catalog = load_catalog()
    readme = (ROOT / "README.md").read_text()
    criteria = {int(n) for n in re.findall(r"\b(\d+)\s+criteria\b", readme)}
    checks = {int(n) for n in re.findall(r"\b(\d+)\s+automated\s+checks\b", readme)}
    assert criteria == {len(catalog.controls)}, f"README says {criteria} criteria; the catalog has {len(catalog.controls)}"
    assert checks == {len(catalog.checks)}, f"README says {checks} automated checks; the catalog has {len(catalog.checks)}"
