"""Spend per hour, key and model: the rows breakdowns, charts and spike checks read (docs/design.md, "The store")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, Money


class SpendHour(Base):
    """Spend per hour, key and model: what breakdowns, charts, statements' splits and spike
    checks read, so none of them scans usage_events. Moved by ingest in the transaction
    that records the events (store.recording); ``model`` is "" where none was reported.
    The key names its member; ``project_id`` is the key's project when the spend came in.
    Every read names the workspace and a range of hours: the primary key serves them all,
    and no other index is kept for ingest to move (migration 0009).
    """

    __tablename__ = "spend_hours"

    workspace_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    key_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    model: Mapped[str] = mapped_column(String(120), primary_key=True, default="")
    project_id: Mapped[int | None] = mapped_column(BigInteger)
    amount_micros: Mapped[int] = mapped_column(Money, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
