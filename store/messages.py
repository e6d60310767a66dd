"""Where Purser's Slack messages live: a retried post edits the message instead of posting twice."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import SlackMessage
from store.types import utcnow


def find_message(s: Session, ref: str) -> SlackMessage | None:
    return s.get(SlackMessage, ref)


def remember_message(s: Session, ref: str, channel: str, ts: str) -> SlackMessage:
    found = s.get(SlackMessage, ref)
    if found is None:
        found = SlackMessage(ref=ref, channel=channel, ts=ts)
        s.add(found)
    else:
        found.channel, found.ts, found.updated_at = channel, ts, utcnow()
    s.flush()
    return found


def messages_with_prefix(s: Session, prefix: str) -> list[SlackMessage]:
    return list(s.scalars(select(SlackMessage).where(SlackMessage.ref.startswith(prefix))))
