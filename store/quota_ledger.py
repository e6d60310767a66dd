"""The quota leases' ledger: each key's ceiling, read, planned, raised, shrunk (store.quota has the why)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import outbox
from store.models import ApiKey, Project, Workspace
from store.provider_sync import sync_provider_usage
from store.quota import LEASED_PROVIDERS, Holder, Room, grant, plan
from store.standing import effective_budget, key_enabled
from store.totals import spent
from store.types import ActionKind, KeyStatus, Scope, WorkspaceStatus, utcnow


# -- the figures, read from the store --------------------------------------------------------


def leased_keys(s: Session, workspace_id: int, *, lock: bool = False) -> list[ApiKey]:
    query = (
        select(ApiKey)
        .where(ApiKey.workspace_id == workspace_id, ApiKey.provider.in_(sorted(LEASED_PROVIDERS)), ApiKey.status != KeyStatus.REVOKED, ApiKey.provider_ref.is_not(None))
        .order_by(ApiKey.id)
    )
    return list(s.scalars(query.with_for_update() if lock else query))


def figures(s: Session, workspace_id: int, now: datetime | None = None, *, lock: bool = False) -> tuple[list[Holder], Room]:
    """The workspace's leased keys and what remains of its budgets, now.

    ``lock`` takes the workspace row first (as every administrative operation does, and
    ingest in KEY SHARE), then the keys: raises are granted against figures nobody moves.
    """
    now = now or utcnow()
    ws = s.get(Workspace, workspace_id, with_for_update=lock or None)
    keys = leased_keys(s, workspace_id, lock=lock)
    left = []
    if ws.cap_micros is not None:
        left.append(ws.cap_micros - spent(s, Scope.WORKSPACE, ws.id, ws.cap_period, now))
    if ws.credit_funded:
        left.append(ws.credit_balance_micros)
    if ws.status is WorkspaceStatus.DELETED:
        left.append(0)
    room = Room(max(0, min(left)) if left else None)
    for project_id in sorted({k.project_id for k in keys if k.project_id is not None}):
        proj = s.get(Project, project_id)
        limit = effective_budget(s, proj, now)  # the raises in force lease out too; their end shrinks the leases (ANNOUNCE_RAISE)
        room.project_left[project_id] = None if limit is None else max(0, limit - spent(s, Scope.PROJECT, proj.id, proj.budget_period, now))
    holders = []
    for k in keys:
        own = None if k.limit_micros is None else k.limit_micros - spent(s, Scope.KEY, k.id, k.limit_period, now)
        holders.append(Holder(k.id, k.project_id, k.synced_usage_micros, k.lease_ceiling_micros, k.lease_granted_micros, own, key_enabled(s, k, now)))
    return holders, room


# -- changes to the stored ceilings ----------------------------------------------------------


@dataclass(frozen=True)
class Change:
    key_id: int
    ref: str
    before: int | None  # the stored ceiling the change was planned from
    after: int | None


@dataclass
class Rebalance:
    shrinks: list[Change] = field(default_factory=list)
    raises: list[Change] = field(default_factory=list)


def plan_rebalance(s: Session, workspace_id: int, now: datetime | None = None) -> Rebalance:
    """What to shrink at the provider first, and what to raise after (store.quota.grant checks the raises)."""
    holders, room = figures(s, workspace_id, now)
    refs = {k.id: k.provider_ref for k in leased_keys(s, workspace_id)}
    out = Rebalance()
    targets = plan(holders, room)
    for h in holders:
        lease = targets[h.key_id]
        want = None if lease is None else h.usage + lease
        if want == h.ceiling:
            continue
        change = Change(h.key_id, refs[h.key_id], h.ceiling, want)
        if h.ceiling is None or (want is not None and want < h.ceiling):
            out.shrinks.append(change)
        else:
            out.raises.append(change)
    return out


def settle_shrink(s: Session, change: Change, usage_now: int | None) -> None:
    """Store a shrink the provider has made: the new ceiling, or the usage it already passed.

    Only if the stored ceiling is still the one the shrink was planned from: a raise
    stored since (by another rebalance) stays, which names the higher of the two.
    """
    key = s.get(ApiKey, change.key_id, with_for_update=True)
    if key is None or key.lease_ceiling_micros != change.before:
        return
    after = change.after
    if after is not None and usage_now is not None:
        after = max(after, usage_now)
    key.lease_ceiling_micros = after
    key.lease_granted_micros = None if after is None else max(0, after - key.synced_usage_micros)


def reserve_raises(s: Session, workspace_id: int, raises: list[Change], now: datetime | None = None) -> list[Change]:
    """Grant and store the raises the budgets allow now; the provider is told after this commits."""
    holders, room = figures(s, workspace_id, now, lock=True)
    granted = grant(holders, room, {c.key_id: c.after for c in raises})
    by_id = {k.id: k for k in leased_keys(s, workspace_id)}
    stored = []
    for c in raises:
        if c.key_id not in granted:
            continue
        key = by_id[c.key_id]
        key.lease_ceiling_micros = granted[c.key_id]
        key.lease_granted_micros = None if key.lease_ceiling_micros is None else key.lease_ceiling_micros - key.synced_usage_micros
        stored.append(Change(c.key_id, c.ref, c.before, key.lease_ceiling_micros))
    return stored


def observe_limit(s: Session, key_id: int, limit_at_provider: int | None) -> None:
    """Someone set the key's limit at the provider above Purser's ceiling: count that as the ceiling.

    The invariant is then broken until the next rebalance shrinks it back, and counting it
    makes that rebalance lease nothing more meanwhile.
    """
    key = s.get(ApiKey, key_id, with_for_update=True)
    if key.lease_ceiling_micros is None:
        return
    if limit_at_provider is None or limit_at_provider > key.lease_ceiling_micros:
        key.lease_ceiling_micros = limit_at_provider


def observe(s: Session, provider: str, states: list[tuple[str, int, int | None]], now: datetime | None = None, *, poll_every: int = 15, poll_longest: int = 300) -> list[int]:
    """Record what the provider says of keys — (ref, cumulative usage, limit) — in one transaction.

    Usage past what was synced becomes usage events (store.provider_sync); a limit someone
    raised at the provider counts as the ceiling (observe_limit). Keys that spent are read
    again in ``poll_every`` seconds; idle ones back off, doubling up to ``poll_longest``.
    Returns the ids of the workspaces with a key near the end of its lease.
    """
    now = now or utcnow()
    refs = [r for r, _, _ in states]
    keys = {k.provider_ref: k for k in s.scalars(select(ApiKey).where(ApiKey.provider == provider, ApiKey.provider_ref.in_(refs)))}
    before = {ref: k.synced_usage_micros for ref, k in keys.items()}
    sync_provider_usage(s, provider, [(ref, usage) for ref, usage, _ in states], now)  # moves the same rows' synced usage
    near: set[int] = set()
    for ref, usage, limit in states:
        key = keys.get(ref)
        if key is None:
            continue
        if key.lease_ceiling_micros is not None and (limit is None or limit > key.lease_ceiling_micros):
            key.lease_ceiling_micros = limit
        spent_since = usage > before.get(ref, usage)
        key.poll_idle_seconds = 0 if spent_since else min(poll_longest, max(poll_every, key.poll_idle_seconds * 2))
        key.poll_after = now + timedelta(seconds=poll_every if spent_since else key.poll_idle_seconds)
        holder = Holder(key.id, key.project_id, key.synced_usage_micros, key.lease_ceiling_micros, key.lease_granted_micros, None)
        if holder.near:
            near.add(key.workspace_id)
    return sorted(near)


def due_for_reading(s: Session, now: datetime | None = None) -> dict[int, list[str]]:
    """The leased keys to read now, by workspace: never read, or their poll time has come."""
    now = now or utcnow()
    rows = s.execute(
        select(ApiKey.workspace_id, ApiKey.provider_ref)
        .where(ApiKey.provider.in_(sorted(LEASED_PROVIDERS)), ApiKey.status != KeyStatus.REVOKED, ApiKey.provider_ref.is_not(None))
        .where((ApiKey.poll_after.is_(None)) | (ApiKey.poll_after <= now))
        .order_by(ApiKey.workspace_id, ApiKey.id)
    )
    out: dict[int, list[str]] = {}
    for workspace_id, ref in rows:
        out.setdefault(workspace_id, []).append(ref)
    return out


def new_periods(s: Session, now: datetime | None = None, within: timedelta = timedelta(minutes=15)) -> list[int]:
    """Workspaces with leased keys where a budget's period began in the last ``within``: their leases grow."""
    from store.periods import period_start

    now = now or utcnow()
    out = []
    for ws in s.scalars(select(Workspace).where(Workspace.status != WorkspaceStatus.DELETED).order_by(Workspace.id)):
        keys = leased_keys(s, ws.id)
        if not keys:
            continue
        periods = {ws.cap_period} | {k.limit_period for k in keys}
        periods |= {p.budget_period for p in s.scalars(select(Project).where(Project.workspace_id == ws.id, Project.budget_micros.is_not(None)))}
        if any(now - period_start(p, now) < within for p in periods if p.value != "none"):
            out.append(ws.id)
    return out


