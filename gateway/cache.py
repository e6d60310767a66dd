"""Key states by secret hash, in process: fast, and fresh within a second.

With Redis, every process that commits a change publishes the workspaces it touched
and every web process drops their entries at once; entries then live up to
``LONG_TTL``, and a busy one is refreshed behind the checks before it expires. Without
Redis, or while the subscription is down, entries live at most ``SHORT_TTL`` (half a
second), so a pause or a revocation is obeyed within a second regardless.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from store.authz import KeyState

SHORT_TTL = 0.5  # well inside the promised second, load time included
LONG_TTL = 30.0
#: past this share of its TTL, a hit is answered from the cache while a fresh copy loads behind it,
#: so a busy key never makes a check wait for the store (what it serves is never older than its TTL)
REFRESH_AT = 0.8
MAX_ENTRIES = 50_000

_MISSING = object()
log = logging.getLogger(__name__)

Background = Callable[[Callable[[], None]], None]


class KeyCache:
    def __init__(self, load: Callable[[str], KeyState | None], *, max_entries: int = MAX_ENTRIES, clock=time.monotonic, background: Background | None = None) -> None:
        self._load = load
        self._entries: OrderedDict[str, tuple[float, KeyState | None, float]] = OrderedDict()  # (loaded at, state, its long TTL)
        self._by_workspace: dict[int, set[str]] = {}
        self._unknown: set[str] = set()  # hashes kept as "no such key"
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()
        self._generation = 0  # moves on every invalidation: a load that overlapped one is not kept
        self._max = max_entries
        self._clock = clock
        self._background = background or _one_thread()
        self.invalidation_live = False  # set by the subscriber while it is connected

    def get(self, secret_hash: str) -> KeyState | None:
        now = self._clock()
        fresh = refresh = False
        with self._lock:
            hit = self._entries.get(secret_hash, _MISSING)
            if hit is not _MISSING:
                loaded_at, state, long_ttl = hit
                # Without announcements, nothing is kept past half a second. With them, unknown
                # keys too are kept long: making a key commits and announces, which drops them all.
                ttl = long_ttl if self.invalidation_live else SHORT_TTL
                age = now - loaded_at
                fresh = age < ttl
                if fresh:
                    self._entries.move_to_end(secret_hash)
                    refresh = self.invalidation_live and age >= ttl * REFRESH_AT and secret_hash not in self._refreshing
                    if refresh:
                        self._refreshing.add(secret_hash)
            generation = self._generation
        if fresh:
            if refresh:
                self._background(lambda: self._refresh(secret_hash))
            return state
        state = self._load(secret_hash)
        self._keep(secret_hash, state, generation, now)
        return state

    def _refresh(self, secret_hash: str) -> None:
        try:
            with self._lock:
                generation = self._generation
            now = self._clock()
            self._keep(secret_hash, self._load(secret_hash), generation, now)
        except Exception:  # the entry stays until its TTL; the next check past it loads inline
            log.exception("could not refresh a cached key")
        finally:
            with self._lock:
                self._refreshing.discard(secret_hash)

    def _keep(self, secret_hash: str, state: KeyState | None, generation: int, now: float) -> None:
        with self._lock:
            if generation != self._generation:
                # A change was announced while we read: what we read may predate it, and kept
                # for LONG_TTL it would outlive the announcement. Answer with it, keep nothing.
                return
            # Spread over [LONG_TTL / 2, LONG_TTL], so keys loaded together (a restart, a
            # workspace's invalidation) are not all reloaded together LONG_TTL later.
            self._entries[secret_hash] = (now, state, LONG_TTL * (0.5 + random.random() / 2))
            self._entries.move_to_end(secret_hash)
            if state is None:
                self._unknown.add(secret_hash)
            else:
                self._unknown.discard(secret_hash)
                self._by_workspace.setdefault(state.workspace_id, set()).add(secret_hash)
            while len(self._entries) > self._max:
                old_hash, (_, old, _) = self._entries.popitem(last=False)
                if old is None:
                    self._unknown.discard(old_hash)
                else:
                    self._by_workspace.get(old.workspace_id, set()).discard(old_hash)

    def invalidate(self, workspace_ids) -> None:
        with self._lock:
            self._generation += 1
            for workspace_id in workspace_ids:
                for secret_hash in self._by_workspace.pop(int(workspace_id), set()):
                    self._entries.pop(secret_hash, None)
            # A change anywhere may be a key made: what was unknown may exist now.
            for secret_hash in self._unknown:
                self._entries.pop(secret_hash, None)
            self._unknown.clear()

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._by_workspace.clear()
            self._unknown.clear()


def _one_thread() -> Background:
    """Refreshes run one at a time on a thread of their own, made when first needed."""
    pool: list[ThreadPoolExecutor] = []
    made = threading.Lock()

    def submit(fn: Callable[[], None]) -> None:
        with made:
            if not pool:
                pool.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="key-refresh"))
        pool[0].submit(fn)

    return submit
