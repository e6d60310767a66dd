"""Carrying out the actions a CLI command committed, at once, whether or not a queue is shared with the workers.

With a Redis URL the actions go to the queue the workers read, as the web process's do.
Without it no worker can hear of them (``purser run``'s in-process workers have a queue of
their own), and the clock's sweep would only find them half a minute later: a budget
crossing recorded with ``purser usage record`` would be announced late. So the command
carries them out itself, before it exits, through the same handlers and the same outbox
claims as a worker — a worker that claims one first simply wins.
"""

from __future__ import annotations

import logging
from typing import Callable

from dramatiq import Retry

from store.db import Database
from store.outbox import NewAction
from store.types import utcnow
from workers.actors import HANDLERS, enqueue
from workers.perform import perform
from workers.runtime import Runtime

log = logging.getLogger(__name__)

#: follow-ups of follow-ups stop somewhere; what is left waits for the sweep
MOST = 200


class Inline:
    """Collects what each commit emits (``db.on_new_actions``) and carries it out on ``drain()``."""

    def __init__(self, db: Database, make_runtime: Callable[[Database], Runtime]) -> None:
        self.db, self.make_runtime = db, make_runtime
        self.pending: list[NewAction] = []
        db.on_new_actions(self.pending.extend)

    def drain(self) -> int:
        """Carry out every due action collected so far, and what they emit in turn. Returns how many ran."""
        if not self.pending:
            return 0
        rt = self.make_runtime(self.db)
        ran = 0
        while self.pending and ran < MOST:
            action = self.pending.pop(0)
            if action.run_after > utcnow():  # a retirement a day away waits in the store
                continue
            try:
                perform(HANDLERS[action.kind], action.id, rt)
            except Retry:  # released with its retry time: the workers' sweep takes it then
                log.info("action %s (%s) will be retried by the workers", action.id, action.kind)
            ran += 1
        return ran


def hand_over(db: Database, redis_url: str | None, make_runtime: Callable[[Database], Runtime]) -> Inline | None:
    """The queue when there is one to share; else an ``Inline`` for the command to drain, on ``make_runtime(db)``."""
    if redis_url:
        db.on_new_actions(enqueue)
        return None
    return Inline(db, make_runtime)
