"""Quota leases: how much each key may still spend at the provider before Purser hears of it.

OpenRouter enforces a key's own ``limit`` the moment it is reached, whereas Purser learns of
spend only when it reads the keys' usage. So each key on a leased provider gets, as its
limit there, its usage so far plus a *lease*: a share of what remains of the tightest
budget it falls under (its own limit, its project's budget, the workspace cap, the credit
pool). The store keeps each key's *ceiling* — the cumulative usage up to which the
provider may let it spend — and holds one invariant for every budget B:

    Σ over B's keys of (ceiling − usage)  ≤  what remains of B this period

Spend recorded moves usage and the budget's spend by the same amount, so the invariant
survives it; a period rollover or a top-up only grows the right side. A raise is checked
against the invariant and stored *before* the provider is told (crash: the store names a
higher ceiling than the provider's — conservative); a shrink is made at the provider
first and stored after. So the sum of spend under a budget cannot pass it even if every
key spends at once and no sync runs. Leases are whole cents (GRAIN); a budget's last
sub-cent is never leased.

This module is the arithmetic, on figures; store.quota_ledger reads the figures from the
store and keeps the ceilings.
"""

from __future__ import annotations

from dataclasses import dataclass, field


#: providers whose keys are bounded by quota leases (the local provider asks /v1/authz each call)
LEASED_PROVIDERS = frozenset({"openrouter"})
GRAIN = 10_000  # $0.01
#: Leases are handed out in pieces of $0.25 (and one piece holding what does not divide), so
#: what remains of a budget is never scattered over keys in slivers too small for a call.
CHUNK = 25  # grains
BUSY_WEIGHT = 4  # a key that used half its last lease gets four times an idle key's share
NEAR = 4  # a key with less than a quarter of its lease left is topped up at once


# -- the plan: pure, from figures ------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """A key as the plan sees it. Money in micro-dollars; ``ceiling`` None: unbounded."""

    key_id: int
    project_id: int | None
    usage: int
    ceiling: int | None
    granted: int | None
    limit_left: int | None  # what remains of the key's own limit this period
    usable: bool = True

    @property
    def outstanding(self) -> int | None:
        return None if self.ceiling is None else max(0, self.ceiling - self.usage)

    @property
    def busy(self) -> bool:
        return bool(self.granted) and self.outstanding is not None and self.outstanding * 2 <= self.granted

    @property
    def near(self) -> bool:
        return bool(self.granted) and self.outstanding is not None and self.outstanding * NEAR < self.granted


@dataclass(frozen=True)
class Room:
    """What remains this period of the budgets above the keys (None: no such budget)."""

    workspace_left: int | None
    project_left: dict[int, int | None] = field(default_factory=dict)


