"""The monthly statements that have been closed (store/statements.py): when each closed, and what it showed.

Kept apart from store/models.py (which stays readable in one sitting); alembic's env.py,
the store's statements and the tests import this module so its table is part of
``Base.metadata``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, Money


class StatementRow(Base):
    """A closed statement. Its figures are rebuilt from ``closed_at`` by the statement's rule
    whenever it is asked for again; the totals kept here are what it showed when it was
    posted, so a rebuild that disagrees is noticed (and said) rather than shown as if nothing changed."""

    __tablename__ = "statements"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  # the month's first day
    closed_at: Mapped[datetime]
    closed_by: Mapped[str] = mapped_column(String(80))
    spend_micros: Mapped[int] = mapped_column(Money)
    spend_events: Mapped[int] = mapped_column(BigInteger)
    corrections_micros: Mapped[int] = mapped_column(Money)
    correction_events: Mapped[int] = mapped_column(BigInteger)
    opening_micros: Mapped[int | None] = mapped_column(Money)  # None: the pool had not been funded
    topups_micros: Mapped[int] = mapped_column(Money)
    debits_micros: Mapped[int] = mapped_column(Money)  # the month's spend entries, negative
    closing_micros: Mapped[int | None] = mapped_column(Money)
    audit_events: Mapped[int] = mapped_column(Integer)
    # the cap and budgets in force when it closed: [[label, micro-dollars, period], …]
    limits: Mapped[list[Any]] = mapped_column(JSON, default=list)
