"""Budget alerts beyond ingest: the periodic threshold check and the burn-rate forecast."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.ingest import IngestResult
from store.models import Project, SpendTotal, Workspace
from store.money import format_money
from store.periods import period_start
from store.standing import budget_spent_reason, pause_project_row, pause_workspace_row, raised
from store.thresholds import record_crossings
from store.totals import spent
from store.types import BudgetKind, Period, ProjectStatus, Scope, WorkspaceStatus, utcnow

FORECAST_DAYS = 7


def evaluate_thresholds(s: Session, now: datetime | None = None) -> IngestResult:
    """Announce thresholds reached other than by spend (a lowered budget, new thresholds), and pause what is spent.

    Ingest announces crossings as they happen; this catches the rest. ``alerts_sent``
    keeps every threshold to once per period whichever path gets there first.
    """
    now = now or utcnow()
    result = IngestResult()
    workspaces = list(s.scalars(select(Workspace).where(Workspace.status != WorkspaceStatus.DELETED)))
    for ws in workspaces:
        thresholds = list(ws.alert_thresholds or [])
        projects = list(s.scalars(select(Project).where(Project.workspace_id == ws.id, Project.budget_micros.is_not(None))))
        extra = raised(s, [p.id for p in projects], now)
        for proj in projects:
            used = spent(s, Scope.PROJECT, proj.id, proj.budget_period, now)
            start = period_start(proj.budget_period, now)
            limit = proj.budget_micros + extra.get(proj.id, 0)  # the limit in force: the budget and its raises
            record_crossings(s, result.crossings, ws.id, BudgetKind.PROJECT, proj.id, proj.slug, 0, used, limit, proj.budget_period, start, thresholds)
            if used >= limit and proj.status is ProjectStatus.ACTIVE:
                if pause_project_row(s, "system:clock", ws, proj, budget_spent_reason(proj.budget_micros, limit), by="budget"):
                    result.paused.append(f"project:{proj.slug}")
        if ws.cap_micros is not None:
            used = spent(s, Scope.WORKSPACE, ws.id, ws.cap_period, now)
            record_crossings(s, result.crossings, ws.id, BudgetKind.CAP, ws.id, ws.slug, 0, used, ws.cap_micros, ws.cap_period, period_start(ws.cap_period, now), thresholds)
            if used >= ws.cap_micros and ws.status is WorkspaceStatus.ACTIVE and pause_workspace_row(s, "system:clock", ws, "cap"):
                result.paused.append(f"workspace:{ws.slug}")
    return result


@dataclass(frozen=True)
class Forecast:
    daily_rate_micros: int  # average spend per day over the window
    days_left: float | None  # None when nothing is being spent

    def describe(self) -> str:
        if self.days_left is None:
            return "Nothing was spent in the last 7 days."
        if self.days_left <= 0:
            return "It is spent."
        rate = format_money(round(self.daily_rate_micros, -4))  # to the cent: a forecast is not an invoice
        if self.days_left < 1:
            return f"At the last 7 days' rate ({rate}/day) this runs out within a day."
        days = round(self.days_left)
        return f"At the last 7 days' rate ({rate}/day) this runs out in about {days} day{'s' if days != 1 else ''}."


def forecast(s: Session, kind: BudgetKind, budget_id: int, spent_micros: int, limit_micros: int, now: datetime | None = None) -> Forecast:
    """Burn rate from the daily totals of the last 7 days (today counted for the part of it gone by)."""
    now = now or utcnow()
    scope = Scope.PROJECT if kind is BudgetKind.PROJECT else Scope.WORKSPACE
    today = period_start(Period.DAILY, now)
    first = today - timedelta(days=FORECAST_DAYS - 1)
    total = sum(
        s.scalars(
            select(SpendTotal.amount_micros).where(
                SpendTotal.scope == scope,
                SpendTotal.scope_id == budget_id,
                SpendTotal.period == Period.DAILY,
                SpendTotal.period_start >= first,
                SpendTotal.period_start <= today,
            )
        )
    )
    elapsed_days = (FORECAST_DAYS - 1) + (now - today).total_seconds() / 86400
    return rate_forecast(total, elapsed_days, spent_micros, limit_micros)


def rate_forecast(window_spend: int, elapsed_days: float, spent_micros: int, limit_micros: int) -> Forecast:
    if window_spend <= 0 or elapsed_days <= 0:
        return Forecast(0, None)
    rate = window_spend / elapsed_days
    return Forecast(int(rate), (limit_micros - spent_micros) / rate)
