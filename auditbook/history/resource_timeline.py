"""The change behind a finding (CC8.1): one resource's timeline — every stored state of it (the store
keeps intervals of an unchanged record), each change between two runs with the fields it changed, and
the CloudTrail write events on the resource in that interval (who, when, from where, which call, the
role session name and a ticket reference), or, where no CloudTrail log read covers the interval for
the resource's account and region, that gap. The control room's resource page, `auditbook resource`
and the notebooks all read it from `timeline()`."""
from __future__ import annotations

import datetime as dt
import re
from typing import Optional

from auditbook.errors import UserError, shown
from auditbook.evaluate.tickets import ticket_of, ticket_pattern
from auditbook.history.record_diff import diff
from auditbook.store import changes as stored_changes
from auditbook.store import resources as stored_resources
from auditbook.store import runs as stored_runs
from auditbook.store.session import reading

COVERAGE_SLACK = dt.timedelta(minutes=15)  # a pause between log files this short is not a gap
MAX_STATES = 400  # states read for one timeline (the newest)
MAX_EVENTS = 500  # write events read for one timeline (the newest)
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)  # --from / --to: a time in these years
LATEST = dt.datetime(9998, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)  # (room for COVERAGE_SLACK either side)
CREATED, FIRST_SEEN, MODIFIED, DELETED = "created", "first_seen", "modified", "deleted"


def window_bound(text: Optional[str], option: str, end: bool = False) -> Optional[dt.datetime]:
    """--from / --to: a day (YYYY-MM-DD: its start, or with end=True its last second) or an ISO 8601
    time with a time zone, in UTC; a UserError naming the option otherwise."""
    if text is None or text == "":
        return None
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return in_range(dt.datetime.combine(day, dt.time(23, 59, 59) if end else dt.time(0), dt.timezone.utc),
                            option, text)
        at = dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if len(text) <= 40 else None
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise UserError(f"{option}: {shown(text)} is not a day (YYYY-MM-DD) or an ISO 8601 time with a time zone")
    try:
        return in_range(at.astimezone(dt.timezone.utc), option, text)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first time Python holds
        return in_range(None, option, text)


def in_range(at: Optional[dt.datetime], option: str, text: Optional[str] = None) -> Optional[dt.datetime]:
    """`at` when it lies in the years EARLIEST..LATEST (None stays None unless `text` names it); a
    UserError naming the option and the value otherwise."""
    if at is None and text is None or at is not None and at.tzinfo is not None and EARLIEST <= at <= LATEST:
        return at
    if at is not None and at.tzinfo is None:
        raise UserError(f"{option}: {shown(text or at.isoformat())} has no time zone")
    raise UserError(f"{option}: {shown(text or at.isoformat())} is outside the years "
                    f"{EARLIEST.year}-{LATEST.year}")


def cloudtrail_region(region: str) -> str:
    """Where CloudTrail logs the calls on a resource of `region`: global services log in us-east-1."""
    return "us-east-1" if region in ("", "global") else region


def coverage_gaps(rows: list[dict], since: dt.datetime, until: dt.datetime,
                  slack: dt.timedelta = COVERAGE_SLACK) -> list[tuple[dt.datetime, dt.datetime]]:
    """The parts of [since, until] no coverage row covers (rows by first time; pauses of at most
    `slack` between them, or at either end, are not gaps)."""
    gaps, cursor = [], since
    for row in rows:
        if row["first_at"] - cursor > slack:
            gaps.append((cursor, row["first_at"]))
        cursor = max(cursor, row["last_at"])
        if cursor >= until:
            break
    if until - cursor > slack:
        gaps.append((cursor, until))
    return gaps


def _coverage(session, state: dict, start: Optional[dt.datetime], end: dt.datetime) -> Optional[dict]:
    """What CloudTrail input covers a change's interval for the resource's account and region."""
    if start is None:
        return None
    region = cloudtrail_region(state["region"])
    rows = stored_changes.coverage(session, state["account"], region, start - COVERAGE_SLACK, end + COVERAGE_SLACK)
    gaps = coverage_gaps(rows, start, end)
    return {"account": state["account"], "region": region, "covered": not gaps,
            "gaps": [{"from": a, "to": b} for a, b in gaps], "files": len(rows),
            "unread_records": sum(r["unread"] for r in rows)}


