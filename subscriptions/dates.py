"""Calendar arithmetic for terms. All dates are UTC calendar dates."""

import calendar
from datetime import UTC, date, datetime, time, timedelta


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day (Jan 31 + 1 month = Feb 28/29).

    Partner Center counts terms in calendar months from the start date, so a term that starts
    on the 31st ends the day before the 31st (or the clamped last day) of the month it reaches.
    """
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def term_end_for(start: date, months: int) -> date:
    """The inclusive last day of a term of `months` starting on `start` (N2)."""
    return add_months(start, months) - timedelta(days=1)


def last_day_of_month(day: date) -> date:
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def is_last_day_of_month(day: date) -> bool:
    return day == last_day_of_month(day)


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def days_inclusive(start: date, end: date) -> int:
    return (end - start).days + 1


def period_containing(*, term_start: date, term_end: date, period_months: int | None, today: date):
    """(start, end, full_start, full_end) of the billing period holding `today`.

    Periods run in calendar months from the term start (`period_months` 1 or 12); None is one
    charge for the whole term. A term aligned short (K11) ends its last period early.
    """
    if period_months is None:
        return term_start, term_end, term_start, term_end
    k = 0
    while add_months(term_start, (k + 1) * period_months) <= today:
        k += 1
    start = add_months(term_start, k * period_months)
    full_end = add_months(term_start, (k + 1) * period_months) - timedelta(days=1)
    return start, min(full_end, term_end), start, full_end
