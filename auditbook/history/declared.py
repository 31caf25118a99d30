"""Declared controls of a stored run (auditbook.evaluate.declared judges them): every front end — the
CLI's `declared` and `findings`, the control room's Declared controls page, the packet — reads them
here, each in one unit of work. Computed from what the store keeps (the run's records carry their tags,
its findings their statuses): nothing new is stored."""
from __future__ import annotations

from typing import Optional

from auditbook.evaluate.declared import (
    Observed,
    annotate,
    carries_tag,
    control_tag_key,
    declared_view,
)
from auditbook.history.findings import list_findings, resolve_run
from auditbook.plugins import resource_types
from auditbook.store import findings, scan_records
from auditbook.store.session import reading


def declared_at(engine, catalog, run_id: int) -> dict:
    """The declared controls as run `run_id` observed them (evaluate.declared.declared_view, with
    "run": the run id)."""
    specs = resource_types()
    tag_key = control_tag_key(catalog)
    with reading(engine) as session:
        resources = [Observed(*row) for row in scan_records.tagged_at(session, run_id,
                                                                       [n for n, spec in specs.items() if spec.tags])]
        # the findings matter only for resources that carry the tag at all (none: nothing is read)
        rows = findings.at_run(session, run_id) if any(carries_tag(r.tags, tag_key) for r in resources) else []
    view = declared_view(catalog, resources, rows, tag_key, specs)
    return {"run": run_id, **view}


def declared(engine, catalog, run: str = "latest") -> dict:
    """declared_at for the run `run` names (an id or "latest"; a UserError for anything else)."""
    return declared_at(engine, catalog, resolve_run(engine, run).id)


def annotated_findings(engine, catalog, run: str = "latest", status: Optional[str] = None) -> tuple[object, list[dict]]:
    """history.findings.list_findings with each finding's declared criteria and, for a FAIL, the
    declared criteria it fails (evaluate.declared.annotate)."""
    record, rows = list_findings(engine, run, status)
    return record, annotate(rows, declared_at(engine, catalog, record.id))