def claim(s: Session, workspace_id: int, holder: str, seconds: float = 60, now: datetime | None = None) -> bool:
    """Hold the workspace's leases for one rebalance; False (and "run again" noted) when another holds them.

    Two rebalances at once could each shrink or raise a key at the provider in the other's
    order and leave the store naming a ceiling below the provider's limit; one at a time,
    they cannot. A holder that dies lets go when its hold lapses.
    """
    now = now or utcnow()
    ws = s.get(Workspace, workspace_id, with_for_update=True)
    if ws.leases_holder not in (None, holder) and ws.leases_held_until is not None and ws.leases_held_until > now:
        ws.leases_again = True
        return False
    ws.leases_holder, ws.leases_held_until, ws.leases_again = holder, now + timedelta(seconds=seconds), False
    return True


def renew(s: Session, workspace_id: int, holder: str, seconds: float = 60, now: datetime | None = None) -> bool:
    ws = s.get(Workspace, workspace_id, with_for_update=True)
    if ws.leases_holder != holder:
        return False
    ws.leases_held_until = (now or utcnow()) + timedelta(seconds=seconds)
    return True


def let_go(s: Session, workspace_id: int, holder: str) -> bool:
    """Release the hold; True when another rebalance was asked for while it was held (run again)."""
    ws = s.get(Workspace, workspace_id, with_for_update=True)
    if ws.leases_holder != holder:
        return False
    again, ws.leases_holder, ws.leases_held_until, ws.leases_again = ws.leases_again, None, None, False
    return again


def first_lease(s: Session, key: ApiKey) -> None:
    """A key just made on a leased provider can spend nothing yet (it was made with limit 0):
    its first lease, and its project's guardrail, follow at once."""
    if key.provider not in LEASED_PROVIDERS:
        return
    key.lease_ceiling_micros, key.lease_granted_micros = 0, 0
    outbox.emit(s, ActionKind.REBALANCE_LEASES, workspace_id=key.workspace_id)
    outbox.emit(s, ActionKind.APPLY_MODEL_POLICY, workspace_id=key.workspace_id, payload={"project_id": key.project_id})
