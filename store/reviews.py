"""Access reviews: each quarter (and when an Admin asks) the Admins keep, revoke or hand over every access.

A review lists the workspace's active members and its live keys, each with its last use
(the last hour with usage in ``spend_hours``, the hourly rows every report reads, rather
than a scan of the events) and its spend over the review's period: the quarter just
ended for the clock's review, opened on the first day of the next one; the quarter so far
for one asked for. Admins decide each item — Keep; Revoke (a key through the usual revoke
path, a member through removal, which revokes their keys); Transfer (a key to another
member, store.key_transfer) — each decision audited with the change it makes. A key
revoked or a member gone outside the review needs no decision. When nothing is left to
decide the review closes: ``review.complete`` with the counts, and the CSV to the Admins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import Conflict, InvalidInput, NotFound
from store.key_transfer import transfer_key
from store.keys import revoke_key
from store.members import remove_member
from store.models import ApiKey, Member, Workspace
from store.models_reviews import AccessReview, ReviewItem
from store.models_spend import SpendHour
from store.permissions import Actor, Permission, authorize, load_workspace
from store.types import ActionKind, KeyStatus, MemberStatus, WorkspaceStatus, utcnow

DECISIONS = ("keep", "revoke", "transfer")


def quarter_start(at: datetime) -> datetime:
    at = at.astimezone(timezone.utc)
    return datetime(at.year, 3 * ((at.month - 1) // 3) + 1, 1, tzinfo=timezone.utc)


def previous_quarter_start(start: datetime) -> datetime:
    return start.replace(year=start.year - 1, month=10) if start.month == 1 else start.replace(month=start.month - 3)


def quarter_label(start: datetime) -> str:
    return f"{start.year}-Q{(start.month - 1) // 3 + 1}"


def reviewed_quarter(now: datetime) -> tuple[str, datetime, datetime]:
    """The quarter the clock's review looks back at: the one that ended when this one began."""
    this = quarter_start(now)
    last = previous_quarter_start(this)
    return quarter_label(last), last, this


def due_quarterly(s: Session, now: datetime | None = None) -> tuple[str, list[int]]:
    """The workspaces (not deleted) that lived through last quarter and have no review of it yet.

    Asked daily, so a clock that was down on the first day of the quarter catches up the next.
    """
    label, _, this = reviewed_quarter(now or utcnow())
    reviewed = select(AccessReview.workspace_id).where(AccessReview.quarter == label)
    stmt = select(Workspace.id).where(Workspace.status != WorkspaceStatus.DELETED, Workspace.created_at < this, Workspace.id.not_in(reviewed))
    return label, list(s.scalars(stmt.order_by(Workspace.id)))


def open_review(s: Session, actor: Actor, workspace_id: int, *, quarterly: bool = False) -> AccessReview | None:
    """Open a review. ``quarterly`` (the clock): of last quarter, once per workspace and quarter (None
    when it exists). Otherwise (an Admin): of this quarter so far, refused while another is open."""
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.REVIEW_ACCESS, resource=f"workspace:{ws.slug}", attempted="review.open")
    now = utcnow()
    if quarterly:
        label, since, until = reviewed_quarter(now)
        if s.scalars(select(AccessReview.id).where(AccessReview.workspace_id == ws.id, AccessReview.quarter == label)).first():
            return None
    else:
        label, since, until = None, quarter_start(now), now
        still = s.scalars(select(AccessReview).where(AccessReview.workspace_id == ws.id, AccessReview.closed_at.is_(None)).order_by(AccessReview.id)).first()
        if still is not None:
            left = len(undecided(s, still))
            raise Conflict(
                f"Review #{still.id} of `{ws.slug}`, opened {still.opened_at:%-d %b %Y}, is still open with {left} item(s) undecided."
                " Decide them in the messages Purser sent the Admins; a new review can be opened once it is complete."
            )
    review = AccessReview(workspace_id=ws.id, quarter=label, since=since, until=until, opened_by=actor.label, opened_at=now)
    s.add(review)
    s.flush()
    last_use, spend = _use_by_key(s, ws.id, since, until)
    owners = {key_id: owner for key_id, owner in s.execute(select(ApiKey.id, ApiKey.member_id).where(ApiKey.workspace_id == ws.id))}
    members = list(s.scalars(select(Member).where(Member.workspace_id == ws.id, Member.status == MemberStatus.ACTIVE).order_by(Member.id)))
    for m in members:
        theirs = [k for k, owner in owners.items() if owner == m.id]
        used = [last_use[k] for k in theirs if k in last_use]
        s.add(ReviewItem(review_id=review.id, kind="member", member_id=m.id, last_used_at=max(used) if used else None, spend_micros=sum(spend.get(k, 0) for k in theirs)))
    # a key whose lease has ended is refused everywhere already: nothing to keep, revoke or hand over
    ended = and_(ApiKey.expires_at.is_not(None), ApiKey.expires_at <= utcnow())
    live = list(s.scalars(select(ApiKey).where(ApiKey.workspace_id == ws.id, ApiKey.status != KeyStatus.REVOKED, ~ended).order_by(ApiKey.id)))
    for k in live:
        s.add(ReviewItem(review_id=review.id, kind="key", member_id=k.member_id, key_id=k.id, last_used_at=last_use.get(k.id), spend_micros=spend.get(k.id, 0)))
    s.flush()
    audit.record(
        s, workspace_id=ws.id, actor=actor.label, action="review.open", resource=f"review:{review.id}",
        details={"quarter": label, "since": since.isoformat(), "until": until.isoformat(), "members": len(members), "keys": len(live)},
    )  # fmt: skip
    outbox.emit(s, ActionKind.POST_REVIEW, workspace_id=ws.id, payload={"review_id": review.id})
    return review


