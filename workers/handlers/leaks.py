"""Telling people about a leak: a reply in the message's thread, the owner, the Admins; warnings for other vendors' secrets."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot.blocks import leaks as blocks
from store import outbox
from store.leaks import Source
from store.models import ApiKey, Member, Workspace
from store.outbox import Claimed
from store.types import MemberStatus, Role
from workers.handlers import completes
from workers.runtime import Runtime

log = logging.getLogger(__name__)

#: a thread reply or warning Purser cannot post there (left, archived, never invited) is skipped, not retried for ever
UNREACHABLE = {"not_in_channel", "channel_not_found", "is_archived", "thread_not_found", "message_not_found", "user_not_in_channel"}


def leak_notice(rt: Runtime, a: Claimed) -> None:
    p = a.payload
    source = Source(channel=p.get("channel"), ts=p.get("ts"), poster=p.get("poster"), url=p.get("url"))
    with rt.db.session() as s:
        key = s.get(ApiKey, p["key_id"])
        ws = s.get(Workspace, key.workspace_id)
        owner = s.get(Member, key.member_id).slack_user_id
        admins = list(s.scalars(select(Member.slack_user_id).where(Member.workspace_id == ws.id, Member.role == Role.ADMIN, Member.status == MemberStatus.ACTIVE, Member.slack_user_id.is_not(None)).order_by(Member.id)))
        name, prefix, slug = key.name, key.prefix, ws.slug
    if rt.slack is None:
        rt.db.run(outbox.complete, a.id)
        return
    if source.channel and source.ts:
        text, message = blocks.thread_reply(name, prefix)
        _reachable(lambda: rt.slack.post(f"leak:{a.id}:thread", source.channel, text, message, thread_ts=source.ts))
    if owner:
        text, message = blocks.owner_dm(p["key_id"], name, slug, source.channel, source.url, source.permalink)
        rt.slack.dm(f"leak:{a.id}:owner", owner, text, message)
    for admin in admins:
        if admin != owner:
            text, message = blocks.admins_told(name, owner, slug, source.channel, source.url, source.permalink, source.poster)
            rt.slack.dm(f"leak:{a.id}:admin:{admin}", admin, text, message)
    rt.db.run(outbox.complete, a.id)


def foreign_secret_notice(rt: Runtime, a: Claimed) -> None:
    p = a.payload
    source = Source(channel=p.get("channel"), ts=p.get("ts"), poster=p.get("poster"))
    audit_channel = None
    if a.workspace_id is not None:
        with rt.db.session() as s:
            audit_channel = s.get(Workspace, a.workspace_id).audit_channel
    if rt.slack is None:
        rt.db.run(outbox.complete, a.id)
        return
    if p.get("warn_poster") and source.poster and source.channel:
        _reachable(lambda: rt.slack.client.chat_postEphemeral(channel=source.channel, user=source.poster, text=blocks.foreign_warning(p["vendors"])))
    if audit_channel:
        text, message = blocks.foreign_audit(p["vendors"], source.channel, source.poster, source.permalink)
        rt.slack.post(f"foreign:{a.id}", audit_channel, text, message, also=completes(a))
        return
    rt.db.run(outbox.complete, a.id)


def _reachable(post) -> None:
    try:
        post()
    except SlackApiError as exc:
        if exc.response.get("error") not in UNREACHABLE:
            raise
        log.info("could not post there (%s); the owner and the Admins are told", exc.response.get("error"))
