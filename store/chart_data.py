"""What a spend chart shows, read from the store: a period's daily spend split one way, the
budgets and cap that bound it, and where the period is heading.

Drawing is bot.charts' business; this module only gathers the figures, so the web process
(App Home's alt text) and the workers (the pictures) describe the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Project, Workspace
from store.periods import period_start
from store.spend_series import By, Window, daily
from store.types import Period

#: how many days of spend the forecast's rate is taken over
RATE_DAYS = 7
#: the period a window spans, for the budgets and cap drawn with it
_PERIOD_OF = {"day": Period.DAILY, "week": Period.WEEKLY, "month": Period.MONTHLY, "last-month": Period.MONTHLY}


@dataclass(frozen=True)
class PeriodSpend:
    """The figures of one chart, in the shape bot.charts.SpendChart takes."""

    title: str
    start: date
    end: date  # the day after the last day
    today: date
    daily: dict[str, list[int]]
    limits: list[tuple[str, int]] = field(default_factory=list)
    forecast_micros: int | None = None

    @property
    def total_micros(self) -> int:
        return sum(sum(days) for days in self.daily.values())


def period_spend(s: Session, workspace_id: int, w: Window, by: By = By.PROJECT, *, member_id: int | None = None, project_id: int | None = None, title: str | None = None) -> PeriodSpend:
    """A window's spend by day and ``by``; the budgets and cap of the window's period; the forecast if it is under way."""
    ws = s.get(Workspace, workspace_id)
    series = daily(s, workspace_id, w, by, member_id=member_id, project_id=project_id)
    end = w.until.date() if w.until.time() == datetime.min.time() else w.until.date() + timedelta(days=1)
    today = min(max(w.now, w.since), w.until - timedelta(microseconds=1)).date()
    limits = [] if member_id is not None else _limits(s, ws, _PERIOD_OF.get(w.name), project_id)
    spent = sum(sum(days) for days in series.values())
    # A period under way heads somewhere; a rolling window (the last N days) ends now and has no end to forecast.
    forecast = _forecast(series, spent, w, today, end) if w.name in _PERIOD_OF and w.since <= w.now < w.until else None
    return PeriodSpend(title or f"{ws.slug} · spend by {by.value}, {w.describe()}", w.since.date(), end, today, series, limits, forecast)


def _limits(s: Session, ws: Workspace, period: Period | None, project_id: int | None) -> list[tuple[str, int]]:
    if period is None:
        return []
    out = []
    if ws.cap_micros is not None and ws.cap_period is period and project_id is None:
        out.append(("spending cap", ws.cap_micros))
    budgeted = select(Project.slug, Project.budget_micros).where(Project.workspace_id == ws.id, Project.budget_micros.is_not(None), Project.budget_period == period)
    if project_id is not None:
        budgeted = budgeted.where(Project.id == project_id)
    out += [(f"{slug} budget", micros) for slug, micros in s.execute(budgeted.order_by(Project.budget_micros.desc()).limit(6))]
    return out


def _forecast(series: dict[str, list[int]], spent: int, w: Window, today: date, end: date) -> int | None:
    """Spent so far plus the last days' rate over the days left; today counts for the part gone by."""
    if not series:
        return None
    days = len(next(iter(series.values())))
    totals = [sum(v[n] for v in series.values()) for n in range(days)]
    taken = totals[-RATE_DAYS:]
    # At least a day: on the 1st, a dollar spent by half past midnight is not $48 a day.
    elapsed = max(1.0, (len(taken) - 1) + (w.now - period_start(Period.DAILY, w.now)).total_seconds() / 86400)
    if not any(taken):
        return spent
    rate = sum(taken) / elapsed
    left = (datetime.combine(end, datetime.min.time(), tzinfo=w.now.tzinfo) - w.now).total_seconds() / 86400
    return spent + int(rate * max(0.0, left))
