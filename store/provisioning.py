"""Carrying out an approved key request: what the worker reads before the provider call, and what it stores after.

One SELECT reads everything the provider call, the approval message and the owner's DM
need. One transaction stores the key, its encrypted reveal and its audit event, and
reserves the DM that offers it (``store.messages.reserve_with``): the DM is posted only
after the key it offers exists, and a retry after any failure finds the key and the
reservation together, so it searches the DM before posting rather than posting twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, joinedload

from store import keys, outbox, quota_ledger
from store.leases import lease_end
from store.errors import NotFound
from store.messages import reserve_with
from store.models import ApiKey, Member, Request, Workspace
from store.standing import key_enabled
from store.types import ActionKind, KeyStatus, Period, utcnow
from store.views import KeyView, RequestView, request_view


def ready_ref(key_id: int) -> str:
    """The ref of the DM that offers a new key's Reveal button."""
    return f"key_ready:{key_id}"


@dataclass(frozen=True)
class KeyOrder:
    """An approved key request as the worker carries it out."""

    request: RequestView  # what the approval message shows
    provider: str
    linked: str | None  # the provider's workspace, for a linked workspace
    owner_id: int
    owner: str | None  # the owner's Slack user id
    owner_label: str
    refusal: str | None  # why no key may be made now (the owner left, or lost API access)
    key_id: int | None  # stored by an earlier attempt that died before completing


def key_order(s: Session, request_id: int) -> KeyOrder:
    """The request, its workspace, its people and any key already stored for it, in one SELECT."""
    owner = aliased(Member)
    row = s.execute(
        select(Request, Workspace, owner, ApiKey.id)
        .join(Workspace, Workspace.id == Request.workspace_id)
        .outerjoin(owner, owner.id == Request.payload["owner_id"].as_integer())
        .outerjoin(ApiKey, ApiKey.request_id == Request.id)
        .options(joinedload(Request.requester), joinedload(Request.decided_by))
        .where(Request.id == request_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"There is no request #{request_id}.")
    req, ws, member, key_id = row
    return KeyOrder(
        request=request_view(s, req, ws, deciders=False),  # decided: nobody is asked any more
        provider=ws.provider,
        linked=ws.provider_ref,
        owner_id=req.payload["owner_id"],
        owner=member.slack_user_id if member else None,
        owner_label=member.label if member else f"member {req.payload['owner_id']}",
        refusal=keys.refusal_for(member),
        key_id=key_id,
    )


def store_key(s: Session, order: KeyOrder, *, secret: str, provider: str, provider_ref: str | None, dm_channel: str | None, sync_state: bool) -> KeyView:
    """Store the key the provider just made: hash, reference, encrypted reveal, audit event; reserve its DM in
    ``dm_channel`` (None: no DM). ``sync_state``: the provider keeps keys' state of its own, to be brought in line."""
    p = order.request.payload
    key = ApiKey(
        workspace_id=order.request.workspace_id,
        member_id=order.owner_id,
        project_id=p.get("project_id"),
        request_id=order.request.id,
        name=p["name"],
        limit_micros=p.get("limit_micros"),
        limit_period=Period(p.get("limit_period") or "monthly"),
        expires_at=lease_end(p, utcnow()),
    )
    # The request's unique key: of two attempts that both got here, the second fails and its retry finds this one.
    keys.store_new_key(s, key, secret, provider, provider_ref, actor="system:worker", details={"request": order.request.id}, owner=order.owner_label)
    quota_ledger.first_lease(s, key)
    if sync_state and not key_enabled(s, key):
        outbox.emit(s, ActionKind.SYNC_KEY_STATE, workspace_id=key.workspace_id, payload={"key_ids": [key.id]})
    if dm_channel is not None:
        reserve_with(s, ready_ref(key.id), dm_channel)
    return KeyView(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        owner=order.owner,
        workspace=order.request.workspace,
        project=p.get("project"),
        limit_micros=key.limit_micros,
        limit_period=key.limit_period.value,
        expires_at=key.expires_at,
        status=KeyStatus.ACTIVE.value,
        spent_micros=0,
    )

