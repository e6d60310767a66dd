"""Reading the running spend totals: what a project, workspace or key has spent this period.

Ingest moves the totals (store.ingest); everything that compares spend with a budget,
a cap or a key's limit reads them here, one row per (scope, id, period) at a time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import SpendTotal
from store.periods import period_start
from store.types import Period, Scope, utcnow


def spent(s: Session, scope: Scope, scope_id: int, period: Period, now: datetime | None = None) -> int:
    start = period_start(period, now or utcnow())
    return s.scalar(
        select(SpendTotal.amount_micros).where(
            SpendTotal.scope == scope, SpendTotal.scope_id == scope_id, SpendTotal.period == period, SpendTotal.period_start == start
        )
    ) or 0


def current_totals(s: Session, scope: Scope, wanted: list[tuple[int, Period]], now: datetime) -> dict[tuple[int, Period], int]:
    """Running totals for many (id, period) pairs in one query per period."""
    out: dict[tuple[int, Period], int] = {}
    by_period: dict[Period, list[int]] = {}
    for scope_id, period in wanted:
        by_period.setdefault(period, []).append(scope_id)
    for period, ids in by_period.items():
        start = period_start(period, now)
        for chunk in (ids[i : i + 5000] for i in range(0, len(ids), 5000)):
            rows = s.execute(
                select(SpendTotal.scope_id, SpendTotal.amount_micros).where(
                    SpendTotal.scope == scope, SpendTotal.period == period, SpendTotal.period_start == start, SpendTotal.scope_id.in_(chunk)
                )
            )
            out.update({(scope_id, period): amount for scope_id, amount in rows})
    return out
