"""Quota leases at the provider: read the keys, record their spend, shrink and raise their limits.

The arithmetic and the invariant are the store's (store.quota); this module does the
provider's part in the order that keeps the invariant: shrinks at the provider first,
then stored; raises stored first, then made at the provider.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from store import quota, quota_ledger
from store.models import Workspace
from store.types import utcnow
from workers.providers.base import KeyState
from workers.runtime import Runtime

log = logging.getLogger(__name__)

#: read a key one call at a time up to this many; past it, list the workspace's keys (100 a page)
ONE_BY_ONE = 5


def read_keys(provider, linked_workspace: str | None, refs: list[str]) -> list[KeyState]:
    """The provider's view of these keys: usage and limit (a key it no longer has is left out)."""
    if len(refs) <= ONE_BY_ONE:
        return [state for state in (provider.get_key(ref) for ref in refs) if state is not None]
    wanted = set(refs)
    return [state for state in all_keys(provider, linked_workspace) if state.ref in wanted]


def all_keys(provider, linked_workspace: str | None) -> list[KeyState]:
    """Every key of the provider's workspace (its default workspace for None), 100 a page."""
    return provider.key_states(workspace_id=linked_workspace)


def record(rt: Runtime, provider_name: str, states: list[KeyState], now: datetime | None = None) -> list[int]:
    """Store what was read; the workspaces with a key near the end of its lease."""
    intervals = rt.poll_intervals
    return rt.db.run(
        quota_ledger.observe,
        provider_name,
        [(st.ref, st.usage_micros, st.limit_micros) for st in states],
        now,
        poll_every=intervals[0],
        poll_longest=intervals[1],
    )


def _workspace(rt: Runtime, workspace_id: int) -> tuple[str, str | None, list[str]]:
    with rt.db.session() as s:
        ws = s.get(Workspace, workspace_id)
        refs = [k.provider_ref for k in quota_ledger.leased_keys(s, workspace_id)]
        return ws.provider, ws.provider_ref, refs


def rebalance(rt: Runtime, workspace_id: int, *, read: bool = True) -> quota_ledger.Rebalance | None:
    """One rebalance of the workspace at a time (store.quota_ledger.claim); one asked for
    while another runs is run by that one when it finishes."""
    holder = uuid.uuid4().hex
    if not rt.db.run(quota_ledger.claim, workspace_id, holder):
        return None
    done = None
    try:
        while True:
            done = _rebalance(rt, workspace_id, holder, read=read)
            if not rt.db.run(quota_ledger.let_go, workspace_id, holder):
                return done
            if not rt.db.run(quota_ledger.claim, workspace_id, holder):
                return done
            read = True
    except BaseException:
        rt.db.run(quota_ledger.let_go, workspace_id, holder)
        raise


def _rebalance(rt: Runtime, workspace_id: int, holder: str, *, read: bool) -> quota_ledger.Rebalance | None:
    """Bring every leased key of a workspace to its planned lease; returns what changed.

    ``read``: read the keys' usage and limits at the provider first (a caller that just
    read them says False). A limit found below the stored ceiling — a raise that never
    reached the provider, or someone lowering it there — is raised back to the ceiling,
    which the invariant already counts.
    """
    name, linked, refs = _workspace(rt, workspace_id)
    if name not in quota.LEASED_PROVIDERS or not refs:
        return None
    provider = rt.provider(name)
    behind: dict[str, int] = {}
    if read:
        states = read_keys(provider, linked, refs)
        record(rt, name, states)
        behind = {st.ref: st.limit_micros for st in states if st.limit_micros is not None}
    with rt.db.session() as s:
        todo = quota_ledger.plan_rebalance(s, workspace_id)
        ceilings = {k.provider_ref: k.lease_ceiling_micros for k in quota_ledger.leased_keys(s, workspace_id)}
    for change in todo.shrinks:
        rt.db.run(quota_ledger.renew, workspace_id, holder)
        state = provider.set_limit(change.ref, change.after, None)
        rt.db.run(quota_ledger.settle_shrink, change, state.usage_micros if state else None)
        if state is not None:
            record(rt, name, [state])
    made = rt.db.run(quota_ledger.reserve_raises, workspace_id, todo.raises) if todo.raises else []
    raised = {c.ref for c in made}
    for change in made:
        rt.db.run(quota_ledger.renew, workspace_id, holder)
        provider.set_limit(change.ref, change.after, None)
    for ref, limit in behind.items():
        ceiling = ceilings.get(ref)
        if ref not in raised and ceiling is not None and limit < ceiling and ref not in {c.ref for c in todo.shrinks}:
            provider.set_limit(ref, ceiling, None)
    if todo.shrinks or made:
        log.info("leases of workspace %s: %d shrunk, %d raised", workspace_id, len(todo.shrinks), len(made))
    return quota_ledger.Rebalance(todo.shrinks, made)


def poll(rt: Runtime, now: datetime | None = None) -> list[int]:
    """Read the leased keys due for reading; top up the workspaces where a key nears its limit.

    Returns the workspaces rebalanced. Keys that spend are read every poll; idle ones less
    and less often (store.quota_ledger.observe), so an idle organisation costs few calls.
    """
    now = now or utcnow()
    with rt.db.session() as s:
        due = quota_ledger.due_for_reading(s, now)
    topped = []
    for workspace_id, refs in due.items():
        name, linked, _ = _workspace(rt, workspace_id)
        if name not in quota.LEASED_PROVIDERS:
            continue
        near = record(rt, name, read_keys(rt.provider(name), linked, refs), now)
        if workspace_id in near:
            rebalance(rt, workspace_id, read=False)
            topped.append(workspace_id)
    return topped
