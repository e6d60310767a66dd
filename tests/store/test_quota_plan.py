"""Quota leases, the arithmetic: shares within caps, plans within budgets, raises that keep the invariant."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from store.quota import GRAIN, Holder, Room, grant, plan, split

caps_st = st.lists(st.one_of(st.none(), st.integers(0, 500)), min_size=1, max_size=12)


@given(st.integers(0, 5000), caps_st, st.data(), st.sampled_from([1, 5, 25]))
def test_split_never_gives_more_than_there_is_nor_past_a_cap_and_wastes_nothing(total, caps, data, chunk):
    weights = data.draw(st.lists(st.integers(1, 9), min_size=len(caps), max_size=len(caps)))
    shares = split(total, caps, weights, chunk)
    assert sum(shares) <= total
    assert all(c is None or s <= c for s, c in zip(shares, caps))
    room = None if any(c is None for c in caps) else sum(caps)
    assert sum(shares) == (total if room is None else min(total, room))


def test_split_gives_the_last_grains_to_the_busiest():
    assert split(3, [None] * 5, [1, 4, 1, 4, 1]) == [0, 2, 0, 1, 0]
    assert split(2, [None] * 3, [1, 4, 1]) == [0, 2, 0]
    assert split(2, [0, None, None], [9, 1, 1]) == [0, 1, 1]


def test_split_in_chunks_leaves_one_odd_share_and_no_slivers():
    # $1.10 over three keys in $0.25 pieces: one of them also holds the odd $0.10
    assert split(110, [None] * 3, [1, 1, 1], 25) == [60, 25, 25]
    # $0.30 over four: one piece and the odd cents to the busiest, none to the rest
    assert split(30, [None] * 4, [1, 4, 1, 1], 25) == [0, 30, 0, 0]


@given(st.integers(0, 400).map(lambda n: n * 5), st.integers(1, 20), st.data())
def test_budgets_and_calls_in_five_cent_steps_leave_every_share_spendable(total, n, data):
    weights = data.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    assert all(share % 5 == 0 for share in split(total, [None] * n, weights, 25))


@st.composite
def workspaces(draw):
    projects = draw(st.lists(st.one_of(st.none(), st.integers(0, 200_000_000)), max_size=4))
    holders = []
    for key_id in range(1, draw(st.integers(1, 15)) + 1):
        project = draw(st.one_of(st.none(), st.integers(0, len(projects) - 1))) if projects else None
        usage = draw(st.integers(0, 50_000_000))
        ceiling = draw(st.one_of(st.none(), st.integers(0, 30_000_000).map(lambda extra: usage + extra)))
        holders.append(
            Holder(
                key_id,
                project,
                usage,
                ceiling,
                draw(st.one_of(st.none(), st.integers(0, 30_000_000))),
                draw(st.one_of(st.none(), st.integers(-1_000_000, 40_000_000))),
                draw(st.booleans()),
            )
        )
    room = Room(draw(st.one_of(st.none(), st.integers(0, 300_000_000))), {i: left for i, left in enumerate(projects)})
    return holders, room


def leased(holders, room) -> dict[str, int | None]:
    """Each budget's leases out (None: an unbounded key under it)."""

    def total(members):
        out = [h.outstanding for h in members]
        return None if any(o is None for o in out) else sum(out)

    sums = {"workspace": total(holders)} if room.workspace_left is not None else {}
    for project, left in room.project_left.items():
        if left is not None:
            sums[f"project:{project}"] = total([h for h in holders if h.project_id == project])
    return sums


def left_of(room, name):
    return room.workspace_left if name == "workspace" else room.project_left[int(name.split(":")[1])]


