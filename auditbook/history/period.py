"""Audit periods: `2026Q4`, or a first and a last day. A period covers whole days (UTC)."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Optional

from auditbook.errors import UserError, shown
from auditbook.evaluate.manual_evidence import add_months

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
