"""Where Purser's Slack messages live: a retried post edits the message instead of posting twice."""

from __future__ import annotations

from typing import Callable

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import SlackMessage
from store.types import utcnow


#: the ts of a message whose post has begun and not yet been answered (or whose poster died before it heard)
POSTING = ""


def find_message(s: Session, ref: str) -> SlackMessage | None:
    return s.get(SlackMessage, ref)


def reserve_message(s: Session, ref: str, channel: str) -> bool:
    """Note, and commit, that ``ref`` is about to be posted in ``channel`` — unless it is known
    already. True when this call noted it."""
    if s.get(SlackMessage, ref) is not None:
        return False
    s.add(SlackMessage(ref=ref, channel=channel, ts=POSTING))
    try:
        s.commit()
        return True
    except IntegrityError:  # another process noted it first: theirs stands
        s.rollback()
        return False


def hold_message(s: Session, ref: str) -> SlackMessage:
    """The message's row, locked until the caller commits, so one process at a time posts or edits it."""
    return s.scalars(select(SlackMessage).where(SlackMessage.ref == ref).with_for_update()).one()


def hold_known(s: Session, ref: str) -> SlackMessage | None:
    """The message's row if it is known, locked until the caller commits (``hold_message``); None for a ref never reserved."""
    return s.scalars(select(SlackMessage).where(SlackMessage.ref == ref).with_for_update()).one_or_none()


def hold_or_reserve(s: Session, ref: str, channel: str | Callable[[], str]) -> tuple[SlackMessage, bool]:
    """The message's row, locked until the caller commits (``hold_message``), and whether this call reserved it.

    A known message costs one locking SELECT. A new one is noted, and committed, as about
    to be posted in ``channel`` (``reserve_message``) before it is locked. When
    ``channel`` is a function it is called only for a new message, with no transaction
    open: finding a DM's channel is a call to Slack.

    Every post is reserved before it is sent, so a ref this call reserved has never been
    posted: its poster need not search the channel for an interrupted earlier attempt.
    """
    row = hold_known(s, ref)
    if row is not None:
        return row, False
    if callable(channel):
        s.rollback()
        channel = channel()
    reserved = reserve_message(s, ref, channel)
    return hold_message(s, ref), reserved


def record_sent(row: SlackMessage, channel: str, ts: str) -> None:
    """Note where Slack has the message (``channel``, ``ts``), posted or edited just now.

    Delivery bookkeeping, like the outbox's: it changes nothing anyone decided, so it writes
    no audit event; the message it records does whatever telling there is.
    """
    row.channel, row.ts, row.updated_at = channel, ts, utcnow()


def reserve_with(s: Session, ref: str, channel: str) -> None:
    """Note that ``ref`` is about to be posted in ``channel``, in the caller's transaction: it commits
    with what the message announces (a key and its DM), and the post follows that commit."""
    s.add(SlackMessage(ref=ref, channel=channel, ts=POSTING))


def record_posted(s: Session, ref: str, channel: str, ts: str) -> None:
    """``record_sent`` for a message reserved with ``reserve_with``, by its ref, with no row loaded first."""
    s.execute(update(SlackMessage).where(SlackMessage.ref == ref).values(channel=channel, ts=ts, updated_at=utcnow()))


def hold_with_copies(s: Session, ref: str, copies: str) -> list[SlackMessage]:
    """A message and its copies (refs starting with ``copies``), locked as ``hold_message`` locks one, in one SELECT.

    In ref order, so two processes updating the same ones take their locks in the same order.
    """
    stmt = select(SlackMessage).where(or_(SlackMessage.ref == ref, SlackMessage.ref.startswith(copies, autoescape=True))).order_by(SlackMessage.ref)
    return list(s.scalars(stmt.with_for_update()))
