"""The populations per-event manual evidence items are judged against (issue 14 §2), read in the
caller's unit of work as evaluate.manual_evidence.item_states' keyword arguments: the incidents opened,
the CloudTrail write events kept (calls that failed changed nothing and are left out) with the ticket
each carries (evaluate.tickets), the IAM ones among them (access changes), and the accounts in scope
read by the runs. From `since` to `on`; without `since` (a run, the control room, reminders), from the
start of the calendar quarter `on` falls in — a packet passes its period's start. Here, below the scan,
so a run records the same manual-evidence states the control room and the packet judge."""
from __future__ import annotations

import datetime as dt
from typing import Optional

from auditbook.errors import UserError, shown
from auditbook.evaluate.tickets import ticket_of, ticket_pattern
from auditbook.store import changes as stored_changes
from auditbook.store import manual_evidence as documents
from auditbook.store import period_events
from auditbook.store import scope as stored_scope


def quarter_start(on: dt.date) -> dt.date:
    """The first day of the calendar quarter `on` falls in."""
    return dt.date(on.year, 3 * ((on.month - 1) // 3) + 1, 1)


def _bounds(since: Optional[dt.date], on: dt.date) -> tuple[dt.datetime, dt.datetime]:
    lo = dt.datetime.combine(since or quarter_start(on), dt.time(), dt.timezone.utc)
    return lo, dt.datetime.combine(on + dt.timedelta(days=1), dt.time(), dt.timezone.utc)


def _excluded_accounts(entries: list[dict], since: dt.date, on: dt.date) -> set[str]:
    """The accounts out of scope for the whole of `since` to `on` (excluded by `since`, not lifted
    before `on`): an account in scope for part of the window still owes its review — a minute's
    exclusion must not drop it for the quarter."""
    out = set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise UserError(f"scope: a stored entry is not an entry: {shown(entry)}")
        if entry.get("kind") != "account":
            continue
        try:
            start = dt.datetime.fromisoformat(entry["excluded"]["at"]).date()
            lifted = entry.get("lifted")
            end = dt.datetime.fromisoformat(lifted["at"]).date() if lifted else None
        except (KeyError, TypeError, ValueError):  # a hand-edited setting: one line, never a wrong population
            raise UserError(f"scope: the stored entry {shown(entry.get('id'))} is malformed; "
                            "`auditbook scope show` names it") from None
        if start <= since and (end is None or end >= on):
            out.add(entry["value"])
    return out


def _read(session, since: Optional[dt.date], on: dt.date, pattern) -> dict:
    """Everything the populations from `since` to `on` are cut from, read once."""
    lo, hi = _bounds(since, on)
    events = period_events.events_for_items(session, lo, hi)
    if len(events) > period_events.MAX_ROWS:
        raise UserError(f"changes: more than {period_events.MAX_ROWS} write events from {lo.date()} to {on}; "
                        "judge a shorter period")
    runs = stored_scope.run_accounts(session, lo, hi)
    day_of = {r.run_id: r.day for r in runs}
    read = stored_scope.accounts_read(session, runs[0].run_id, runs[-1].run_id) if runs else []
    known = bool(events) or stored_changes.any_coverage(session, lo, hi)  # no log read: not "no changes"
    return {"since": lo.date(), "incidents": documents.incidents_opened(session, lo.date(), on),
            "changes": [(e["event_id"], e["at"].date(), ticket_of(e, pattern)[0], e["iam"]) for e in events]
            if known else None,
            "read": [(day_of[run], account) for run, account in read if run in day_of] if runs else None,
            "entries": stored_scope.read_scope(session)["entries"]}


def _cut(raw: dict, on: dt.date) -> dict:
    """The populations of `on` (item_states' keyword arguments) from what _read read up to a later day."""
    changes = None if raw["changes"] is None else [c for c in raw["changes"] if c[1] <= on]
    read = None if raw["read"] is None else {account for day, account in raw["read"] if day <= on}
    return {"incidents": [i for i in raw["incidents"] if i[1] <= on],
            "changes": None if changes is None else [c[:3] for c in changes],
            "access_changes": None if changes is None else [c[:3] for c in changes if c[3]],
            "accounts": None if read is None else sorted(read - _excluded_accounts(raw["entries"], raw["since"], on))}


def item_populations(session, since: Optional[dt.date], on: dt.date, ticket: Optional[str] = None) -> dict:
    """The populations of the per-event items from `since` (a period's start; None: the start of the
    quarter `on` falls in) to `on`, as item_states' keyword arguments (incidents, changes,
    access_changes, accounts in scope). `ticket`: the ticket-reference pattern (default
    AUDITBOOK_TICKET_PATTERN or the built-in one). With no CloudTrail log read over the window and no
    write event kept, the changes are not known (None: those items are missing, never passed on an
    empty list)."""
    return _cut(_read(session, since, on, ticket_pattern(ticket)), on)


def populations_by_day(session, days: set[dt.date]) -> dict[dt.date, dict]:
    """item_populations(session, None, day) for many days (the posture trend), each quarter read once."""
    pattern, out = ticket_pattern(), {}
    by_quarter: dict[dt.date, list[dt.date]] = {}
    for day in days:
        by_quarter.setdefault(quarter_start(day), []).append(day)
    for start, mine in by_quarter.items():
        raw = _read(session, start, max(mine), pattern)
        out.update({day: _cut(raw, day) for day in mine})
    return out
