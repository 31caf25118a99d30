"""Monitoring gaps and their reasons (issue 14 §9, docs/bridge.md): a day of a period without any scan
is a monitoring gap, never a pass, and an auditor asks why. An admin records the reason for a day or a
range of days (`explain_gap`: authorised, kept in the audit trail, no table of its own —
store.gap_reasons); `monitoring_gaps` gives a period's gap ranges each with its reason, or "no reason
recorded". A later reason for a day supersedes an earlier one (both stay in the trail)."""
from __future__ import annotations

import datetime as dt
import re
from typing import Optional

from auditbook.auth import Actor, authorize
from auditbook.errors import UserError, shown
from auditbook.history.period import MAX_DAYS, Period, PeriodRuns
from auditbook.history.scope import checked_reason
from auditbook.store import gap_reasons as stored
from auditbook.store.session import reading, writing

NO_REASON = "no reason recorded"
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def checked_day(value, option: str) -> dt.date:
    """A day given as YYYY-MM-DD (ASCII digits only) or a date; a one-line UserError naming the option."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    text = value.strip() if isinstance(value, str) else ""
    problem = UserError(f"{option}: {shown(value)} is not a date (YYYY-MM-DD)")
    if not ISO_DAY.fullmatch(text):
        raise problem
    try:
        return dt.date.fromisoformat(text)
    except ValueError:  # a calendar-impossible day (2026-02-30)
        raise problem from None


def explain_gap(engine, actor: Actor, first, last, reason: str, today: Optional[dt.date] = None) -> dict:
    """Record why first..last (inclusive, days that have happened) had no scan: admins only
    (manage_settings), in the audit trail. -> the entry {from, to, reason}."""
    authorize(actor, "manage_settings")
    today = today or dt.datetime.now(dt.timezone.utc).date()
    start, end = checked_day(first, "--from"), checked_day(last, "--to")
    if end < start:
        raise UserError(f"--to: {end} is before --from {start}")
    if end > today:
        raise UserError(f"--to: {end} is after today ({today}): a gap is explained once it happened")
    if (end - start).days + 1 > MAX_DAYS:
        raise UserError(f"--to: {start}..{end} is {(end - start).days + 1} days; at most {MAX_DAYS}")
    text = checked_reason(reason)
    with writing(engine) as session:
        return stored.record_reason(session, actor, start, end, text)


def gap_reasons(engine, period: Period) -> list[dict]:
    """The reasons recorded for days of the period, oldest first: {from, to, reason, by, role, at}."""
    with reading(engine) as session:
        return stored.reasons_overlapping(session, period.start, period.end)


def _reason_on(day: dt.date, reasons: list[dict]) -> Optional[dict]:
    """The latest reason recorded for the day, if any."""
    return next((r for r in reversed(reasons) if r["from"] <= day <= r["to"]), None)


def monitoring_gaps(engine, pruns: PeriodRuns, today: Optional[dt.date] = None) -> list[dict]:
    """The period's days without a scan (PeriodRuns.gap_days) as ranges of consecutive days sharing one
    reason: {from, to, days, reason, explained_by, explained_at} (ISO text; reason NO_REASON and
    nobody when none was recorded)."""
    reasons = gap_reasons(engine, pruns.period)
    out: list[dict] = []
    previous_day, previous_reason = None, None
    for day in pruns.gap_days(today):
        reason = _reason_on(day, reasons)
        if out and previous_day is not None and (day - previous_day).days == 1 and reason is previous_reason:
            out[-1]["to"] = day.isoformat()
            out[-1]["days"] += 1
        else:
            out.append({"from": day.isoformat(), "to": day.isoformat(), "days": 1,
                        "reason": reason["reason"] if reason else NO_REASON,
                        "explained_by": reason["by"] if reason else None,
                        "explained_at": reason["at"].isoformat() if reason else None})
        previous_day, previous_reason = day, reason
    return out