def _use_by_key(s: Session, workspace_id: int, since: datetime, until: datetime) -> tuple[dict[int, datetime], dict[int, int]]:
    """Each key's last hour with usage (ever) and its spend in [since, until): one grouped read of the workspace's hours."""
    in_period = case((and_(SpendHour.hour >= since, SpendHour.hour < until), SpendHour.amount_micros), else_=0)
    rows = s.execute(select(SpendHour.key_id, func.max(SpendHour.hour), func.sum(in_period)).where(SpendHour.workspace_id == workspace_id).group_by(SpendHour.key_id))
    last_use, spend = {}, {}
    for key_id, last, amount in rows:
        last_use[key_id] = last if last.tzinfo else last.replace(tzinfo=timezone.utc)  # max() over a naive-stored column comes back naive
        spend[key_id] = int(amount or 0)
    return last_use, spend


def settled_elsewhere(s: Session, item: ReviewItem) -> str | None:
    """Why an undecided item needs no decision any more, or None."""
    if item.kind == "key":
        key = s.get(ApiKey, item.key_id)
        if key.status is KeyStatus.REVOKED:
            return f"revoked outside the review ({key.status_reason or 'revoked'})"
        return "its lease ended" if key.expires_at is not None and key.expires_at <= utcnow() else None
    member = s.get(Member, item.member_id)
    return f"no longer a member ({member.status.value})" if member.status is not MemberStatus.ACTIVE else None


def undecided(s: Session, review: AccessReview) -> list[ReviewItem]:
    items = s.scalars(select(ReviewItem).where(ReviewItem.review_id == review.id, ReviewItem.decision.is_(None)).order_by(ReviewItem.id))
    return [i for i in items if settled_elsewhere(s, i) is None]


@dataclass(frozen=True)
class Decided:
    item_id: int
    review_id: int
    decision: str
    closed: bool  # this decision was the last one the review waited for


def _locked_item(s: Session, item_id: int) -> tuple[ReviewItem, AccessReview]:
    item = s.get(ReviewItem, item_id)
    if item is None:
        raise NotFound(f"There is no review item #{item_id}.")
    # The review's row orders its decisions: the one that leaves nothing undecided closes it, once.
    review = s.scalars(select(AccessReview).where(AccessReview.id == item.review_id).with_for_update().execution_options(populate_existing=True)).one()
    s.refresh(item)
    return item, review


def check_decider(s: Session, actor: Actor, item_id: int) -> ReviewItem:
    """May ``actor`` decide this item now? Raises what ``decide_item`` would; the Transfer form asks before it opens."""
    item = s.get(ReviewItem, item_id)
    if item is None:
        raise NotFound(f"There is no review item #{item_id}.")
    review = s.get(AccessReview, item.review_id)
    ws = load_workspace(s, review.workspace_id)
    authorize(s, actor, ws, Permission.REVIEW_ACCESS, resource=f"review:{review.id}", attempted="review.decide")
    if item.decision is not None:
        who = (item.decided_by or "").removeprefix("slack:")
        raise Conflict(f"Item #{item.id} was already decided: {item.decision}.", decided_by=who or None, decided_at=item.decided_at, state=item.decision)
    gone = settled_elsewhere(s, item)
    if gone is not None:
        what = "That key was" if item.kind == "key" else "That person is"
        raise Conflict(f"{what} {gone}: nothing is left to decide, and the review counts it as done.")
    return item


