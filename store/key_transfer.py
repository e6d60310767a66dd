"""Handing a key to another member, so a service key outlives its maker's time here.

A key belongs to a member, and what the member's membership does, the key follows:
removing a member revokes their keys (store.members), suspending them stops their keys
(store.directory), a role without API access holds them back (store.standing). A key the
team still needs is therefore handed over *before* its owner goes: to an active member
whose role may hold keys (Admin or Developer), or it would be stopped on arrival. The
key keeps its secret, limit, project and history; its spend is shown under its new
owner from then on, since reports join a key to its member when they read.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import Conflict, InvalidInput, NotFound
from store.models import ApiKey, Member
from store.permissions import Actor, Permission, authorize, load_workspace
from store.requests import cancel_extensions
from store.standing import may_hold_keys
from store.types import ActionKind, KeyStatus, MemberStatus


def transfer_key(s: Session, actor: Actor, key_id: int, to_member_id: int, *, details: dict | None = None) -> ApiKey:
    """Admins only. Refused in plain words: a revoked key, a new owner who is not an active member with API access."""
    key = s.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"There is no key #{key_id}.")
    ws = load_workspace(s, key.workspace_id)
    authorize(s, actor, ws, Permission.MANAGE_ANY_KEY, resource=f"key:{key.id}", attempted="key.transfer")
    key = s.scalars(select(ApiKey).where(ApiKey.id == key_id).with_for_update().execution_options(populate_existing=True)).one()
    if key.status is KeyStatus.REVOKED:
        raise Conflict(f"Key `{key.name}` was revoked at {key.revoked_at:%Y-%m-%d %H:%M} UTC: there is nothing to hand over. Ask for a new key for its new owner instead.")
    to = s.get(Member, to_member_id, with_for_update=True)
    if to is None or to.workspace_id != ws.id or to.status is not MemberStatus.ACTIVE:
        raise InvalidInput(f"That person is not an active member of `{ws.slug}`, so key `{key.name}` cannot be handed to them. Invite them first, or pick a member.")
    if not may_hold_keys(to.role):
        raise InvalidInput(f"{to.label} is a {to.role.title}, a role without API keys: key `{key.name}` would stop working with them. Pick an Admin or a Developer.")
    if to.id == key.member_id:
        raise InvalidInput(f"Key `{key.name}` already belongs to {to.label}.")
    clash = select(ApiKey.id).where(ApiKey.member_id == to.id, ApiKey.name == key.name, ApiKey.status != KeyStatus.REVOKED)
    if s.scalars(clash).first() is not None:
        raise Conflict(f"{to.label} already has a live key called `{key.name}`; one owner cannot hold two keys of one name. Rename or revoke theirs first.")
    successor = select(ApiKey.id).where(ApiKey.rotated_from_id == key.id, ApiKey.status != KeyStatus.REVOKED)
    if s.scalars(successor).first() is not None:  # its successor carries it on: handing over only this one would split them
        raise Conflict(f"Key `{key.name}` is being replaced by a newer key with the same name; hand over that one instead.")
    old = key.member
    key.member_id = to.id
    cancel_extensions(s, ws.id, [key.id], actor=actor.label, why=f"the key was handed to {to.label}")
    s.flush()
    s.expire(key, ["member"])
    audit.record(
        s, workspace_id=ws.id, actor=actor.label, action="key.transfer", resource=f"key:{key.id}",
        details={"name": key.name, "from": old.label, "to": to.label, **(details or {})},
    )  # fmt: skip
    # Its standing follows the new owner (a suspended maker's key starts again): the provider is brought in line.
    outbox.emit(s, ActionKind.SYNC_KEY_STATE, workspace_id=ws.id, payload={"key_ids": [key.id]})
    outbox.emit(s, ActionKind.KEY_TRANSFERRED, workspace_id=ws.id, payload={"key_id": key.id, "from": old.slack_user_id, "to": to.slack_user_id, "by": actor.slack_user_id})
    return key
