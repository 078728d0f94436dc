"""The demo's fixed clock: the moment the snapshot is taken and the window its records cover.

Generation never reads the wall clock, so one seed gives the same databases on every machine
and on every day. Times are naive local times in Asia/Shanghai, as department systems store them.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta

REFERENCE_DATE = date(2026, 6, 30)
# The snapshot is taken at the end of the reference date's working day; nothing happens later.
NOW = datetime.combine(REFERENCE_DATE, time(18, 0))
# Fiscal years 2025 and 2026: deliveries, expenditures and hotline requests fall in this window.
WINDOW_START = date(2025, 1, 1)
FISCAL_YEARS = (2025, 2026)
# The academic year running on the reference date starts on this day.
SCHOOL_YEAR_START = date(2025, 9, 1)


def age_on(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year + years, day=28)


def add_days(day: date, days: int) -> date:
    return day + timedelta(days=days)


def random_day(rng: random.Random, start: date, end: date) -> date:
    """A day in [start, end], uniformly."""
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def office_time(rng: random.Random, day: date, first_hour: int = 9, last_hour: int = 17) -> datetime:
    """A moment of office hours on `day`, to the second."""
    seconds = rng.randrange(first_hour * 3600, last_hour * 3600)
    return datetime.combine(day, time()) + timedelta(seconds=seconds)


def months(start: date, end: date) -> list[tuple[int, int]]:
    """The (year, month) pairs from start's month to end's month, inclusive."""
    result = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        result.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return result


def month_after(day: date, count: int = 1) -> date:
    """The first day of the month `count` months after `day`'s month."""
    index = day.year * 12 + day.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)
