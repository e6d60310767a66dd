"""Threshold alerts: a budget reaching one of its workspace's alert thresholds, announced once a period.

``alerts_sent`` keeps each threshold to once per budget and period, whichever path gets
there first: ingest as spend arrives (store.ingest), or the periodic check (store.alerts).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store import outbox
from store.models import AlertSent
from store.money import format_money
from store.types import ActionKind, BudgetKind, Period


@dataclass(frozen=True)
class Crossing:
    """A threshold of a budget reached for the first time this period."""

    workspace_id: int
    kind: BudgetKind
    budget_id: int
    name: str
    threshold: int
    spent_micros: int
    limit_micros: int
    period: Period

    def describe(self) -> str:
        what = {BudgetKind.PROJECT: f"project `{self.name}`", BudgetKind.CAP: f"the `{self.name}` spending cap", BudgetKind.CREDIT: "the credit pool"}[self.kind]
        return f"{what} has used {self.threshold}% ({format_money(self.spent_micros)} of {format_money(self.limit_micros)})"


def dialect_insert(s: Session):
    return postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert


def record_crossings(s: Session, crossings: list[Crossing], workspace_id, kind, budget_id, name, before, spent_after, limit, period, start, thresholds) -> None:
    """Record the thresholds ``spent_after`` reached that ``before`` had not; announce the highest one not announced yet."""
    if limit is None or limit <= 0:
        return
    # ≥, not >: spend that reaches a threshold exactly has reached it.
    crossed = [t for t in sorted(thresholds) if before * 100 < t * limit <= spent_after * 100]
    if not crossed:
        return
    insert = dialect_insert(s)
    rows = [
        {"budget_kind": kind, "budget_id": budget_id, "period_start": start, "threshold": t, "workspace_id": workspace_id, "spent_micros": spent_after, "limit_micros": limit}
        for t in crossed
    ]
    stmt = insert(AlertSent).on_conflict_do_nothing().returning(AlertSent.threshold)
    fresh = sorted(t for (t,) in s.execute(stmt, rows))
    if not fresh:
        return
    # One alert per batch and budget: the highest threshold crossed says it all.
    top = fresh[-1]
    crossing = Crossing(workspace_id, kind, budget_id, name, top, spent_after, limit, period)
    crossings.append(crossing)
    outbox.emit(
        s,
        ActionKind.POST_ALERT,
        workspace_id=workspace_id,
        payload={"kind": kind.value, "budget_id": budget_id, "name": name, "threshold": top, "thresholds": fresh, "spent_micros": spent_after, "limit_micros": limit, "period": period.value},
    )