@given(workspaces())
def test_a_plan_never_leases_more_than_remains_of_any_budget(ws):
    holders, room = ws
    targets = plan(holders, room)
    for h in holders:
        lease = targets[h.key_id]
        if lease is not None:
            assert lease % GRAIN == 0 and lease >= 0
            if h.limit_left is not None:
                assert lease <= max(0, h.limit_left)
            if not h.usable:
                assert lease == 0
        else:
            assert h.limit_left is None and room.workspace_left is None
            assert h.project_id is None or room.project_left.get(h.project_id) is None
    if room.workspace_left is not None:
        assert sum(targets.values()) <= room.workspace_left
    for project, left in room.project_left.items():
        if left is not None:
            assert sum(targets[h.key_id] for h in holders if h.project_id == project) <= left


@settings(max_examples=300)
@given(workspaces(), st.data())
def test_raises_granted_never_push_a_budget_further_past_what_remains(ws, data):
    holders, room = ws
    wanted = {h.key_id: data.draw(st.one_of(st.none(), st.integers(0, 80_000_000))) for h in holders if data.draw(st.booleans())}
    granted = grant(holders, room, wanted)
    before = leased(holders, room)
    after_holders = [
        Holder(h.key_id, h.project_id, h.usage, granted.get(h.key_id, h.ceiling) if h.key_id in granted else h.ceiling, h.granted, h.limit_left, h.usable)
        for h in holders
    ]
    after = leased(after_holders, room)
    for name, out in after.items():
        if out is None:
            assert before[name] is None, f"{name}: a raise made a bounded budget's key unbounded"
            continue
        left = left_of(room, name)
        # within the budget, or (where it was already past, a budget lowered) no further past it
        assert out <= max(left, before[name] if before[name] is not None else left)
    for h in after_holders:
        if h.key_id in granted and h.limit_left is not None and h.outstanding is not None:
            assert h.outstanding <= max(h.limit_left, next(x for x in holders if x.key_id == h.key_id).outstanding or 0)


def test_an_unusable_key_is_never_raised_and_a_plan_gives_it_nothing():
    holders = [Holder(1, None, 0, 0, 0, None, usable=False), Holder(2, None, 0, 0, 0, None)]
    room = Room(10_000_000)
    assert plan(holders, room) == {1: 0, 2: 10_000_000}
    assert grant(holders, room, {1: 5_000_000, 2: 5_000_000}) == {2: 5_000_000}


def test_busy_keys_get_four_times_an_idle_keys_share():
    busy = Holder(1, None, 9_000_000, 10_000_000, 4_000_000, None)  # used 3 of its 4 dollars
    idle = Holder(2, None, 0, 4_000_000, 4_000_000, None)
    assert busy.busy and not idle.busy
    assert plan([busy, idle], Room(5_000_000)) == {1: 4_000_000, 2: 1_000_000}


def test_a_new_period_is_seen_at_month_start_new_year_and_a_leap_day_and_not_mid_month(sqlite_db):
    """Each instant is given, not read from the machine: the answer would otherwise depend on today's date."""
    from datetime import datetime, timezone

    from store.models import ApiKey
    from store.quota_ledger import new_periods
    from store.types import Period
    from tests import factories as f

    db = sqlite_db
    ws = f.workspace(db, "leased", "development", provider="openrouter")
    key, _ = f.key(db, ws, f.member(db, ws), "bot")

    def at_openrouter(s, period=Period.MONTHLY):
        k = s.get(ApiKey, key)
        k.provider, k.provider_ref, k.limit_period = "openrouter", "h" * 64, period

    db.run(at_openrouter)
    utc = lambda *a: datetime(*a, tzinfo=timezone.utc)  # noqa: E731
    assert db.run(new_periods, utc(2027, 3, 1, 0, 5)) == [ws]  # a month began five minutes ago
    assert db.run(new_periods, utc(2027, 1, 1, 0, 0, 30)) == [ws]  # and a year
    assert db.run(new_periods, utc(2027, 3, 15, 12)) == []
    assert db.run(new_periods, utc(2027, 4, 30, 23, 59, 59)) == []
    db.run(at_openrouter, Period.DAILY)
    assert db.run(new_periods, utc(2028, 2, 29, 0, 1)) == [ws]  # a day began: the leap day
    assert db.run(new_periods, utc(2028, 2, 29, 12)) == []
