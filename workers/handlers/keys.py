"""Keys at the provider: make, rotate, retire, revoke, and keep enabled-ness in step with pauses."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from bot.blocks.keys import key_ready_dm
from store import keys, outbox, provider_sync, quota, quota_ledger
from store.models import Action, ApiKey, Request, Workspace
from store.outbox import Claimed
from store.types import ActionKind, KeyStatus, utcnow
from store.standing import key_enabled
from store.views import describe_key
from workers.faults import crash_point
from workers.handlers import completes, messages
from workers.perform import perform
from workers.runtime import Runtime


def provider_key_name(action_id: str) -> str:
    # Unique per action: after a crash the retry finds its own orphan by this name.
    return f"purser-{action_id}"


def provision_key(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        req = s.get(Request, a.request_id)
        ws = s.get(Workspace, req.workspace_id)
        p, provider_name, refusal, linked = dict(req.payload), ws.provider, None, ws.provider_ref
        if s.scalars(select(ApiKey.id).where(ApiKey.request_id == req.id)).first():
            provider_name = None  # stored by an earlier attempt that died before completing
        else:
            refusal = keys.owner_may_not_hold_keys(s, req)
    if provider_name is not None and refusal:
        # Approved while they could hold keys, carried out after that changed: make nothing.
        rt.db.run(outbox.fail, a.id, refusal)
        return
    if provider_name is not None:
        created = rt.provider(provider_name).create(
            name=provider_key_name(a.id),
            expires_at=utcnow() + timedelta(days=p["expires_days"]) if p.get("expires_days") else None,
            retrying=a.attempts > 1,  # only an earlier attempt can have left an orphan to look for
            **_limits(provider_name, p.get("limit_micros"), p.get("limit_period"), linked),
        )
        crash_point(rt.faults, "provision_key.after_provider")

    def store(s):
        if provider_name is not None:
            result = keys.provision_key(s, a.id, secret=created.secret, provider=provider_name, provider_ref=created.ref)
            key = result.key
        else:
            key = s.scalars(select(ApiKey).where(ApiKey.request_id == a.request_id)).one()
        outbox.emit(s, ActionKind.NOTIFY_KEY_READY, workspace_id=key.workspace_id, payload={"key_id": key.id})
        quota_ledger.first_lease(s, key)
        if not _should_be_enabled(s, key):
            outbox.emit(s, ActionKind.SYNC_KEY_STATE, workspace_id=key.workspace_id, payload={"key_ids": [key.id]})
        outbox.complete(s, a.id)

    rt.db.run(store)


def rotate_key(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        old = s.get(ApiKey, a.payload["key_id"])
        provider_name = old.provider
        done = s.scalars(select(ApiKey.id).where(ApiKey.rotated_from_id == old.id)).first()
        limit, period, expires = old.limit_micros, old.limit_period.value, old.expires_at
        linked = s.get(Workspace, old.workspace_id).provider_ref
    if not done:
        created = rt.provider(provider_name).create(name=provider_key_name(a.id), expires_at=expires, retrying=a.attempts > 1, **_limits(provider_name, limit, period, linked))
        crash_point(rt.faults, "rotate_key.after_provider")

    def store(s):
        if not done:
            key = keys.complete_rotation(s, a.id, secret=created.secret, provider=provider_name, provider_ref=created.ref).key
            quota_ledger.first_lease(s, key)
        else:
            key = s.get(ApiKey, done)
        outbox.emit(s, ActionKind.NOTIFY_KEY_READY, workspace_id=key.workspace_id, payload={"key_id": key.id, "rotated": True})
        outbox.complete(s, a.id)

    rt.db.run(store)


def _limits(provider_name: str, limit_micros: int | None, period: str | None, linked: str | None) -> dict:
    """A leased key is made unable to spend; its first lease follows at once (store.quota)."""
    where = {"workspace_id": linked} if linked else {}
    if provider_name in quota.LEASED_PROVIDERS:
        return {"limit_micros": 0, "limit_reset": None, **where}
    return {"limit_micros": limit_micros, "limit_reset": period, **where}


def notify_key_ready(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        view = describe_key(s, a.payload["key_id"])
        request_id = s.scalar(select(ApiKey.request_id).where(ApiKey.id == view.id))
    if rt.slack is not None and request_id is not None:
        _outcome_first(rt, request_id)
    if rt.slack is not None and view.owner:
        text, blocks = key_ready_dm(view, rotated=bool(a.payload.get("rotated")))
        rt.slack.dm(f"key_ready:{view.id}", view.owner, text, blocks, also=completes(a))
        return
    rt.db.run(outbox.complete, a.id)


def _outcome_first(rt: Runtime, request_id: int, patience: float = 2.0) -> None:
    """"Approved: a message with a Reveal button follows" is read before the message it announces.

    An outcome nobody holds is sent here, first. One another worker is sending is waited for,
    briefly (on the wall clock: a test's frozen clock must not stop it). One waiting out a
    retry (Slack refused it) is not waited for: the key is not held back by Slack's trouble.
    """
    with rt.db.session() as s:
        pending = outbox.pending_of(s, ActionKind.REQUEST_DECIDED, request_id)
        action = s.get(Action, pending) if pending else None
        if action is None or action.run_after > utcnow():
            return
        held = action.claimed_until is not None and action.claimed_until > utcnow()
    if not held:
        # Another worker may claim it between that look and this claim (perform then does
        # nothing): the wait below covers it, and costs one query when it was sent here.
        perform(messages.request_decided, pending, rt)
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        with rt.db.session() as s:
            if outbox.pending_of(s, ActionKind.REQUEST_DECIDED, request_id) is None:
                return
        time.sleep(0.05)


def retire_key(rt: Runtime, a: Claimed) -> None:
    rt.db.run(keys.retire_key, a.payload["key_id"])
    _delete_at_provider(rt, a)


def revoke_key(rt: Runtime, a: Claimed) -> None:
    _delete_at_provider(rt, a)


def _delete_at_provider(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        key = s.get(ApiKey, a.payload["key_id"])
        provider_name, ref = key.provider, key.provider_ref
    provider = rt.provider(provider_name)
    if ref is not None:
        # Spent since the last usage sync is known only to the provider, and only while the key
        # exists there: record it before deleting. Recorded twice (a retry) it counts once.
        state = provider.get_key(ref)
        if state is not None:
            rt.db.run(provider_sync.sync_provider_usage, provider_name, [(ref, state.usage_micros)])
    provider.delete(ref)
    rt.db.run(outbox.complete, a.id)


def _should_be_enabled(s, key: ApiKey) -> bool:
    """A key works at the provider only while its standing says it may be used (store.standing)."""
    return key_enabled(s, key)


def apply_key_states(rt: Runtime, key_ids: list[int]) -> None:
    """Enable or disable each key at its provider as the store says it should be now (idempotent)."""
    with rt.db.session() as s:
        wanted = [(k.provider, k.provider_ref, _should_be_enabled(s, k)) for k in s.scalars(select(ApiKey).where(ApiKey.id.in_(key_ids), ApiKey.status != KeyStatus.REVOKED))]
    for provider_name, ref, enabled in wanted:
        provider = rt.provider(provider_name)
        provider.enable(ref) if enabled else provider.disable(ref)


def sync_key_state(rt: Runtime, a: Claimed) -> None:
    apply_key_states(rt, a.payload["key_ids"])
    rt.db.run(outbox.complete, a.id)


def disable_key(rt: Runtime, a: Claimed) -> None:
    apply_key_states(rt, [a.payload["key_id"]])
    rt.db.run(outbox.complete, a.id)


enable_key = disable_key  # both bring the provider in line with the store's state
