"""Evidence collectors: one module per AWS service, each declaring RESOURCE_TYPES (collect/spec.py).

The package is auditbook's built-in collectors plugin: it implements the `resource_types` seam
(auditbook/hookspecs.py) by gathering RESOURCE_TYPES from every module in it, so adding a service is
adding a module here; a third party implements the same hook in its own plugin."""
from __future__ import annotations

import importlib
import pkgutil

from auditbook.hookspecs import hookimpl


@hookimpl
def resource_types():
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        found.extend(getattr(importlib.import_module(f"{__name__}.{info.name}"), "RESOURCE_TYPES", []))
    return found
