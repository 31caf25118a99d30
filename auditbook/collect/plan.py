"""What a scan must collect: the resource types a catalog's checks read."""
from __future__ import annotations

from typing import Optional

from auditbook.catalog.expressions import analyse, compile_expression
from auditbook.catalog.model import Catalog
from auditbook.collect.spec import ResourceType
from auditbook.plugins import resource_types


def needed_types(catalog: Catalog, only: Optional[set[str]] = None) -> list[ResourceType]:
    """The resource types the catalog's checks read (directly or through values()); `only`: just
    those of these check ids."""
    names: set[str] = set()
    for check in catalog.checks:
        if only is not None and check.id not in only:
            continue
        names.add(check.resource)
        for text in (check.applies, check.expect):
            if text:
                names |= analyse(compile_expression(text)).types
    types = resource_types()
    return [types[n] for n in sorted(names)]
