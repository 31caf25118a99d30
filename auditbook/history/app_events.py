"""The application audit events of a period as a population (docs/samples.md), beside CloudTrail's:
every event read from the application's audit log groups in the period, of the kinds that evidence a
criterion (store.app_audit.KIND_CRITERIA: data_access and admin_action for CC6.3, system_change for
CC8.1), with its completeness declared like the change population's — for each log group read, the
parts of the period no successful read covered (a failed read says why) and the events that could
not be read. populations.population(…, "app_events", criterion) makes them the population."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from auditbook.errors import UserError, shown
from auditbook.history.period import Period
from auditbook.history.resource_timeline import COVERAGE_SLACK, coverage_gaps
from auditbook.store import app_audit as stored
from auditbook.store.app_audit import KIND_CRITERIA, KINDS, match_id
from auditbook.store.period_events import MAX_ROWS
from auditbook.store.session import reading

KIND = "app_events"
COLUMNS = ("id", "event_id", "at", "kind", "criteria", "event_type", "user", "source_ip", "user_agent", "action",
           "outcome", "resource", "account", "region", "log_group", "record_sha256")
CRITERIA = sorted({c for criteria in KIND_CRITERIA.values() for c in criteria})


def kinds_for(criterion: Optional[str]) -> tuple[str, ...]:
    """The kinds of event that evidence a criterion (None: every kind of KINDS)."""
    if criterion is None:
        return KINDS
    kinds = tuple(k for k in KINDS if criterion in KIND_CRITERIA[k])
    if not kinds:
        raise UserError(f"--population: application audit events evidence {', '.join(CRITERIA)}, "
                        f"not {shown(criterion)}")
    return kinds


def _iso(at: dt.datetime) -> str:
    """A time as population text (populations.cell's form for a datetime)."""
    return at.astimezone(dt.timezone.utc).isoformat()


def _bounds(period: Period) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(period.start, dt.time(), dt.timezone.utc)
    return start, dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)


def app_event_items(engine, period: Period, criterion: Optional[str] = None) -> list[dict]:
    """The period's application audit events (of the criterion's kinds, or every kind) as population
    items: COLUMNS, values not yet text (populations._rows makes them cells). More than MAX_ROWS
    events is a UserError (never cut silently)."""
    kinds = kinds_for(criterion)
    since, until = _bounds(period)
    with reading(engine) as session:
        found = stored.events_in(session, since, until, kinds)
    if len(found) > MAX_ROWS:
        raise UserError(f"--population: {KIND} has more than {MAX_ROWS} rows in the period; take a shorter period")
    return [{**e, "id": match_id(e["source"], e["event_id"]), "criteria": " ".join(KIND_CRITERIA[e["kind"]])}
            for e in found]


def app_completeness(engine, period: Period, now: Optional[dt.datetime] = None) -> dict:
    """For each log group read, what its reads covered of the period (to now, while it runs) and each
    interval none did (a failed read's reason named), and the events that could not be read — in the
    shape of populations.change_completeness (populations.completeness_lines prints it)."""
    since, until = _bounds(period)
    until = min(until, (now or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0))
    groups, limits = [], []
    with reading(engine) as session:
        all_unread = stored.events_in(session, since, until, unread=True)
        for source in stored.sources(session):
            reads = stored.reads(session, since - COVERAGE_SLACK, until + COVERAGE_SLACK, source["source"])
            unread = [e for e in all_unread if e["source"] == source["source"]]
            group_limits = _limits(source, reads, unread, since, until)
            groups.append({"account": source["account"], "region": source["region"], "log_group": source["log_group"],
                           "reads": sum(r["error"] is None for r in reads), "gaps": len(group_limits),
                           "unread_records": len(unread)})
            limits.extend(group_limits)
    return {"source": "application audit events read from CloudWatch Logs (auditbook app-audit ingest / watch), "
                      "per log group", "from": _iso(since), "to": _iso(until), "accounts_regions": groups,
            "limits": limits, "complete": bool(groups) and not limits,
            "note": "" if groups else ("no application audit log group was read: the population's completeness "
                                       "is unknown")}


def list_events(engine, since: Optional[dt.datetime], until: Optional[dt.datetime], kind: Optional[str] = None,
                unread: bool = False, limit: int = 200) -> tuple[list[dict], int]:
    """`auditbook app-audit list`: the newest `limit` stored events (oldest first) and how many match."""
    with reading(engine) as session:
        return stored.newest(session, since, until, kind, unread, limit)


def _limits(source: dict, reads: list[dict], unread: list[dict], since: dt.datetime, until: dt.datetime) -> list[dict]:
    """The intervals of [since, until] no successful read of the log group covered (with the reason of
    a failed read overlapping it), and the span of the events that could not be read."""
    covered = [r for r in reads if r["error"] is None]
    failed = [r for r in reads if r["error"] is not None]
    out = []
    for start, end in (coverage_gaps(covered, since, until) if until > since else []):
        why = next((f["error"] for f in reversed(failed) if f["first_at"] <= end and f["last_at"] >= start), None)
        reason = (f"log group {source['log_group']}: " + (f"the read failed: {why}" if why else
                  "no read covered this interval" if covered else "never read in the period"))
        out.append({"account": source["account"], "region": source["region"], "from": _iso(start), "to": _iso(end),
                    "reason": reason})
    if unread:
        out.append({"account": source["account"], "region": source["region"], "from": _iso(unread[0]["at"]),
                    "to": _iso(unread[-1]["at"]),
                    "reason": f"log group {source['log_group']}: {len(unread)} event(s) could not be read "
                              f"(first: {unread[0]['unread']})"})
    return out
