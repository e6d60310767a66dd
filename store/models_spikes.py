"""The tables of spike alerts (store/spikes.py): what was announced, and the Admins' mutes.

Kept apart from store/models.py (which stays readable in one sitting); alembic's env.py
and the tests import this module so its tables are part of ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, Money, _enum
from store.types import BigIntPK, Scope, utcnow


class SpikeAlert(Base):
    """A spend spike announced (store.spikes): per scope (a key or a project) and the complete hour
    whose check found it. No second alert for a scope within a day of the last one."""

    __tablename__ = "spike_alerts"
    __table_args__ = (Index("ix_spike_alerts_workspace_hour", "workspace_id", "hour"),)

    scope: Mapped[Scope] = mapped_column(_enum(Scope), primary_key=True)  # key | project
    scope_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)  # the hour's start (UTC)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    window: Mapped[str] = mapped_column(String(4))  # hour | day: which window spiked
    spent_micros: Mapped[int] = mapped_column(Money)
    usual_micros: Mapped[int] = mapped_column(Money)
    # announced in the alert of the key's project (same check), not in one of its own
    with_project_id: Mapped[int | None] = mapped_column(BigInteger)
    announced_at: Mapped[datetime] = mapped_column(default=utcnow)


class SpikeMute(Base):
    """An Admin silenced a key's spike alerts until ``until`` (the alert's button)."""

    __tablename__ = "spike_mutes"
    __table_args__ = (Index("ix_spike_mutes_key_until", "key_id", "until"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    until: Mapped[datetime]
    by_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
