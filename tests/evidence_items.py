"""A quarterly manual evidence item of the bundled catalog, and its state on a day as the store reports it
(tests/unit and tests/integration both use it)."""
from __future__ import annotations

from auditbook.catalog.model import load_catalog
from auditbook.scan import evidence_status

ITEM = "Board meeting minutes covering security"  # CC1.2, quarterly


def item_state(engine, on, criterion="CC1.2", item=ITEM):
    return next(s for s in evidence_status(engine, load_catalog(), on) if s.criterion == criterion and s.item == item)
