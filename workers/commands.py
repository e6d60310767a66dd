"""Slash commands carried out by a worker and answered through the command's response_url.

The web process acks a command at once and hands it here (``hand_off``), so Slack's
3-second window never waits on the store. A command runs at most once: a message that
comes back after its worker died part-way is not run again, since the first run may
already have committed (credits added twice would be money made up); the person is told
to look before asking again. With the queue unreachable the web process answers in the
ack as before, so a command is never left without an answer it could have had.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Protocol

import dramatiq
import httpx

from bot import texts
from bot.blocks.common import code
from store.types import utcnow
from workers.runtime import runtime

log = logging.getLogger(__name__)


class Asking(Protocol):
    """Who asked, where (``bot.context.Asker``)."""

    team_id: str
    user_id: str
    channel_id: str | None

#: a command older than this is not carried out: its asker has moved on (and Slack's
#: response_url lasts 30 minutes)
STALE_AFTER = 300
#: after the queue failed to take a command, answer in the ack for this long without trying it
QUEUE_BACKOFF = 5.0
ANSWER_TRIES = 3

_queue_down_until = 0.0
_lock = threading.Lock()


# Priority 0: fetched commands go before fetched actions (workers.actors.ACTION_PRIORITY).
@dramatiq.actor(queue_name="commands", priority=0, max_retries=0, time_limit=120_000)
def run_command(command: str, team_id: str, user_id: str, channel_id: str | None, text: str, response_url: str, asked_at: float, delivery: str) -> None:
    rt = runtime()
    shown = code(f"{command} {text}".strip()[:80])
    if not _first_delivery(delivery):
        answer(response_url, rt.commands.notice(texts.INTERRUPTED.format(command=shown)))
        return
    if utcnow().timestamp() - asked_at > STALE_AFTER:
        answer(response_url, rt.commands.notice(texts.TOO_LATE.format(command=shown)))
        return
    body = rt.commands.carry_out(command, team_id, user_id, channel_id, text)
    if body is None:
        log.warning("no handler for command %r", command[:40])
        return
    answer(response_url, body)


def _first_delivery(delivery: str) -> bool:
    """False when this command was handed to a worker before (one that died before finishing)."""
    client = getattr(dramatiq.get_broker(), "client", None)  # Redis; the in-process broker never redelivers
    if client is None:
        return True
    return bool(client.set(f"purser:command:{delivery}", 1, nx=True, ex=3600))


def answer(response_url: str, body: dict) -> None:
    """Post the answer where Slack asked for it; retried a little, since the command itself is not run again."""
    for attempt in range(ANSWER_TRIES):
        try:
            r = httpx.post(response_url, json=body, timeout=5)
            if r.status_code < 400:
                return
            wait = float(r.headers.get("Retry-After") or 2**attempt) if r.status_code == 429 or r.status_code >= 500 else None
            if wait is None:
                log.warning("Slack refused a command's answer: %s %s", r.status_code, r.text[:100])
                return
        except httpx.HTTPError as exc:
            wait = 2**attempt
            log.warning("could not post a command's answer (%s); trying again", type(exc).__name__)
        if attempt + 1 < ANSWER_TRIES:
            time.sleep(min(wait, 10))
    log.warning("gave up posting a command's answer after %d tries", ANSWER_TRIES)


def hand_off(command: str, asker: Asking, text: str, response_url: str | None) -> bool:
    """Send a command to the workers; False (answer it in the ack) when there is nowhere to answer or no queue."""
    global _queue_down_until
    if not response_url or time.monotonic() < _queue_down_until:
        return False
    try:
        run_command.send(command, asker.team_id, asker.user_id, asker.channel_id, text, response_url, utcnow().timestamp(), uuid.uuid4().hex)
        return True
    except Exception as exc:
        with _lock:
            _queue_down_until = time.monotonic() + QUEUE_BACKOFF
        log.warning("the queue did not take a command (%s); answering in the ack for %.0f s", type(exc).__name__, QUEUE_BACKOFF)
        return False


ACTORS = [run_command]
