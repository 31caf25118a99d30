"""The system boundary as the store holds it: the accounts each run listed (its identities: an `--org`
run lists every ACTIVE account of the organisation, reached or not), what each run read (account,
region, resource type), and the `scope` setting (what an admin put out of scope, and why), written
only at the version it was read."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auditbook.store.db import utc
from auditbook.store.models import Run, RunScope, Setting

SCOPE_KEY = "scope"  # the settings row holding {"version": n, "entries": [...]} (auditbook.history.scope)
EMPTY = {"version": 0, "entries": []}


@dataclass(frozen=True)
class RunAccounts:
    """A run's accounts: `organisation` when the run listed the organisation (`scan --org`), so its
    identities are the organisation's ACTIVE accounts on that day."""
    run_id: int
    day: dt.date
    organisation: bool
    identities: list
    regions_requested: list = field(default_factory=list)  # the scan's --regions (before the scope)
    left_out: list = field(default_factory=list)  # what the scope in force left out (collect.plan.left_out)


def _strings(value) -> list:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def run_accounts(session: Session, lo: dt.datetime, hi: dt.datetime) -> list[RunAccounts]:
    """The accounts of every run started in [lo, hi), oldest first."""
    rows = session.execute(select(Run.id, Run.started_at, Run.parameters, Run.identities)
                           .where(Run.started_at >= lo, Run.started_at < hi).order_by(Run.id))
    out = []
    for rid, at, params, identities in rows:
        params = params if isinstance(params, dict) else {}
        left = params.get("out_of_scope")
        out.append(RunAccounts(rid, utc(at).date(), bool(params.get("org_role")),
                               [i for i in (identities or []) if isinstance(i, dict)],
                               _strings(params.get("regions_requested") or params.get("regions")),
                               [e for e in left if isinstance(e, dict)] if isinstance(left, list) else []))
    return out


def accounts_read(session: Session, lo: int, hi: int) -> list[tuple[int, str]]:
    """(run id, account) for every account the runs lo..hi read at least one scope of."""
    q = (select(RunScope.run_id, RunScope.account).distinct()
         .where(RunScope.run_id >= lo, RunScope.run_id <= hi, RunScope.ok.is_(True)))
    return [tuple(r) for r in session.execute(q)]


def regions_read(session: Session, lo: int, hi: int) -> list[tuple[str, str]]:
    """(account, region) of every scope the runs lo..hi read."""
    q = (select(RunScope.account, RunScope.region).distinct()
         .where(RunScope.run_id >= lo, RunScope.run_id <= hi, RunScope.ok.is_(True)))
    return [tuple(r) for r in session.execute(q)]


def types_attempted(session: Session, lo: int, hi: int) -> dict[str, bool]:
    """{resource type: whether any of the runs lo..hi read it} for every type they attempted."""
    where = (RunScope.run_id >= lo, RunScope.run_id <= hi)
    attempted = set(session.scalars(select(RunScope.resource_type).distinct().where(*where)))
    read = set(session.scalars(select(RunScope.resource_type).distinct().where(*where, RunScope.ok.is_(True))))
    return {t: t in read for t in attempted}


def types_attempted_by_run(session: Session, lo: int, hi: int) -> dict[int, dict[str, bool]]:
    """{run id: {resource type: whether the run read it at least once}} for the runs lo..hi."""
    read = func.max(case((RunScope.ok.is_(True), 1), else_=0))
    q = (select(RunScope.run_id, RunScope.resource_type, read)
         .where(RunScope.run_id >= lo, RunScope.run_id <= hi).group_by(RunScope.run_id, RunScope.resource_type))
    out: dict[int, dict[str, bool]] = {}
    for run_id, rtype, ok in session.execute(q):
        out.setdefault(run_id, {})[rtype] = bool(ok)
    return out


def read_scope(session: Session) -> dict:
    """The scope setting: {"version": n, "entries": [...]} (version 0 and no entries when never set)."""
    value = session.scalar(select(Setting.value).where(Setting.key == SCOPE_KEY))
    return dict(value) if isinstance(value, dict) else dict(EMPTY)


def write_scope(session: Session, value: dict, version: int) -> bool:
    """Store `value` (whose "version" is version + 1) only if the setting is still at `version`;
    False when someone else changed it first (nothing written)."""
    if version == 0:
        try:
            with session.begin_nested():  # a concurrent first write fails on the key, not the transaction
                session.execute(insert(Setting).values(key=SCOPE_KEY, value=value))
            return True
        except IntegrityError:
            return False
    done = session.execute(update(Setting).where(Setting.key == SCOPE_KEY,
                                                 Setting.value["version"].as_integer() == version)
                           .values(value=value).execution_options(synchronize_session=False))
    return done.rowcount == 1
