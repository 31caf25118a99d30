"""Finds every resource type declared by the modules of the collectors package."""
from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from auditbook.collect.spec import ResourceType


@lru_cache(maxsize=1)
def resource_types() -> dict[str, ResourceType]:
    import collectors

    found: dict[str, ResourceType] = {}
    for info in sorted(pkgutil.iter_modules(collectors.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"collectors.{info.name}")
        for rtype in getattr(module, "RESOURCE_TYPES", []):
            if rtype.name in found:
                raise RuntimeError(f"resource type {rtype.name} declared twice (collectors.{info.name})")
            found[rtype.name] = rtype
    return found