def _transition(kind: str, before: Optional[int], after: Optional[int], from_run, to_run) -> dict:
    return {"kind": kind, "before": before, "after": after,
            "from_run": from_run.id if from_run else None, "to_run": to_run.id,
            "from": from_run.started_at if from_run else None, "to": to_run.finished_at}


def priors(session, states: list[dict]) -> dict[int, Optional[int]]:
    """For each state that does not continue the one before it: the last run before it that read its
    scope (account, region, type) in full — a run that did not see it — or None."""
    out = {}
    for i, state in enumerate(states):
        if not i or states[i - 1]["closed_run"] != state["first_run"]:
            out[i] = stored_resources.scope_read_before(session, state["account"], state["scope_region"],
                                                        state["resource_type"], state["first_run"])
    return out


def transitions(states: list[dict], runs: dict, prior: dict, complete: bool = True) -> list[dict]:
    """The changes between consecutive states: created (first seen by a run after one that read its
    scope without seeing it), first_seen (in the first run that read its scope: its history starts
    there), modified (a state closed by the run that saw the next), deleted (closed, and not seen by
    that run). Each spans from the start of the last run that saw it before to the end of the first
    run that saw it after. `complete` False: the states are the newest only (nothing before the first)."""
    out = []
    for i, state in enumerate(states):
        if i in prior and (i or complete):
            kind = CREATED if prior[i] is not None else FIRST_SEEN
            out.append(_transition(kind, None, i, runs.get(prior[i]), runs[state["first_run"]]))
        elif i:
            out.append(_transition(MODIFIED, i - 1, i, runs[states[i - 1]["last_run"]], runs[state["first_run"]]))
        after = states[i + 1] if i + 1 < len(states) else None
        if state["closed_run"] is not None and (after is None or after["first_run"] != state["closed_run"]):
            out.append(_transition(DELETED, i, None, runs[state["last_run"]], runs[state["closed_run"]]))
    return out


def _resource_type(session, arn: str, resource_type: Optional[str]) -> str:
    types = stored_resources.types_of(session, arn)
    if not types:
        raise UserError(f"resource: no stored state of {shown(arn, 300)}")
    if resource_type is None and len(types) > 1:
        raise UserError(f"resource: {shown(arn, 300)} is stored as {len(types)} resource types "
                        f"({', '.join(types)}): name one with --type")
    if resource_type is not None and resource_type not in types:
        raise UserError(f"--type: {shown(resource_type)} is not a type stored under this resource "
                        f"(it has {', '.join(types)})")
    return resource_type or types[0]


