"""Telling a workspace's Admins that a member was suspended: one message, with a Restore button."""

from __future__ import annotations

from sqlalchemy import select

from bot.blocks import directory as blocks
from store import directory, outbox
from store.models import Member, Workspace
from store.outbox import Claimed
from store.types import MemberStatus, Role
from workers.handlers import completes
from workers.runtime import Runtime


def member_suspended(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        ws = s.get(Workspace, a.workspace_id)
        admins = list(s.scalars(select(Member.slack_user_id).where(Member.workspace_id == ws.id, Member.role == Role.ADMIN, Member.status == MemberStatus.ACTIVE, Member.slack_user_id.is_not(None)).order_by(Member.id)))
        text, message = blocks.suspended(*directory.notice_of(s, a.payload["member_id"]))
        channel = ws.approvals_channel
    if rt.slack is None or not (channel or admins):
        rt.db.run(outbox.complete, a.id)
        return
    if channel:  # where the Admins decide things: one message for the workspace
        rt.slack.post(f"suspended:{a.id}", channel, text, message, also=completes(a))
        return
    for i, admin in enumerate(admins):
        rt.slack.dm(f"suspended:{a.id}:{admin}", admin, text, message, also=completes(a) if i == len(admins) - 1 else None)
