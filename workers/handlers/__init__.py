"""One function per outbox action kind: ``handler(runtime, claimed_action)``.

Each does its outside work (provider, Slack) first and then, in one store
transaction, records the result and completes the action, so a retry after any
failure finds either nothing done or everything done.
"""

from __future__ import annotations

from typing import Callable

from sqlalchemy.orm import Session

from store import outbox
from store.outbox import Claimed


def completes(a: Claimed) -> Callable[[Session], None]:
    """For ``Slack.post``/``dm``'s ``also``: the action completes in the transaction that stores its last message's ts."""
    return lambda s: outbox.complete(s, a.id)
