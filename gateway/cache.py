"""Key states by secret hash, in process: fast, and fresh within a second.

With Redis, every process that commits a change publishes the workspaces it touched
and every web process drops their entries at once; entries then live up to
``LONG_TTL``. Without Redis, or while the subscription is down, entries live at most
``SHORT_TTL`` (half a second), so a pause or a revocation is obeyed within a second regardless.
"""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from typing import Callable

from store.authz import KeyState

SHORT_TTL = 0.5  # well inside the promised second, load time included
LONG_TTL = 30.0
MAX_ENTRIES = 50_000

_MISSING = object()


class KeyCache:
    def __init__(self, load: Callable[[str], KeyState | None], *, max_entries: int = MAX_ENTRIES, clock=time.monotonic) -> None:
        self._load = load
        self._entries: OrderedDict[str, tuple[float, KeyState | None, float]] = OrderedDict()  # (loaded at, state, its long TTL)
        self._by_workspace: dict[int, set[str]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # moves on every invalidation: a load that overlapped one is not kept
        self._max = max_entries
        self._clock = clock
        self.invalidation_live = False  # set by the subscriber while it is connected

    def get(self, secret_hash: str) -> KeyState | None:
        now = self._clock()
        with self._lock:
            hit = self._entries.get(secret_hash, _MISSING)
            if hit is not _MISSING:
                loaded_at, state, long_ttl = hit
                # Unknown keys are never kept long: a key made a moment ago must work at once.
                ttl = long_ttl if self.invalidation_live and state is not None else SHORT_TTL
                if now - loaded_at < ttl:
                    self._entries.move_to_end(secret_hash)
                    return state
            generation = self._generation
        state = self._load(secret_hash)
        with self._lock:
            if generation != self._generation:
                # A change was announced while we read: what we read may predate it, and kept
                # for LONG_TTL it would outlive the announcement. Answer with it, keep nothing.
                return state
            # Spread over [LONG_TTL / 2, LONG_TTL], so keys loaded together (a restart, a
            # workspace's invalidation) are not all reloaded together LONG_TTL later.
            self._entries[secret_hash] = (now, state, LONG_TTL * (0.5 + random.random() / 2))
            self._entries.move_to_end(secret_hash)
            if state is not None:
                self._by_workspace.setdefault(state.workspace_id, set()).add(secret_hash)
            while len(self._entries) > self._max:
                old_hash, (_, old, _) = self._entries.popitem(last=False)
                if old is not None:
                    self._by_workspace.get(old.workspace_id, set()).discard(old_hash)
        return state

    def invalidate(self, workspace_ids) -> None:
        with self._lock:
            self._generation += 1
            for workspace_id in workspace_ids:
                for secret_hash in self._by_workspace.pop(int(workspace_id), set()):
                    self._entries.pop(secret_hash, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._by_workspace.clear()