def split(total: int, caps: list[int | None], weights: list[int], chunk: int = 1) -> list[int]:
    """Share ``total`` grains among children by weight, none above its cap (None: no cap).

    Shares are whole ``chunk``s; what does not divide goes to the heaviest child with room
    for it. Whatever a capped child cannot take goes to the others; chunks that do not
    divide go one at a time to the heaviest children first. The shares never add up to
    more than ``total``, and add up to all of it where the caps have room.
    """
    shares = [0] * len(caps)
    room = lambda i: None if caps[i] is None else caps[i] - shares[i]  # noqa: E731
    fits = lambda i, n: room(i) is None or room(i) >= n  # noqa: E731
    heaviest = sorted(range(len(caps)), key=lambda i: -weights[i])
    left = total // chunk
    open_ = [i for i in range(len(caps)) if fits(i, chunk)]
    while left > 0 and open_:
        weight = sum(weights[i] for i in open_)
        given = 0
        for i in open_:
            want = left * weights[i] // weight
            take = want if room(i) is None else min(want, room(i) // chunk)
            shares[i] += take * chunk
            given += take
        if given == 0:
            for i in (j for j in heaviest if j in open_):
                if given == left:
                    break
                if fits(i, chunk):
                    shares[i] += chunk
                    given += 1
        left -= given
        open_ = [i for i in open_ if fits(i, chunk)]
    rest = total - sum(shares)
    for i in heaviest:  # the odd grains, and what capped children left in pieces smaller than a chunk
        if rest == 0:
            break
        take = rest if room(i) is None else min(rest, room(i))
        shares[i] += take
        rest -= take
    return shares


def _grains(micros: int | None) -> int | None:
    return None if micros is None else max(0, micros) // GRAIN


def _sum(values: list[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(values)


def plan(holders: list[Holder], room: Room) -> dict[int, int | None]:
    """Each key's target lease in micro-dollars (None: unbounded), within every budget it falls under."""
    weight = {h.key_id: BUSY_WEIGHT if h.busy else 1 for h in holders}
    cap = {h.key_id: 0 if not h.usable else _grains(h.limit_left) for h in holders}
    lease: dict[int, int | None] = {}
    groups: dict[int | None, list[Holder]] = {}
    for h in holders:
        groups.setdefault(h.project_id, []).append(h)

    def within_project(project_id: int, grains: int | None) -> None:
        members = groups[project_id]
        if grains is None:
            lease.update({h.key_id: cap[h.key_id] for h in members})
            return
        for h, share in zip(members, split(grains, [cap[h.key_id] for h in members], [weight[h.key_id] for h in members], CHUNK)):
            lease[h.key_id] = share

    project_cap = {}
    for project_id, members in groups.items():
        if project_id is None:
            continue
        own = _grains(room.project_left.get(project_id))
        below = _sum([cap[h.key_id] for h in members])
        project_cap[project_id] = below if own is None else own if below is None else min(own, below)

    top = _grains(room.workspace_left)
    if top is None:
        for project_id, members in groups.items():
            if project_id is None:
                lease.update({h.key_id: cap[h.key_id] for h in members})
            else:
                within_project(project_id, _grains(room.project_left.get(project_id)))
    else:
        children: list[tuple[str, int | None, int]] = []  # (what, cap, weight)
        for project_id, members in groups.items():
            if project_id is None:
                children += [(f"k{h.key_id}", cap[h.key_id], weight[h.key_id]) for h in members]
            else:
                children.append((f"p{project_id}", project_cap[project_id], sum(weight[h.key_id] for h in members)))
        shares = split(top, [c for _, c, _ in children], [w for _, _, w in children], CHUNK)
        for (what, _, _), share in zip(children, shares):
            if what[0] == "k":
                lease[int(what[1:])] = share
            else:
                within_project(int(what[1:]), share)
    return {k: None if v is None else v * GRAIN for k, v in lease.items()}


def headroom(holders: list[Holder], room: Room) -> dict[str, int]:
    """What each budget above the keys can still lease: what remains of it, less the leases out.

    Negative when a budget was lowered below the leases already out (the shrinks mend it);
    zero while an unbounded key falls under it (nothing is leased until it is bounded).
    """
    out: dict[str, int] = {}

    def take(name: str, left: int | None, members: list[Holder]) -> None:
        if left is None:
            return
        leased = _sum([h.outstanding for h in members])
        out[name] = min(0, left) if leased is None else left - leased

    take("workspace", room.workspace_left, holders)
    for project_id, left in room.project_left.items():
        take(f"project:{project_id}", left, [h for h in holders if h.project_id == project_id])
    return out


def grant(holders: list[Holder], room: Room, wanted: dict[int, int | None]) -> dict[int, int | None]:
    """The ceilings that may be stored for the raises in ``wanted`` (key id → target ceiling).

    Each raise gets what it asks for or what the tightest budget above it can still lease,
    whichever is less; a raise to unbounded only where nothing bounds the key. This is the
    check that keeps the invariant, whatever plan (or stale plan) asked for the raise.
    """
    free = headroom(holders, room)
    out: dict[int, int | None] = {}
    for h in holders:
        if h.key_id not in wanted:
            continue
        target, current = wanted[h.key_id], h.outstanding
        bounds = [b for b in ("workspace", f"project:{h.project_id}") if b in free and (b == "workspace" or h.project_id is not None)]
        if target is None:
            if not bounds and h.limit_left is None and h.usable:
                out[h.key_id] = None
            continue
        if current is None or not h.usable:
            continue  # bounding an unbounded key is a shrink; an unusable key gets nothing
        limits = [target - h.usage - current] + [free[b] for b in bounds]
        if h.limit_left is not None:
            limits.append(h.limit_left - current)  # its own limit bounds its whole lease
        more = min(limits)
        if more <= 0:
            continue
        out[h.key_id] = h.usage + current + more
        for b in bounds:
            free[b] -= more
    return out
