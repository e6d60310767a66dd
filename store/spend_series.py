"""Spend split and spread over time, read from the hourly rows (spend_hours), never from the events.

The windows people ask for (``day``, ``week``, ``month``, ``last-month``) are UTC periods,
as budgets are; a window still under way ends now. Breakdowns group by project, member,
key or model; daily series are what the charts stack.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.errors import InvalidInput
from store.models import ApiKey, Member, Project
from store.models_spend import SpendHour
from store.periods import next_period_start, period_start
from store.types import Period

NO_PROJECT = "no project"
NO_MODEL = "model not reported"


class By(enum.StrEnum):
    PROJECT = "project"
    MEMBER = "member"
    KEY = "key"
    MODEL = "model"


@dataclass(frozen=True)
class Window:
    name: str  # as asked: "day", "week", "month", "last-month"
    since: datetime  # the period's first instant
    until: datetime  # the period's end (exclusive); later than now for a period under way
    now: datetime

    @property
    def upto(self) -> datetime:
        """Where spend can have been recorded up to: the period's end, or now."""
        return min(self.until, self.now)

    @property
    def days(self) -> list[date]:
        first = self.since.date()
        return [first + timedelta(days=n) for n in range((self.until - self.since).days)]

    def describe(self) -> str:
        last = (self.until - timedelta(days=1)).date()
        if self.name == "day":
            return f"today ({self.since:%-d %b %Y}, UTC)"
        if self.name in ("month", "last-month"):
            return f"{self.since:%B %Y}"
        return f"the week of {self.since:%-d %b} to {last:%-d %b %Y}"


WINDOWS = ("day", "week", "month", "last-month")


def window(name: str, now: datetime) -> Window:
    wanted = name.strip().lower()
    wanted = {"today": "day", "this-month": "month", "lastmonth": "last-month", "last_month": "last-month"}.get(wanted, wanted)
    if wanted == "last-month":
        end = period_start(Period.MONTHLY, now)
        return Window(wanted, period_start(Period.MONTHLY, end - timedelta(days=1)), end, now)
    period = {"day": Period.DAILY, "week": Period.WEEKLY, "month": Period.MONTHLY}.get(wanted)
    if period is None:
        raise InvalidInput(f"`{name[:20]}` is not a period: use day, week, month or last-month.")
    return Window(wanted, period_start(period, now), next_period_start(period, now), now)


def month_window(month: date, now: datetime) -> Window:
    from datetime import timezone

    start = datetime(month.year, month.month, 1, tzinfo=timezone.utc)
    return Window("month", start, next_period_start(Period.MONTHLY, start), now)


@dataclass(frozen=True)
class Slice:
    label: str
    amount_micros: int
    events: int
    prompt_tokens: int
    completion_tokens: int
    member: str | None = None  # the Slack user (or e-mail) a member or key slice belongs to


def _label_columns(by: By):
    if by is By.PROJECT:
        return (func.coalesce(Project.slug, NO_PROJECT),)
    if by is By.MEMBER:
        return (func.coalesce(Member.slack_user_id, Member.email, "unknown"),)
    if by is By.KEY:
        return (ApiKey.name, ApiKey.prefix, func.coalesce(Member.slack_user_id, Member.email, "unknown"))
    return (SpendHour.model,)


def _joined(stmt, by: By, member_id: int | None):
    if by is By.PROJECT:
        stmt = stmt.outerjoin(Project, Project.id == SpendHour.project_id)
    if by in (By.MEMBER, By.KEY) or member_id is not None:
        stmt = stmt.join(ApiKey, ApiKey.id == SpendHour.key_id)
    if by in (By.MEMBER, By.KEY):
        stmt = stmt.join(Member, Member.id == ApiKey.member_id)
    if member_id is not None:
        stmt = stmt.where(ApiKey.member_id == member_id)
    return stmt


def breakdown(s: Session, workspace_id: int, since: datetime, until: datetime, by: By, *, member_id: int | None = None, project_id: int | None = None) -> list[Slice]:
    """Spend in [since, until) split by ``by``, largest first; ``member_id``: only that member's keys."""
    labels = _label_columns(by)
    sums = (func.sum(SpendHour.amount_micros), func.sum(SpendHour.events), func.sum(SpendHour.prompt_tokens), func.sum(SpendHour.completion_tokens))
    stmt = _joined(select(*labels, *sums).select_from(SpendHour), by, member_id)
    stmt = stmt.where(SpendHour.workspace_id == workspace_id, SpendHour.hour >= since, SpendHour.hour < until)
    if project_id is not None:
        stmt = stmt.where(SpendHour.project_id == project_id)
    stmt = stmt.group_by(*labels)
    out = []
    for row in s.execute(stmt):
        amount, events, prompt, completion = (int(v or 0) for v in row[-4:])
        if by is By.KEY:
            name, prefix, owner = row[0], row[1], row[2]
            out.append(Slice(_series_label(by, [name, prefix]), amount, events, prompt, completion, member=owner))
        elif by is By.MEMBER:
            out.append(Slice(row[0], amount, events, prompt, completion, member=row[0]))
        elif by is By.MODEL:
            out.append(Slice(_series_label(by, [row[0]]), amount, events, prompt, completion))
        else:
            out.append(Slice(row[0], amount, events, prompt, completion))
    return sorted(out, key=lambda r: (-r.amount_micros, r.label))


def daily(s: Session, workspace_id: int, w: Window, by: By = By.PROJECT, *, member_id: int | None = None, project_id: int | None = None) -> dict[str, list[int]]:
    """Spend per label and UTC day from the window's first day to its last day under way, for a chart."""
    labels = _label_columns(by)[:2]  # a key's name and prefix: two keys may share a name
    hours = select(SpendHour.hour, SpendHour.amount_micros, *labels).select_from(SpendHour)
    hours = _joined(hours, by, member_id).where(SpendHour.workspace_id == workspace_id, SpendHour.hour >= w.since, SpendHour.hour < w.until)
    if project_id is not None:
        hours = hours.where(SpendHour.project_id == project_id)
    first = w.since.date()
    last = min(w.until - timedelta(microseconds=1), max(w.now, w.since)).date()
    width = (last - first).days + 1
    out: dict[str, list[int]] = {}
    # Hours are summed into days here rather than by the database: the two databases name
    # "the day of" differently, and a month is at most 744 hours a label.
    for hour, amount, *named in s.execute(hours):
        n = (hour.date() - first).days
        if 0 <= n < width:
            out.setdefault(_series_label(by, named), [0] * width)[n] += amount
    return out


def _series_label(by: By, named: list) -> str:
    """The label a series of ``daily`` goes by: the same one ``breakdown`` gives its row."""
    if by is By.KEY:
        return f"{named[0]} ({named[1]}…)"
    return named[0] or (NO_MODEL if by is By.MODEL else NO_PROJECT)


def hourly(s: Session, workspace_id: int, since: datetime, until: datetime) -> list[tuple[datetime, int, int | None, int]]:
    """(hour, key id, project id, amount) rows of one workspace, for the spike check."""
    stmt = (
        select(SpendHour.hour, SpendHour.key_id, SpendHour.project_id, func.sum(SpendHour.amount_micros))
        .where(SpendHour.workspace_id == workspace_id, SpendHour.hour >= since, SpendHour.hour < until)
        .group_by(SpendHour.hour, SpendHour.key_id, SpendHour.project_id)
    )
    return [(hour, key_id, project_id, int(amount or 0)) for hour, key_id, project_id, amount in s.execute(stmt)]
