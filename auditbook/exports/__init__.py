"""Findings of a stored run in interchange formats: OCSF, ASFF and OSCAL assessment-results."""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from auditbook.catalog import Catalog
from auditbook.evaluate import summarise


@dataclass
class RunView:
    """What every exporter needs: the run, its findings (as stored rows) and the catalog."""
    run: object  # store.models.Run
    rows: list[dict]
    catalog: Catalog

    def check(self, check_id: str):
        return next((c for c in self.catalog.checks if c.id == check_id), None)

    def summary(self) -> list[dict]:
        needs = set((self.run.parameters or {}).get("needs_evidence") or [])
        findings = [SimpleNamespace(controls=r["controls"], status=r["status"]) for r in self.rows]
        return summarise(self.catalog, findings, needs)


def load_view(engine, run_id: int, catalog: Catalog) -> RunView:
    from sqlalchemy.orm import Session

    from auditbook.store.models import Run
    from auditbook.store.query import findings_for_run
    with Session(engine) as session:
        run = session.get(Run, run_id)
        session.expunge(run)
    return RunView(run, findings_for_run(engine, run_id), catalog)
