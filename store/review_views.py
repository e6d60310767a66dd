"""What an access review shows (store/reviews.py): read by the workers that post it and the bot that answers its buttons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.errors import NotFound
from store.models import ApiKey, Member, Workspace
from store.models_reviews import AccessReview, ReviewItem
from store.reviews import settled_elsewhere
from store.types import MemberStatus, Role


@dataclass(frozen=True)
class ItemView:
    id: int
    kind: str  # member | key
    member: str  # the member's Slack user id (or label); for a key, its owner when the review opened
    role: str
    key_name: str | None
    key_prefix: str | None
    last_used_at: datetime | None
    spend_micros: int
    decision: str | None  # keep | revoke | transfer
    decided_by: str | None  # a Slack user id
    decided_at: datetime | None
    transfer_to: str | None  # a Slack user id
    settled: str | None  # why no decision is needed any more (revoked or gone outside the review)

    @property
    def open(self) -> bool:
        return self.decision is None and self.settled is None


@dataclass(frozen=True)
class ReviewView:
    id: int
    workspace_id: int
    workspace: str
    quarter: str | None
    since: datetime
    until: datetime
    opened_at: datetime
    closed_at: datetime | None
    items: list[ItemView]

    @property
    def undecided(self) -> int:
        return sum(1 for i in self.items if i.open)


def _slack_id(label: str | None) -> str | None:
    return label.removeprefix("slack:") if label and label.startswith("slack:") else label


def review_view(s: Session, review_id: int) -> ReviewView:
    review = s.get(AccessReview, review_id)
    if review is None:
        raise NotFound(f"There is no access review #{review_id}.")
    ws = s.get(Workspace, review.workspace_id)
    items = []
    for item in s.scalars(select(ReviewItem).where(ReviewItem.review_id == review.id).order_by(ReviewItem.id)):
        member = s.get(Member, item.member_id)
        key = s.get(ApiKey, item.key_id) if item.key_id else None
        to = s.get(Member, item.transfer_to_id) if item.transfer_to_id else None
        items.append(
            ItemView(
                item.id, item.kind, member.label, member.role.title, key.name if key else None, key.prefix if key else None,
                item.last_used_at, item.spend_micros, item.decision, _slack_id(item.decided_by), item.decided_at,
                to.label if to else None, None if item.decision else settled_elsewhere(s, item),
            )
        )  # fmt: skip
    return ReviewView(review.id, ws.id, ws.slug, review.quarter, review.since, review.until, review.opened_at, review.closed_at, items)


def review_admins(s: Session, workspace_id: int) -> list[str]:
    """Who gets the review: the workspace's active Admins with a Slack account."""
    stmt = select(Member.slack_user_id).where(Member.workspace_id == workspace_id, Member.role == Role.ADMIN, Member.status == MemberStatus.ACTIVE, Member.slack_user_id.is_not(None))
    return list(s.scalars(stmt.order_by(Member.id)))


@dataclass(frozen=True)
class TransferView:
    key_name: str
    key_prefix: str
    workspace: str


def transfer_view(s: Session, key_id: int) -> TransferView:
    key = s.get(ApiKey, key_id)
    return TransferView(key.name, key.prefix, s.get(Workspace, key.workspace_id).slug)


def item_subject(s: Session, item_id: int) -> tuple[str | None, str]:
    """The key an item is about (None for a member) and its workspace: what the Transfer form names."""
    item = s.get(ReviewItem, item_id)
    if item is None:
        raise NotFound(f"There is no review item #{item_id}.")
    key = s.get(ApiKey, item.key_id) if item.key_id else None
    return (key.name if key else None), s.get(Workspace, s.get(AccessReview, item.review_id).workspace_id).slug
