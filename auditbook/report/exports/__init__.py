"""Findings of a stored run in interchange formats: OCSF, ASFF and OSCAL assessment-results."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from auditbook.catalog.model import Catalog
from auditbook.evaluate.evaluator import summarise_stored


@dataclass
class RunView:
    """What every exporter needs: the run, its findings (as stored rows) and the catalog."""
    run: object  # store.models.Run
    rows: list[dict]
    catalog: Catalog
    _checks: dict = field(init=False, repr=False)

    def __post_init__(self):
        self._checks = {c.id: c for c in self.catalog.checks}

    def check(self, check_id: str):
        return self._checks.get(check_id)

    def summary(self) -> list[dict]:
        needs = set((self.run.parameters or {}).get("needs_evidence") or [])
        return summarise_stored(self.catalog, self.rows, needs)


def load_view(engine, run_id: int, catalog: Catalog, rows: Optional[list[dict]] = None) -> RunView:
    """The run's view; `rows` when the caller already has (or has filtered) its findings."""
    from sqlalchemy.orm import Session

    from auditbook.store.models import Run
    from auditbook.store.query import findings_for_run
    with Session(engine) as session:
        run = session.get(Run, run_id)
        session.expunge(run)
    return RunView(run, findings_for_run(engine, run_id) if rows is None else rows, catalog)