def decide_item(s: Session, actor: Actor, item_id: int, decision: str, *, to_member_id: int | None = None) -> Decided:
    """Keep, revoke or transfer one item (Admins only); the change and ``review.decide`` commit together."""
    decision = (decision or "").lower()
    if decision not in DECISIONS:
        raise InvalidInput(f"“{decision[:20]}” is not a review decision: keep, revoke or transfer.")
    item, review = _locked_item(s, item_id)
    if review.closed_at is not None and item.decision is None:
        raise Conflict(f"Review #{review.id} closed at {review.closed_at:%Y-%m-%d %H:%M} UTC; nothing in it can be decided any more.")
    check_decider(s, actor, item_id)
    if decision == "transfer" and item.kind != "key":
        raise InvalidInput("Only a key can be handed to someone else; keep or revoke a member.")
    if decision == "transfer" and to_member_id is None:
        raise InvalidInput("Say who gets the key: pick a member of the workspace.")
    why = {"review": review.id}
    if decision == "revoke" and item.kind == "key":
        revoke_key(s, actor, item.key_id, reason=f"access review #{review.id}")
    elif decision == "revoke":
        remove_member(s, actor, review.workspace_id, item.member_id)  # their keys are revoked with them
    elif decision == "transfer":
        transfer_key(s, actor, item.key_id, to_member_id, details=why)
    item.decision, item.decided_by, item.decided_at = decision, actor.label, utcnow()
    item.transfer_to_id = to_member_id if decision == "transfer" else None
    subject = f"key:{item.key_id}" if item.kind == "key" else f"member:{s.get(Member, item.member_id).label}"
    audit.record(s, workspace_id=review.workspace_id, actor=actor.label, action="review.decide", resource=f"review:{review.id}", details={"item": item.id, "subject": subject, "decision": decision})
    s.flush()
    closed = close_if_settled(s, review)
    outbox.emit(s, ActionKind.POST_REVIEW, workspace_id=review.workspace_id, payload={"review_id": review.id, "item_id": item.id})
    return Decided(item.id, review.id, decision, closed)


def close_if_settled(s: Session, review: AccessReview) -> bool:
    """Close a review (locked by the caller) with nothing left to decide: ``review.complete`` and the CSV's action."""
    if review.closed_at is not None or undecided(s, review):
        return False
    items = list(s.scalars(select(ReviewItem).where(ReviewItem.review_id == review.id)))
    counts = {d: sum(1 for i in items if i.decision == d) for d in DECISIONS}
    review.closed_at = utcnow()
    audit.record(
        s, workspace_id=review.workspace_id, actor="system:review", action="review.complete", resource=f"review:{review.id}",
        details={"items": len(items), **counts, "settled_elsewhere": len(items) - sum(counts.values())},
    )  # fmt: skip
    outbox.emit(s, ActionKind.REVIEW_COMPLETE, workspace_id=review.workspace_id, payload={"review_id": review.id})
    return True


def remind_reviews(s: Session, now: datetime | None = None) -> list[int]:
    """Once a UTC day, from the day after it opened, each open review with items undecided reminds its Admins.

    A review whose last items were settled outside it (keys revoked, members gone) closes here.
    """
    now = now or utcnow()
    today = f"{now:%Y-%m-%d}"
    stmt = (
        select(AccessReview.id)
        .join(Workspace, Workspace.id == AccessReview.workspace_id)
        .where(AccessReview.closed_at.is_(None), Workspace.status != WorkspaceStatus.DELETED)
        .order_by(AccessReview.id)
    )
    reminded = []
    for review_id in list(s.scalars(stmt)):
        review = s.scalars(select(AccessReview).where(AccessReview.id == review_id).with_for_update()).one()
        if review.closed_at is not None or close_if_settled(s, review):
            continue
        if review.reminded_on == today or f"{review.opened_at:%Y-%m-%d}" >= today:
            continue
        review.reminded_on = today
        left = len(undecided(s, review))
        audit.record(s, workspace_id=review.workspace_id, actor="system:clock", action="review.remind", resource=f"review:{review.id}", details={"undecided": left})
        outbox.emit(s, ActionKind.REMIND_REVIEW, workspace_id=review.workspace_id, payload={"review_id": review.id, "day": today})
        reminded.append(review.id)
    return reminded


def transfer_to_user(s: Session, actor: Actor, item_id: int, slack_user_id: str) -> Decided:
    """Transfer, the new owner named by their Slack user (the Transfer form's pick)."""
    item = check_decider(s, actor, item_id)
    review = s.get(AccessReview, item.review_id)
    ws = load_workspace(s, review.workspace_id)
    to = s.scalars(select(Member).where(Member.workspace_id == ws.id, Member.slack_user_id == (slack_user_id or ""), Member.status == MemberStatus.ACTIVE)).one_or_none()
    if to is None:
        raise InvalidInput(f"The person you picked is not a member of `{ws.slug}`, so the key cannot be handed to them. Pick a member, or invite them first.")
    return decide_item(s, actor, item_id, "transfer", to_member_id=to.id)
