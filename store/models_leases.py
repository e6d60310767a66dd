"""The table of keys' leases on time (store/leases.py): which warnings and which end were announced.

A key's lease is its ``api_keys.expires_at``; this table only remembers what was said about
it, so a clock job that runs every minute announces each warning and each end once. (Not
the quota lease of store/quota.py, which is money.) Kept apart from store/models.py; alembic's
env.py and the tests import this module so its table is part of ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base


class KeyLease(Base):
    """One row per leased key, made the first time the clock or an extension looks at it.

    ``ends_at`` is the end the notices below are about: when the key's ``expires_at`` moves
    (an extension), the row is reset to the new end, and its warnings re-arm.
    """

    __tablename__ = "key_leases"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), primary_key=True)
    # so a commit that touches the row tells that workspace's gateway caches (store.db)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    ends_at: Mapped[datetime]
    set_at: Mapped[datetime]  # when this end was set: a warning further ahead than that is not due
    length_minutes: Mapped[int] = mapped_column(Integer)  # the lease as first given: what "Extend" adds
    warned_day_at: Mapped[datetime | None]
    warned_hour_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]  # the end announced (audited key.expire, the owner told)
