"""The posture for analysts: a run's criteria narrowed by account, region, severity, check and an
environment or owner tag; what changed since the previous run or a chosen date (new failures, fixes,
regressions); account names. Counts and changes are computed by the database (store/posture.py,
store/posture_changes.py); each read is one unit of work."""
from __future__ import annotations

import datetime as dt
from typing import Optional

import jmespath

from auditbook.catalog.model import Catalog
from auditbook.collect.records import tag_dict
from auditbook.evaluate.evaluator import criterion_status
from auditbook.plugins import resource_types
from auditbook.store import accounts, posture, posture_changes, record_tags, runs
from auditbook.store.posture import Filters
from auditbook.store.record_tags import TagsBusy
from auditbook.store.session import reading, writing

__all__ = ["Filters", "TAG_KEYS", "TagsBusy", "account_names", "baseline", "changes", "criteria", "failing",
           "filter_values", "index_tags"]
TAG_KEYS = ("environment", "env", "stage", "owner", "team")  # the tags the posture filters offer (any case)
SEVERITIES = ("critical", "high", "medium", "low")


def account_names(engine) -> dict[str, str]:
    """{account id: name} from the runs' identities (Organizations names or the accounts file)."""
    with reading(engine) as session:
        return accounts.names(session)


def record_tag_values(resource_type: Optional[str], record: Optional[dict]) -> dict[str, str]:
    """The TAG_KEYS tags of a stored record (keys in lower case), read with its resource type's tag
    path; {} for a record without them, or of a type no longer declared."""
    spec = resource_types().get(resource_type or "")
    if record is None or spec is None or not spec.tags:
        return {}
    found = tag_dict(jmespath.search(spec.tags, record))  # the path the collection read the tags with
    return {k.lower(): v for k, v in sorted(found.items()) if k.lower() in TAG_KEYS}


def index_tags(engine) -> int:
    """Read the tags of every stored record not read yet (once per record: records are content-
    addressed); how many records were read. TagsBusy: the store's writer was busy (SQLite), the
    batch in hand was not added — read again later."""
    read = 0
    with writing(engine) as session:
        for batch in record_tags.batches(session):
            record_tags.add(session, {sha: record_tag_values(rtype, record) for sha, rtype, record in batch})
            read += len(batch)
    return read


def filter_values(engine, run_id: int) -> dict[str, list]:
    """The filters' choices in a run: accounts, regions, severities, checks, and tags as
    (key, value, resources)."""
    with reading(engine) as session:
        out: dict[str, list] = dict(posture.filter_values(session, run_id))
        out["tag"] = record_tags.values(session, run_id)
    out["severity"] = sorted(out["severity"], key=lambda s: (SEVERITIES.index(s) if s in SEVERITIES else 9, s))
    return out


def criteria(engine, catalog: Catalog, run_id: int, flt: Filters, needs_evidence: set[str]) -> list[dict]:
    """Every criterion of the catalog with the counts of the run's findings that pass the filters
    (NO_DATA: none does)."""
    with reading(engine) as session:
        rows = posture.check_counts(session, run_id, flt)
    controls = {c.id: c.controls for c in catalog.checks}
    counts = {c.id: {"PASS": 0, "FAIL": 0, "ERROR": 0, "EXCEPTED": 0} for c in catalog.controls}
    for check, status, n in rows:
        for criterion in controls.get(check, []):
            if criterion in counts and status in counts[criterion]:
                counts[criterion][status] += n
    out = []
    for control in catalog.controls:
        c = counts[control.id]
        status = criterion_status(c, control.id in needs_evidence) if sum(c.values()) else "NO_DATA"
        out.append({"criterion": control.id, "category": control.category, "group": control.group,
                    "title": control.title, "checks": len(catalog.checks_for(control.id)), "pass": c["PASS"],
                    "fail": c["FAIL"], "error": c["ERROR"], "excepted": c["EXCEPTED"], "status": status})
    return out


def failing(engine, catalog: Catalog, run_id: int, criterion: str, flt: Filters) -> list[dict]:
    """The criterion's findings in the run that are not passing and pass the filters, worst first."""
    checks = [c.id for c in catalog.checks_for(criterion)]
    if not checks:
        return []
    with reading(engine) as session:
        rows = posture.failing_findings(session, run_id, checks, flt)
    order = {"FAIL": 0, "ERROR": 1, "EXCEPTED": 2}
    return sorted(rows, key=lambda f: (order.get(f["status"], 3), f["check"], f["account"], f["resource"]))


def baseline(engine, run_id: int, since: Optional[dt.date] = None) -> Optional[dict]:
    """The run to compare `run_id` with: the one before it, or the last run started on or before
    the date `since` (None: there is none). {"id", "started_at", "simulated"}."""
    with reading(engine) as session:
        if since is None:
            found = posture.previous_run(session, run_id)
        else:
            end = dt.datetime.combine(since + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)
            found = posture.run_before(session, end)
        run = runs.get(session, found) if found is not None and found < run_id else None
    if run is None:
        return None
    return {"id": run.id, "started_at": run.started_at, "simulated": run.simulated,
            "simulated_label": run.parameters.get("simulated")}


def changes(engine, a: int, b: int, flt: Optional[Filters] = None, limit: int = 500) -> dict[str, dict]:
    """New failures, regressions and fixes from run `a` to run `b`, filtered:
    {kind: {"rows": first `limit`, "total": n}}."""
    out = {}
    with reading(engine) as session:
        for kind in posture_changes.KINDS:
            rows, total = posture_changes.changes(session, kind, a, b, flt, limit)
            out[kind] = {"rows": rows, "total": total}
    return out
