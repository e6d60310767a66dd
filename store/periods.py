"""Budget periods: where one starts, where the next begins. All in UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from store.types import Period

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: every period a running total is kept for, so a budget may change period mid-way
TRACKED = (Period.DAILY, Period.WEEKLY, Period.MONTHLY, Period.NONE)


def period_start(period: Period, at: datetime) -> datetime:
    at = at.astimezone(timezone.utc)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAILY:
        return day
    if period is Period.WEEKLY:
        return day - timedelta(days=day.weekday())  # weeks start on Monday
    if period is Period.MONTHLY:
        return day.replace(day=1)
    return EPOCH


def next_period_start(period: Period, at: datetime) -> datetime | None:
    start = period_start(period, at)
    if period is Period.DAILY:
        return start + timedelta(days=1)
    if period is Period.WEEKLY:
        return start + timedelta(days=7)
    if period is Period.MONTHLY:
        return (start + timedelta(days=32)).replace(day=1)
    return None


def parse_period(text: str) -> Period:
    from store.errors import InvalidInput

    wanted = text.strip().lower()
    wanted = {"day": "daily", "week": "weekly", "month": "monthly", "never": "none", "lifetime": "none"}.get(wanted, wanted)
    try:
        return Period(wanted)
    except ValueError:
        raise InvalidInput(f"“{text[:30]}” is not a period. Use daily, weekly, monthly or none.") from None
