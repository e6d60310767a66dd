"""SCIM provisioning's settings: the identity provider's bearer tokens, and which group gives which role (docs/scim.md).

A token belongs to one workspace (and so to one Slack team). It is shown once, when it is
made, and kept only as its sha256. At most two live at a time: making a third retires the
oldest, so a token is rotated by making a new one, moving the identity provider to it, and
letting the next rotation (or ``revoke_token``) retire the old one.

What the identity provider's requests do to people is in ``store.scim_people``.
"""

from __future__ import annotations

import re
import secrets as _random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import audit
from store.errors import InvalidInput, NotFound
from store.models import Workspace
from store.models_scim import ScimToken
from store.permissions import Actor, Permission, authorize, load_workspace
from store.secrets import hash_secret
from store.types import WorkspaceStatus, utcnow

TOKEN_PREFIX = "purser-scim-"
MOST_LIVE_TOKENS = 2
EVERYONE = "*"  # the mapping that gives a role to everyone provisioned, in a mapped group or not
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")


@dataclass(frozen=True)
class Grant:
    """What a presented token allows: one workspace's people and groups, acting as ``actor``."""

    token_id: int
    workspace_id: int
    team_id: str
    name: str

    @property
    def actor(self) -> Actor:
        # audited as "system:scim:<token name>": which connection did it shows in the log
        return Actor.operator(f"scim:{self.name}")


@dataclass(frozen=True)
class MadeToken:
    name: str
    secret: str  # shown once; never stored
    prefix: str
    retired: list[str]


def key_of(name: str) -> str:
    """Group names and userNames compare case-insensitively, as the identity providers treat them."""
    return name.strip().casefold()


def create_token(s: Session, actor: Actor, workspace_id: int, name: str | None = None) -> MadeToken:
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.MANAGE_MEMBERS, resource=f"workspace:{ws.slug}", attempted="scim.token.create")
    live = _live_tokens(s, ws.id)
    name = (name or f"token-{utcnow():%Y%m%d-%H%M%S}").strip().lower()
    if not _NAME.match(name):
        raise InvalidInput(f"“{name[:40]}” cannot name a token: use up to 40 letters, digits, dots, dashes or underscores.")
    if any(t.name == name for t in live):
        raise InvalidInput(f"A live token of `{ws.slug}` is already called `{name}`. Pick another name.")
    retired = []
    for old in live[: max(0, len(live) - MOST_LIVE_TOKENS + 1)]:  # oldest first: two live at most
        _retire(s, actor, ws, old, "rotated: a newer token was made")
        retired.append(old.name)
    secret = TOKEN_PREFIX + _random.token_urlsafe(32)
    token = ScimToken(workspace_id=ws.id, name=name, prefix=secret[: len(TOKEN_PREFIX) + 4], secret_hash=hash_secret(secret), created_by=actor.label)
    s.add(token)
    s.flush()
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="scim.token.create", resource=f"scim_token:{name}", details={"prefix": token.prefix, "retired": retired})
    return MadeToken(name, secret, token.prefix, retired)


def revoke_token(s: Session, actor: Actor, workspace_id: int, name: str) -> str:
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.MANAGE_MEMBERS, resource=f"scim_token:{name[:40]}", attempted="scim.token.revoke")
    token = next((t for t in _live_tokens(s, ws.id) if t.name == name.strip().lower()), None)
    if token is None:
        raise NotFound(f"`{ws.slug}` has no live SCIM token called `{name[:40]}`.")
    _retire(s, actor, ws, token, "revoked")
    return token.name


def list_tokens(s: Session, actor: Actor, workspace_id: int) -> list[tuple[str, str, str]]:
    """The live tokens: (name, prefix, made on)."""
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.MANAGE_MEMBERS, resource=f"workspace:{ws.slug}", attempted="scim.token.list")
    return [(t.name, t.prefix, f"{t.created_at:%Y-%m-%d}") for t in _live_tokens(s, ws.id)]


def _live_tokens(s: Session, workspace_id: int) -> list[ScimToken]:
    return list(s.scalars(select(ScimToken).where(ScimToken.workspace_id == workspace_id, ScimToken.revoked_at.is_(None)).order_by(ScimToken.id)))


def _retire(s: Session, actor: Actor, ws: Workspace, token: ScimToken, why: str) -> None:
    token.revoked_at = utcnow()
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="scim.token.revoke", resource=f"scim_token:{token.name}", details={"prefix": token.prefix, "why": why})


def grant_for(s: Session, secret: str) -> Grant | None:
    """The grant of a presented token, or None: unknown, revoked, or its workspace deleted."""
    row = s.execute(
        select(ScimToken.id, ScimToken.workspace_id, Workspace.team_id, ScimToken.name)
        .join(Workspace, Workspace.id == ScimToken.workspace_id)
        .where(ScimToken.secret_hash == hash_secret(secret), ScimToken.revoked_at.is_(None), Workspace.status != WorkspaceStatus.DELETED)
    ).first()
    return Grant(*row) if row else None