def timeline(engine, arn: str, resource_type: Optional[str] = None, since: Optional[dt.datetime] = None,
             until: Optional[dt.datetime] = None, pattern: Optional[re.Pattern] = None,
             max_states: int = MAX_STATES, max_events: int = MAX_EVENTS, page: int = 1,
             page_size: Optional[int] = None) -> dict:
    """The resource's timeline (see the module): its states, the changes between them that overlap
    [since, until] (each with its field changes, write events and CloudTrail coverage), and the write
    events in that window that fall in no change's interval. `page_size`: only that many changes, the
    `page`-th newest (page 1: the newest), are read in full (diff and coverage) and returned, oldest
    first; `changes_total` counts them all. A resource stored under several types (an account's
    singletons share "<account>/<region>") needs `resource_type`."""
    since, until = in_range(since, "--from"), in_range(until, "--to")
    if since and until and since > until:
        raise UserError("--from: is after --to")
    pattern = pattern or ticket_pattern()
    with reading(engine) as session:
        resource_type = _resource_type(session, arn, resource_type)
        states, total_states = stored_resources.states_of(session, arn, resource_type, max_states)
        before = priors(session, states)
        ids = {s[k] for s in states for k in ("first_run", "last_run", "closed_run") if s[k] is not None}
        runs = {r.id: r for r in stored_runs.all_runs(session, sorted(ids | {p for p in before.values() if p}))}
        found = transitions(states, runs, before, complete=total_states == len(states))
        in_window = [t for t in found if _overlaps(t, since, until)]
        shown = page_of(in_window, page, page_size)
        bodies = stored_resources.record_bodies(session, {s["record_sha256"] for s in states})
        events, total_events = stored_changes.for_resources(session, [stored_changes.resource_key(arn)], since,
                                                            until, max_events)
        for change in shown:
            state = states[change["after"] if change["after"] is not None else change["before"]]
            change["coverage"] = _coverage(session, state, change["from"], change["to"])
    out = _assemble(arn, resource_type, states, total_states, bodies, in_window, shown, events, total_events,
                    pattern, since, until)
    out["simulated"] = any(r.simulated for r in runs.values()) or any(e["simulated"] for e in events)
    out["page"], out["pages"] = page, max(1, -(-len(in_window) // page_size)) if page_size else 1
    return out


def page_of(changes: list[dict], page: int, page_size: Optional[int]) -> list[dict]:
    """The `page`-th newest `page_size` changes (all when page_size is None), oldest first."""
    if not page_size:
        return changes
    end = len(changes) - (max(1, page) - 1) * page_size
    return changes[max(0, end - page_size):max(0, end)]


def _overlaps(change: dict, since: Optional[dt.datetime], until: Optional[dt.datetime]) -> bool:
    return (until is None or change["from"] is None or change["from"] <= until) and (since is None or change["to"] >= since)


def _assemble(arn, resource_type, states, total_states, bodies, in_window, shown, events, total_events, pattern,
              since, until) -> dict:
    """The timeline's dict: every event in the window matched to the change whose interval holds it (of
    all the changes in the window), the diff and events of the changes `shown`."""
    for event in events:
        event["ticket"], event["ticket_from"] = ticket_of(event, pattern)
        event["change"] = None
    for number, change in enumerate(in_window):
        change["events"] = []
        for event in events:
            if event["change"] is None and change["from"] is not None and change["from"] < event["at"] <= change["to"]:
                event["change"] = number
                change["events"].append(event)
    for change in shown:
        old = bodies.get(states[change["before"]]["record_sha256"]) if change["before"] is not None else None
        new = bodies.get(states[change["after"]]["record_sha256"]) if change["after"] is not None else None
        change["diff"] = [] if change["kind"] == FIRST_SEEN else [c.as_dict() for c in diff(old or {}, new or {})]
    latest = states[-1] if states else {}
    return {"arn": arn, "resource_type": resource_type, "name": latest.get("name", ""),
            "account": latest.get("account", ""), "region": latest.get("region", ""),
            "window": {"from": since, "to": until},
            "states": [dict(s, index=i, record=bodies.get(s["record_sha256"])) for i, s in enumerate(states)],
            "states_total": total_states, "changes": shown, "changes_total": len(in_window),
            "other_events": [e for e in events if e["change"] is None], "events_total": total_events,
            "events_shown": len(events), "ticket_pattern": pattern.pattern}


def diff_states(old: Optional[dict], new: Optional[dict]) -> list[dict]:
    """The field changes from one stored record of a resource to another (any two of its states)."""
    return [c.as_dict() for c in diff(old or {}, new or {})]


def resource_types(engine, arn: str) -> list[str]:
    """The resource types stored under `arn` (none: the store has never seen it)."""
    with reading(engine) as session:
        return stored_resources.types_of(session, arn)


def resources_touched(engine, event_ids: list[str]) -> dict[str, list[str]]:
    """event id -> the resources (ARNs, IAM paths left out) a CloudTrail write event touched: links from
    an alert's CloudTrail records to the resources' timelines."""
    with reading(engine) as session:
        return stored_changes.resources_of(session, list(event_ids))
