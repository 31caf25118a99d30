"""Audit periods: `2026Q4`, or a first and a last day. A period covers whole days (UTC). And the
runs of a period (PeriodRuns): every Type II read starts from them."""
from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Optional

from auditbook.errors import UserError, shown
from auditbook.evaluate.manual_evidence import add_months
from auditbook.history import shared_reads
from auditbook.store import history as stored
from auditbook.store.session import reading

QUARTER = re.compile(r"([0-9]{4})-?Q([1-4])", re.IGNORECASE)
FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(9998, 12, 31)  # room for a day's arithmetic either side
MAX_DAYS = 3 * 366  # a period of at most three years


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date  # inclusive
    label: str

    def days(self) -> list[dt.date]:
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def as_dict(self) -> dict:
        return {"label": self.label, "start": self.start.isoformat(), "end": self.end.isoformat()}


def quarter(year: int, q: int) -> Period:
    start = dt.date(year, 3 * (q - 1) + 1, 1)
    return Period(start, add_months(start, 3) - dt.timedelta(days=1), f"{year}Q{q}")


def previous_quarter(today: dt.date) -> Period:
    q = (today.month - 1) // 3 + 1
    return quarter(today.year - 1, 4) if q == 1 else quarter(today.year, q - 1)


def _date(text: str, option: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option}: {shown(text)} is not a date (YYYY-MM-DD)")
    if not FIRST_DAY <= day <= LAST_DAY:
        raise UserError(f"{option}: {day} is not between {FIRST_DAY} and {LAST_DAY}")
    return day


def parse_period(period: Optional[str] = None, start: Optional[str] = None, end: Optional[str] = None) -> Period:
    """Exactly one of `period` or `start`+`end`."""
    if period and (start or end):
        raise UserError("--period: give either --period or --from/--to, not both")
    if period:
        m = QUARTER.fullmatch(period.strip())
        if not m:
            raise UserError(f"--period: {shown(period)} is not a quarter like 2026Q4")
        if not FIRST_DAY.year <= int(m.group(1)) <= LAST_DAY.year:
            raise UserError(f"--period: {shown(period)}: the year is not between {FIRST_DAY.year} and {LAST_DAY.year}")
        return quarter(int(m.group(1)), int(m.group(2)))
    if not (start and end):
        raise UserError("--period: give --period YYYYQn, or both --from and --to")
    first, last = _date(start, "--from"), _date(end, "--to")
    if last < first:
        raise UserError(f"--to: {last} is before --from {first}")
    if (last - first).days + 1 > MAX_DAYS:
        raise UserError(f"--to: {first}..{last} is {(last - first).days + 1} days; a period is at most {MAX_DAYS}")
    return Period(first, last, f"{first}..{last}")


@dataclass(frozen=True)
class RunInfo:
    id: int
    at: dt.datetime
    types: frozenset
    simulated: bool

    @property
    def day(self) -> dt.date:
        return self.at.date()


@dataclass
class PeriodRuns:
    period: Period
    runs: list[RunInfo]
    times: dict[int, dt.datetime] = field(default_factory=dict)  # every run id the period's rows refer to

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.runs]

    def last_for_type(self, rtype: str) -> dict[dt.date, RunInfo]:
        """Each day's last run that attempted `rtype`."""
        out: dict[dt.date, RunInfo] = {}
        for run in self.runs:  # ordered by time
            if rtype in run.types:
                out[run.day] = run
        return out

    def observed_days(self) -> set[dt.date]:
        return {r.day for r in self.runs}

    def horizon(self, today: Optional[dt.date] = None) -> list[dt.date]:
        """The period's days that have happened (a period still running has no gaps in the future)."""
        today = today or dt.datetime.now(dt.timezone.utc).date()
        return [d for d in self.period.days() if d <= today]

    def gap_days(self, today: Optional[dt.date] = None) -> list[dt.date]:
        """The days of the horizon on which no run happened at all (monitoring gaps)."""
        observed = self.observed_days()
        return [d for d in self.horizon(today) if d not in observed]

    def coverage(self, today: Optional[dt.date] = None) -> dict:
        """How much of the period a scan covered, for the pages: the days that have happened, those
        with a run, whether the period is closed (its last day before `today`) and the gaps as
        ranges of days."""
        today = today or dt.datetime.now(dt.timezone.utc).date()
        horizon = self.horizon(today)
        return {"runs": len(self.runs), "days": len(horizon), "observed": len(self.observed_days() & set(horizon)),
                "closed": self.period.end < today, "start": self.period.start, "end": self.period.end,
                "gaps": day_ranges(self.gap_days(today))}

    def in_period(self, first_run: int, last_run: int) -> bool:
        """Whether an interval first_run..last_run contains a run of the period."""
        ids = self.ids
        i = bisect.bisect_left(ids, first_run)
        return i < len(ids) and ids[i] <= last_run


def period_runs(engine, period: Period) -> PeriodRuns:
    """The runs started in the period, oldest first, with the resource types each attempted."""
    lo = dt.datetime.combine(period.start, dt.time(), dt.timezone.utc)
    hi = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    def read() -> list:
        with reading(engine) as session:
            return stored.runs_between(session, lo, hi)
    found = shared_reads.once(("period_runs", shared_reads.store_key(engine), lo, hi), read)
    # run ids follow time (runs are stored as they finish), so intervals of run ids are intervals of time
    runs = [RunInfo(r.id, r.started_at, r.types, r.simulated) for r in found]
    return PeriodRuns(period, runs, {r.id: r.at for r in runs})


def day_ranges(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Days as runs of consecutive days: [(first, last), ...] (the monitoring gaps' table)."""
    out: list[list[dt.date]] = []
    for d in sorted(days):
        if out and (d - out[-1][1]).days == 1:
            out[-1][1] = d
        else:
            out.append([d, d])
    return [(a, b) for a, b in out]
