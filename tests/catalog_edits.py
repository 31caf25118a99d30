"""A copy of the bundled catalog (with the company control library it includes), with one edit, written
for a test (tests/unit, tests/integration and tests/e2e use it)."""
from __future__ import annotations

import shutil
from typing import Callable, Optional

import yaml

from auditbook.catalog.model import DEFAULT_PATH


class _NoAliases(yaml.SafeDumper):
    """Writes shared objects out in full: the catalog loader refuses YAML aliases."""

    def ignore_aliases(self, data):
        return True


def write_catalog(tmp_path, mutate: Optional[Callable] = None, *, text: Optional[str] = None):
    """The bundled catalog written to tmp_path/controls.yaml — changed by mutate(raw) (parsed YAML), or
    as `text` verbatim when given — with the library file it includes and the company's parameters
    file copied beside it, as the bundled catalog names them (a mutate that drops or renames them gets
    no copy it does not name). Its path."""
    if text is None:
        raw = yaml.safe_load(DEFAULT_PATH.read_text())
        if mutate is not None:
            mutate(raw)
        text = yaml.dump(raw, Dumper=_NoAliases, sort_keys=False)
    path = tmp_path / "controls.yaml"
    path.write_text(text)
    bundled = yaml.safe_load(DEFAULT_PATH.read_text())
    for name in (bundled.get("include"), bundled.get("parameters_file")):
        if name and not (tmp_path / name).exists():
            shutil.copyfile(DEFAULT_PATH.parent / name, tmp_path / name)
    return path


def check_of(raw, cid):
    """The check `cid` of a raw (parsed YAML) catalog."""
    return next(c for c in raw["checks"] if c["id"] == cid)


def catalog_with_parameters(tmp_path, values: dict):
    """The bundled catalog (and its library) copied to tmp_path with a company parameters file setting
    `values` (docs/parameters.md), loaded."""
    import json

    from auditbook.catalog.model import load_catalog
    path = write_catalog(tmp_path, text=DEFAULT_PATH.read_text())
    (tmp_path / "company-parameters.yaml").write_text(json.dumps({"version": 1, "parameters": values}))
    return load_catalog(path)
