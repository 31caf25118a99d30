"""What a run reached: the accounts it read (with their open resource count), the accounts it could not
reach, and its evidence gaps by error — the organisation-scale summary of one run."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auditbook.store.models import GapRow, ResourceState, Run


def run_reach(session: Session, run_id: int, top_errors: int = 5) -> dict:
    """The run's calls, collection time, accounts (reached with records, reached without, unreachable
    by its identities or by an AccountUnreachable gap) and its most frequent gap errors."""
    run = session.get(Run, run_id)
    with_records = dict(session.execute(
        select(ResourceState.account, func.count())
        .where(ResourceState.first_run <= run_id, ResourceState.last_run >= run_id)
        .group_by(ResourceState.account)).all())
    failed_identity = sorted(i["account"] for i in run.identities if i.get("error"))
    gap_accounts = {a for (a,) in session.execute(select(GapRow.account).distinct().where(
        GapRow.run_id == run_id, GapRow.error == "AccountUnreachable"))}
    gaps = dict(session.execute(select(GapRow.error, func.count()).where(GapRow.run_id == run_id)
                                .group_by(GapRow.error).order_by(func.count().desc()).limit(top_errors)).all())
    return {"run_id": run.id, "api_calls": run.api_calls,
            "collection_s": round((run.finished_at - run.started_at).total_seconds(), 2),
            "accounts": len(run.identities),
            "unreachable": sorted(set(failed_identity) | gap_accounts),
            "unreachable_in_identities": failed_identity, "unreachable_in_gaps": sorted(gap_accounts),
            "gaps_by_error": gaps,
            "accounts_with_records": len(with_records), "resources": sum(with_records.values()),
            "reached_without_records": sorted(i["account"] for i in run.identities
                                              if not i.get("error") and i["account"] not in with_records)}
