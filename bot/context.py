"""Who is asking, in which workspace: resolved once per request."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from bot import texts
from store.errors import InvalidInput, NotFound
from store.overview import Choice, choose_workspace
from store.permissions import Actor


@dataclass(frozen=True)
class Asker:
    team_id: str
    user_id: str
    channel_id: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor.slack(self.user_id)


def pick_workspace(s: Session, asker: Asker, named: str | None) -> Choice:
    """The workspace the store chose for this command (``id``, ``slug``), or a clear question."""
    chosen = choose_workspace(s, asker.team_id, asker.user_id, asker.channel_id, named)
    if chosen.id is not None:
        return chosen
    if chosen.named_missing:
        raise NotFound(f"There is no workspace called “{(named or '')[:40]}”. `/ai-workspace list` shows yours.")
    if not chosen.mine:
        raise InvalidInput(texts.NO_WORKSPACE)
    raise InvalidInput(texts.CHOOSE_WORKSPACE.format(names=", ".join(f"`{slug}`" for slug in chosen.mine)))
