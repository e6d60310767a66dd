"""Keys at the provider: make, rotate, retire, revoke, and keep enabled-ness in step with pauses."""

from __future__ import annotations


from sqlalchemy import select

from bot.blocks.keys import key_ready_dm
from store import keys, leases, outbox, provider_sync, provisioning, quota, quota_ledger
from store.models import ApiKey, Workspace
from store.outbox import Claimed
from store.types import ActionKind, KeyStatus, utcnow
from store.standing import key_enabled
from store.views import describe_key
from workers.faults import crash_point
from workers.handlers import completes, messages
from workers.runtime import Runtime


def provider_key_name(action_id: str) -> str:
    # Unique per action: after a crash the retry finds its own orphan by this name.
    return f"purser-{action_id}"


def provision_key(rt: Runtime, a: Claimed) -> None:
    """An approved key request, end to end: the approval message shows the decision, the provider makes the key,
    the store keeps it, and its owner's DM offers the Reveal button and says who approved.

    The DM is reserved in the transaction that stores the key and posted after it commits; the
    action completes in the transaction that stores the DM's ts. A retry after a failure at any
    point finds the key (made at most once: the provider call is found again by name) and
    delivers the DM through ``Slack.dm``, which searches for an interrupted post first.
    """
    with rt.db.session() as s:
        order = provisioning.key_order(s, a.request_id)
    if rt.slack is not None and not order.request.auto_approved:
        messages.show_decision(rt, order.request)
    if order.key_id is not None:  # stored by an earlier attempt that died before completing
        _deliver(rt, a, order.key_id, order.request.decided_by)
        return
    if order.refusal:
        # Approved while they could hold keys, carried out after that changed: make nothing.
        rt.db.run(outbox.fail, a.id, order.refusal)
        return
    channel = rt.slack.open_dm(order.owner) if rt.slack is not None and order.owner else None
    p, provider = order.request.payload, rt.provider(order.provider)
    created = provider.create(
        name=provider_key_name(a.id),
        expires_at=leases.lease_end(p, utcnow()),
        retrying=a.attempts > 1,  # only an earlier attempt can have left an orphan to look for
        **_limits(order.provider, p.get("limit_micros"), p.get("limit_period"), order.linked),
    )
    crash_point(rt.faults, "provision_key.after_provider")

    def store(s):
        # A provider that keeps no state of its own (local) has nothing to bring in line with a pause.
        view = provisioning.store_key(
            s, order, secret=created.secret, provider=order.provider, provider_ref=created.ref, dm_channel=channel, sync_state=getattr(provider, "keeps_state", True)
        )
        if channel is None:
            outbox.complete(s, a.id)
        return view

    view = rt.db.run(store)
    if channel is not None:
        crash_point(rt.faults, "provision_key.before_dm")
        text, blocks = key_ready_dm(view, approved_by=order.request.decided_by)
        rt.slack.post_reserved(provisioning.ready_ref(view.id), channel, text, blocks, also=completes(a))


def _deliver(rt: Runtime, a: Claimed, key_id: int, approved_by: str | None) -> None:
    with rt.db.session() as s:
        view = describe_key(s, key_id)
    if rt.slack is not None and view.owner:
        text, blocks = key_ready_dm(view, approved_by=approved_by)
        rt.slack.dm(provisioning.ready_ref(view.id), view.owner, text, blocks, also=completes(a))
        return
    rt.db.run(outbox.complete, a.id)


def rotate_key(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        old = s.get(ApiKey, a.payload["key_id"])
        provider_name = old.provider
        done = s.scalars(select(ApiKey.id).where(ApiKey.rotated_from_id == old.id)).first()
        limit, period, expires = old.limit_micros, old.limit_period.value, leases.rotated_expiry(a.payload, old.expires_at)
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
    """A rotated key's DM (a new key's is sent by provision_key itself)."""
    with rt.db.session() as s:
        view = describe_key(s, a.payload["key_id"])
    if rt.slack is not None and view.owner:
        text, blocks = key_ready_dm(view, rotated=bool(a.payload.get("rotated")))
        rt.slack.dm(provisioning.ready_ref(view.id), view.owner, text, blocks, also=completes(a))
        return
    rt.db.run(outbox.complete, a.id)


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
