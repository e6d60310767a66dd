"""The table of temporary budget raises (store/raises.py).

A raise is a fact with an end: while ``starts_at <= now < ends_at`` its amount adds to
whatever budget its project has (store.standing.effective_budget). Nothing is set when it
starts or cleared when it ends; ``ended_at`` only records that its end was audited and
announced (store.raises.end_raises), so the clock announces each end once.

Kept apart from store/models.py (which stays readable in one sitting); alembic's env.py
and the tests import this module so its table is part of ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, Money
from store.types import BigIntPK, utcnow


class BudgetRaise(Base):
    """``amount_micros`` more for a project's budget from ``starts_at`` until ``ends_at``, granted on a request."""

    __tablename__ = "budget_raises"
    __table_args__ = (
        # What is in force for a project now: its raises ending after now.
        Index("ix_budget_raises_project_ends", "project_id", "ends_at"),
        # What the clock has still to announce as ended.
        Index("ix_budget_raises_unannounced", "ended_at", "ends_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    amount_micros: Mapped[int] = mapped_column(Money)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    granted_by: Mapped[str] = mapped_column(String(120))  # the approver's actor label
    reason: Mapped[str | None] = mapped_column(String(500))
    # when the clock audited and announced the end (None until then): an announcement, not a fact
    ended_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
