"""The tables of access reviews (store/reviews.py): a review of one workspace, and its items.

Kept apart from store/models.py (which stays readable in one sitting); alembic's env.py
and the tests import this module so its tables are part of ``Base.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, Money
from store.types import BigIntPK, utcnow


class AccessReview(Base):
    """One look by a workspace's Admins at who holds access and which keys live.

    ``quarter`` ("2027-Q1") is set on the clock's quarterly review only, and is unique per
    workspace: a clock that runs its job twice opens it once. A review asked for in Slack
    has none. ``since``/``until`` bound the spend its items show.
    """

    __tablename__ = "access_reviews"
    __table_args__ = (UniqueConstraint("workspace_id", "quarter"), Index("ix_access_reviews_open", "closed_at", "workspace_id"))

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id"))
    quarter: Mapped[str | None] = mapped_column(String(7))
    since: Mapped[datetime]
    until: Mapped[datetime]
    opened_by: Mapped[str] = mapped_column(String(80))  # the actor's label
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the UTC day the Admins were last reminded of undecided items: one reminder a day at most
    reminded_on: Mapped[str | None] = mapped_column(String(10))
    closed_at: Mapped[datetime | None]


class ReviewItem(Base):
    """A member or a key under review, as it stood when the review opened, and what an Admin decided.

    ``decision``: keep | revoke | transfer, or None while undecided. A key revoked (or a
    member removed) outside the review after it opened needs no decision: it counts as
    settled, and the review's CSV says so.
    """

    __tablename__ = "review_items"
    __table_args__ = (Index("ix_review_items_review", "review_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("access_reviews.id"))
    kind: Mapped[str] = mapped_column(String(10))  # member | key
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))  # the member, or the key's owner then
    key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"))
    last_used_at: Mapped[datetime | None]  # the start of the last hour with usage (spend_hours)
    spend_micros: Mapped[int] = mapped_column(Money, default=0)  # in the review's since..until
    decision: Mapped[str | None] = mapped_column(String(10))
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None]
    transfer_to_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
