"""Whether Slack still lets Purser in: ``tokens_revoked`` and ``app_uninstalled`` take the access away.

Kept in the store so that every process learns it (the event reaches one web process)
and stops calling Slack with a token Slack no longer accepts: each call would fail, be
logged, and turn into a failed action telling someone — through Slack — that Slack
failed. A reinstall with a new token gives the access back (``restored``, at start-up).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from store.models import SlackAccess
from store.types import utcnow


def revoked(s: Session, team_id: str, why: str) -> bool:
    """Record that Slack took the access away; True the first time (so it is said once)."""
    if s.get(SlackAccess, team_id) is not None:
        return False
    s.add(SlackAccess(team_id=team_id, revoked_at=utcnow(), why=why[:40]))
    return True


def restored(s: Session, team_id: str) -> bool:
    return bool(s.execute(delete(SlackAccess).where(SlackAccess.team_id == team_id)).rowcount)


def lost(s: Session) -> SlackAccess | None:
    """The revocation in force, if any (one install serves one team)."""
    return s.scalars(select(SlackAccess).limit(1)).first()
