"""A copy of the bundled catalog with one edit, written for a test (tests/unit and tests/e2e both use it)."""
from __future__ import annotations

import yaml

from auditbook.catalog.model import DEFAULT_PATH


class _NoAliases(yaml.SafeDumper):
    """Writes shared objects out in full: the catalog loader refuses YAML aliases."""

    def ignore_aliases(self, data):
        return True


def write_catalog(tmp_path, mutate):
    """The bundled catalog, changed by mutate(raw), written to tmp_path/controls.yaml; its path."""
    raw = yaml.safe_load(DEFAULT_PATH.read_text())
    mutate(raw)
    path = tmp_path / "controls.yaml"
    path.write_text(yaml.dump(raw, Dumper=_NoAliases, sort_keys=False))
    return path


def check_of(raw, cid):
    """The check `cid` of a raw (parsed YAML) catalog."""
    return next(c for c in raw["checks"] if c["id"] == cid)
