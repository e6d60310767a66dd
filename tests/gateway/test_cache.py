"""The key cache: a change announced during a load is not outlived by what the load read, and keys loaded together expire apart."""

from __future__ import annotations

from gateway import cache as cache_module
from gateway.cache import LONG_TTL, REFRESH_AT, KeyCache
from store import budgets
from store.authz import load_key_state
from store.secrets import hash_secret
from tests import factories as f


def a_key(db):
    ws = f.workspace(db, "alpha", "development")
    dev = f.member(db, ws)
    f.project(db, ws, "search")
    _, secret = f.key(db, ws, dev, "bot", project="search")
    return ws, hash_secret(secret)


def test_a_pause_announced_while_a_key_loads_is_obeyed_at_the_next_check(db):
    ws, secret_hash = a_key(db)
    loads = []

    def load(h):
        state = db.run(load_key_state, h)
        loads.append(state)
        if len(loads) == 1:
            # The pause commits and is announced after this load read the key, before it is kept.
            db.run(budgets.pause_project, f.OPERATOR, ws, "search", "incident")
            cache.invalidate([ws])
        return state

    cache = KeyCache(load)
    cache.invalidation_live = True
    assert cache.get(secret_hash).project_paused is None  # this check raced the pause
    assert cache.get(secret_hash).project_paused == "incident"
    assert cache.get(secret_hash).project_paused == "incident" and len(loads) == 2  # and that one is kept


def test_keys_loaded_together_are_reloaded_spread_over_the_second_half_of_the_long_ttl(db):
    ws, secret_hash = a_key(db)
    state = db.run(load_key_state, secret_hash)
    now = [0.0]
    loaded = []
    cache = KeyCache(lambda h: loaded.append(h) or state, clock=lambda: now[0], background=lambda refresh: refresh())
    cache.invalidation_live = True
    hashes = [f"{n:064x}" for n in range(200)]

    def reloads_at(t: float) -> int:
        loaded.clear()
        now[0] = t
        for h in hashes:
            cache.get(h)
        return len(loaded)

    assert reloads_at(0.0) == 200
    assert reloads_at(LONG_TTL / 2 * REFRESH_AT - 0.01) == 0  # nothing is due before the shortest TTL's refresh point
    spread = reloads_at(LONG_TTL * 0.6)
    assert 20 < spread < 180  # about half, not all at once
    assert reloads_at(LONG_TTL) >= 200 - spread  # every one kept from t=0 has been refreshed by its TTL


def test_a_busy_key_is_refreshed_behind_the_checks_not_in_front_of_them(db, monkeypatch):
    ws, secret_hash = a_key(db)
    monkeypatch.setattr(cache_module.random, "random", lambda: 1.0)  # every entry's TTL is LONG_TTL exactly
    now = [0.0]
    loads, queued = [], []
    cache = KeyCache(lambda h: loads.append(now[0]) or db.run(load_key_state, h), clock=lambda: now[0], background=queued.append)
    cache.invalidation_live = True
    assert cache.get(secret_hash) is not None and loads == [0.0]
    db.run(budgets.pause_project, f.OPERATOR, ws, "search", "incident")  # not announced: only a reload can see it
    now[0] = LONG_TTL * (REFRESH_AT - 0.01)
    assert cache.get(secret_hash).project_paused is None and not queued  # not due yet
    now[0] = LONG_TTL * (REFRESH_AT + 0.01)
    assert cache.get(secret_hash).project_paused is None  # answered at once from the cache...
    assert cache.get(secret_hash).project_paused is None
    assert loads == [0.0] and len(queued) == 1  # ...with one reload queued behind the checks
    queued.pop()()
    assert loads == [0.0, now[0]]
    assert cache.get(secret_hash).project_paused == "incident" and not queued


def test_unknown_keys_are_kept_until_any_change_is_announced(db):
    ws, _ = a_key(db)
    made_later = "f" * 64
    now = [0.0]
    loads = []
    cache = KeyCache(lambda h: loads.append(now[0]) or db.run(load_key_state, h), clock=lambda: now[0], background=lambda refresh: refresh())
    cache.invalidation_live = True
    assert cache.get(made_later) is None
    now[0] = 5.0
    assert cache.get(made_later) is None and loads == [0.0]  # kept while changes are announced
    cache.invalidate([ws + 1000])  # a change in any workspace may be this key being made
    assert cache.get(made_later) is None and loads == [0.0, 5.0]
    cache.invalidation_live = False
    now[0] = 5.6
    assert cache.get(made_later) is None and loads == [0.0, 5.0, 5.6]  # unannounced: half a second at most
