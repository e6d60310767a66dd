"""Who is asking, in which workspace: resolved once per request."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot import texts
from store.errors import InvalidInput, NotFound
from store.models import ChannelBinding, Member, Workspace
from store.permissions import Actor
from store.types import MemberStatus, WorkspaceStatus


@dataclass(frozen=True)
class Asker:
    team_id: str
    user_id: str
    channel_id: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor.slack(self.user_id)


def pick_workspace(s: Session, asker: Asker, named: str | None) -> Workspace:
    """The named one; else the channel's; else the only one the user is in; else a clear question."""
    live = select(Workspace).where(Workspace.team_id == asker.team_id, Workspace.status != WorkspaceStatus.DELETED)
    if named:
        ws = s.scalars(live.where(Workspace.slug == named.strip().lower())).one_or_none()
        if ws is None:
            raise NotFound(f"There is no workspace called “{named[:40]}”. `/ai-workspace list` shows yours.")
        return ws
    mine = list(
        s.scalars(
            live.join(Member).where(Member.slack_user_id == asker.user_id, Member.status == MemberStatus.ACTIVE).order_by(Workspace.slug)
        )
    )
    if asker.channel_id:
        binding = s.get(ChannelBinding, (asker.team_id, asker.channel_id))
        if binding is not None:
            ws = s.get(Workspace, binding.workspace_id)
            if ws is not None and ws.status is not WorkspaceStatus.DELETED:
                return ws
        # a workspace's own approvals / alerts / audit channel speaks for it
        bound = list(
            s.scalars(
                live.where(
                    or_(
                        Workspace.approvals_channel == asker.channel_id,
                        Workspace.alerts_channel == asker.channel_id,
                        Workspace.audit_channel == asker.channel_id,
                    )
                )
            )
        )
        if len(bound) == 1:
            return bound[0]
    if len(mine) == 1:
        return mine[0]
    if not mine:
        raise InvalidInput(texts.NO_WORKSPACE)
    raise InvalidInput(texts.CHOOSE_WORKSPACE.format(names=", ".join(f"`{w.slug}`" for w in mine)))
