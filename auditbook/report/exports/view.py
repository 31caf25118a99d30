"""Findings of a stored run in interchange formats. The formats are a registry (the export_formats
seam: report.exports.formats has the built-ins ocsf, asff and oscal; a plugin adds its own), and
`render` is what the CLI calls: a run, a format name, the catalog → a JSON-able document."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from auditbook.catalog.model import Catalog
from auditbook.errors import UserError, shown
from auditbook.evaluate.evaluator import summarise_stored
from auditbook.history.findings import list_findings, resolve_run, status_filter
from auditbook.plugins import export_formats
from auditbook.store.runs import RunRecord


@dataclass
class RunView:
    """What every exporter needs: the run, its findings (as stored rows) and the catalog."""
    run: RunRecord
    rows: list[dict]
    catalog: Catalog
    _checks: dict = field(init=False, repr=False)

    def __post_init__(self):
        self._checks = {c.id: c for c in self.catalog.checks}

    def check(self, check_id: str):
        return self._checks.get(check_id)

    def summary(self) -> list[dict]:
        needs = set(self.run.parameters.get("needs_evidence") or [])
        return summarise_stored(self.catalog, self.rows, needs)


def load_view(engine, run: Union[str, int], catalog: Catalog, rows: Optional[list[dict]] = None,
              status: Optional[str] = None) -> RunView:
    """The view of the run `run` names (an id, or "latest") with its findings (only those of
    `status`, if given), or with `rows` when the caller already has them."""
    if rows is not None:
        wanted = status_filter(status)
        return RunView(resolve_run(engine, str(run)), [r for r in rows if wanted is None or r["status"] == wanted],
                       catalog)
    record, found = list_findings(engine, str(run), status)
    return RunView(record, found, catalog)


def render(engine, run: Union[str, int], fmt_name: str, catalog: Catalog, status: Optional[str] = None) -> Any:
    """The findings of the run `run` names (only those of `status`, if given) in the registered
    export format `fmt_name`, as a JSON-able document. A UserError for an unknown format."""
    formats = export_formats()
    if fmt_name not in formats:
        raise UserError(f"--format: {shown(fmt_name)} is not an export format ({', '.join(sorted(formats))})")
    return formats[fmt_name].render(load_view(engine, run, catalog, status=status))
