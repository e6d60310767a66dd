"""A key seen where it should not be: revoked at once, its owner offered a replacement.

Purser's keys reach people once (the reveal) and are meant to stay out of Slack; one that
is pasted into a channel, a DM or a CI log is compromised, so it is revoked with no grace
period, in the transaction that learns of it, whoever reported it (Slack's message
events, ``POST /v1/leaks``, ``purser leak report``). Only the secret's hash is ever
looked at here; the text it was found in is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import Conflict, InvalidInput
from store.keys import _authorize_key, request_key, revoke_key_rows
from store.models import ApiKey, ChannelBinding, Project, Request, Workspace
from store.permissions import Actor
from store.types import ActionKind, KeyStatus, RequestKind, WorkspaceStatus

GUARD = Actor.operator("leak-guard")
LEAKED = "leaked"  # the start of a leaked key's status_reason


@dataclass(frozen=True)
class Source:
    """Where a secret was seen: a Slack message, or what another scanner names (a URL)."""

    team_id: str | None = None
    channel: str | None = None
    ts: str | None = None
    poster: str | None = None
    url: str | None = None
    reporter: str = "slack"  # slack | api | cli

    @property
    def permalink(self) -> str | None:
        if self.channel and self.ts:
            # Slack redirects this form to the team's own address; no API call needed to build it.
            return f"https://slack.com/archives/{self.channel}/p{self.ts.replace('.', '')}"
        return self.url

    def describe(self) -> str:
        if self.channel:
            return f"in <#{self.channel}>" if self.channel[:1] in ("C", "G") else "in a direct message"
        return f"at {self.url}" if self.url else f"by {self.reporter}"


@dataclass
class Outcome:
    revoked: list[int] = field(default_factory=list)  # keys revoked now
    again: list[int] = field(default_factory=list)  # keys a leak had revoked already
    unknown: int = 0  # candidates no key of Purser's has

    @property
    def matched(self) -> int:
        return len(self.revoked) + len(self.again)


def report_leak(s: Session, secret_hashes: list[str] | tuple[str, ...], source: Source) -> Outcome:
    """Revoke every live key among these secret hashes and tell who needs to know; idempotent.

    A key a leak revoked already is left alone: pasting it again writes nothing more (one
    audit event per leak, not per paste). A key revoked for another reason is no longer a
    risk either, and is counted, not announced.
    """
    out = Outcome()
    if not secret_hashes:
        return out
    wanted = sorted(set(secret_hashes))
    found = {k.secret_hash: k for k in s.scalars(select(ApiKey).where(ApiKey.secret_hash.in_(wanted)).order_by(ApiKey.id).with_for_update())}
    missing = [h for h in wanted if h not in found]
    if missing:
        # A key adopted from OpenRouter (store.adoption) never showed Purser its secret; OpenRouter
        # names keys by a 64-hex hash, taken here to be the secret's sha256 as it appears to be.
        adopted = select(ApiKey).where(ApiKey.provider == "openrouter", ApiKey.provider_ref.in_(missing)).order_by(ApiKey.id).with_for_update()
        found.update({k.provider_ref: k for k in s.scalars(adopted)})
    for secret_hash in dict.fromkeys(secret_hashes):
        key = found.get(secret_hash)
        if key is None:
            out.unknown += 1
            continue
        if key.status is KeyStatus.REVOKED:
            out.again.append(key.id)
            continue
        ws = s.get(Workspace, key.workspace_id)
        where = {"channel": source.channel, "permalink": source.permalink, "poster": source.poster, "reported_by": source.reporter}
        revoke_key_rows(s, GUARD, ws, [key], reason=f"{LEAKED} {source.describe()}"[:200], event="key.leaked", details={k: v for k, v in where.items() if v})
        outbox.emit(
            s,
            ActionKind.LEAK_NOTICE,
            workspace_id=ws.id,
            payload={"key_id": key.id, "channel": source.channel, "ts": source.ts, "poster": source.poster, "url": source.url},
        )
        out.revoked.append(key.id)
    return out


def report_foreign(s: Session, vendors: list[str] | tuple[str, ...], source: Source) -> int:
    """Another vendor's credential was posted: not Purser's to revoke; the poster and the audit channels are warned.

    The workspaces told are the one the channel is bound to, or else every workspace of
    the team with an audit channel. Returns how many notices were sent.
    """
    if not vendors or not source.team_id:
        return 0
    bound = s.scalars(select(ChannelBinding.workspace_id).where(ChannelBinding.team_id == source.team_id, ChannelBinding.channel_id == source.channel)).first()
    query = select(Workspace).where(Workspace.team_id == source.team_id, Workspace.status != WorkspaceStatus.DELETED)
    query = query.where(Workspace.id == bound) if bound else query.where(Workspace.audit_channel.is_not(None))
    told = 0
    payload = {"vendors": sorted(set(vendors)), "channel": source.channel, "ts": source.ts, "poster": source.poster}
    channels: set[str | None] = set()
    for ws in s.scalars(query.order_by(Workspace.id)):
        # The poster hears it once, from the first; each audit channel once, however many workspaces share it.
        if ws.audit_channel in channels and ws.audit_channel is not None:
            continue
        outbox.emit(s, ActionKind.FOREIGN_SECRET_NOTICE, workspace_id=ws.id, payload={**payload, "warn_poster": told == 0})
        channels.add(ws.audit_channel)
        told += 1
    if told == 0 and source.poster and source.channel:
        outbox.emit(s, ActionKind.FOREIGN_SECRET_NOTICE, workspace_id=None, payload={**payload, "warn_poster": True})
        told = 1
    return told


def request_replacement(s: Session, actor: Actor, key_id: int) -> Request:
    """The owner of a leaked key asks for one like it: same name, project and limit; the workspace's policy decides."""
    ws, key = _authorize_key(s, actor, key_id, "key.replace")
    if key.status is not KeyStatus.REVOKED or not (key.status_reason or "").startswith(LEAKED):
        raise InvalidInput(f"Key `{key.name}` was not revoked for a leak; rotate it with `/ai-key rotate {key.name}` instead.")
    if actor.slack_user_id != key.member.slack_user_id:
        raise InvalidInput("Only the key's owner can ask for its replacement: the new key is theirs.")
    asked = select(Request.id).where(Request.kind == RequestKind.KEY, Request.payload["replaces"].as_integer() == key.id)
    if s.scalars(asked).first() or s.scalars(select(ApiKey.id).where(ApiKey.member_id == key.member_id, ApiKey.name == key.name, ApiKey.status != KeyStatus.REVOKED)).first():
        raise Conflict(f"A replacement for `{key.name}` was asked for already; look for it in your DMs or `/ai-key list`.")
    proj = s.get(Project, key.project_id) if key.project_id else None
    req = request_key(s, actor, ws.id, name=key.name, project=proj.slug if proj else None, limit_micros=key.limit_micros, reason=f"replaces key #{key.id}, revoked after a leak")
    req.payload = {**req.payload, "replaces": key.id}
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="key.replace", resource=f"key:{key.id}", details={"request": req.id})
    return req

