"""Findings of a stored run in interchange formats. The formats are a registry (the export_formats
seam: report.exports.formats has the built-ins ocsf, asff and oscal; a plugin adds its own), and
`render` is what the CLI calls: a run, a format name, the catalog → a JSON-able document."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from auditbook.catalog.model import Catalog
from auditbook.errors import UserError, shown
from auditbook.history.findings import list_findings, resolve_run, status_filter
from auditbook.history.status import statuses_at_run
from auditbook.plugins import export_formats
from auditbook.store.runs import RunRecord
from auditbook.store.session import reading


@dataclass
class RunView:
    """What every exporter needs: the run, its findings (as stored rows), the catalog, and each
    criterion's counts and status in the run (history.status: the one status the packet and the
    control room show, manual evidence included — whatever `rows` was narrowed to)."""
    run: RunRecord
    rows: list[dict]
    catalog: Catalog
    criteria: dict[str, dict]
    _checks: dict = field(init=False, repr=False)

    def __post_init__(self):
        self._checks = {c.id: c for c in self.catalog.checks}

    def check(self, check_id: str):
        return self._checks.get(check_id)

    def summary(self) -> list[dict]:
        """Per criterion: its counts in the run (PASS, FAIL, ERROR, EXCEPTED) and its status."""
        none = {"pass": 0, "fail": 0, "error": 0, "excepted": 0, "status": "NO_DATA"}
        out = []
        for c in self.catalog.controls:
            row = self.criteria.get(c.id, none)
            out.append({"control": c.id, "title": c.title, "checks": len(self.catalog.checks_for(c.id)),
                        **{s.upper(): row[s] for s in ("pass", "fail", "error", "excepted")}, "status": row["status"]})
        return out


def load_view(engine, run: Union[str, int], catalog: Catalog, rows: Optional[list[dict]] = None,
              status: Optional[str] = None) -> RunView:
    """The view of the run `run` names (an id, or "latest") with its findings (only those of
    `status`, if given), or with `rows` when the caller already has them."""
    if rows is not None:
        wanted = status_filter(status)
        record, found = resolve_run(engine, str(run)), [r for r in rows if wanted is None or r["status"] == wanted]
    else:
        record, found = list_findings(engine, str(run), status)
    with reading(engine) as session:
        criteria = statuses_at_run(session, catalog, record.id)
    return RunView(record, found, catalog, criteria)


def render(engine, run: Union[str, int], fmt_name: str, catalog: Catalog, status: Optional[str] = None) -> Any:
    """The findings of the run `run` names (only those of `status`, if given) in the registered
    export format `fmt_name`, as a JSON-able document. A UserError for an unknown format."""
    formats = export_formats()
    if fmt_name not in formats:
        raise UserError(f"--format: {shown(fmt_name)} is not an export format ({', '.join(sorted(formats))})")
    return formats[fmt_name].render(load_view(engine, run, catalog, status=status))
