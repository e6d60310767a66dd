"""Keeping the leases of running actions alive, so that only a dead worker's lease lapses.

A claim holds an action for one lease. A handler that runs longer — a slow provider, a
long Retry-After, a busy database — would otherwise lose it while still at work, and the
sweeper would hand the action to a second worker: two provider keys made, one deleted by
the other's orphan sweep. One thread per process renews every held lease a third of a
lease apart; a worker that dies stops renewing, and its leases lapse as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from store import outbox
from store.db import Database

log = logging.getLogger(__name__)


class LeaseKeeper:
    def __init__(self) -> None:
        self._held: dict[str, tuple[Database, int]] = {}  # action id -> its store, the attempt whose lease it is
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def kept(self, db: Database, claimed: outbox.Claimed) -> Iterator[None]:
        with self._lock:
            self._held[claimed.id] = (db, claimed.attempts)
            if self._thread is None:
                self._thread = threading.Thread(target=self._renew_forever, name="lease-keeper", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(claimed.id, None)

    def _renew_forever(self) -> None:
        while True:
            time.sleep(outbox.LEASE.total_seconds() / 3)
            with self._lock:
                held = list(self._held.items())
            for action_id, (db, attempt) in held:
                try:
                    db.run(outbox.renew, action_id, attempt)
                except Exception as exc:  # the store away: the lease may lapse, and the sweeper hands the action out again
                    log.warning("could not renew the lease of action %s (%s)", action_id, type(exc).__name__)


LEASES = LeaseKeeper()
