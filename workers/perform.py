"""Carrying out one outbox action: claim it, run its handler under a kept lease, and record how it went.

Shared by the actors (``workers.actors``), the CLI's inline run (``workers.inline``) and a
handler that sends another action's message first (``workers.handlers.keys``).
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Callable

from dramatiq import Retry
from slack_sdk.errors import SlackApiError

from bot.slack_client import SlackAccessLost

from store import outbox
from store.types import utcnow
from workers import slack_errors
from workers.broker import RETRY_OPTIONS
from workers.leases import LEASES
from workers.providers.base import PermanentProviderError, TransientProviderError
from workers.runtime import Runtime, runtime

log = logging.getLogger(__name__)

Handler = Callable[[Runtime, outbox.Claimed], None]


def perform(handler: Handler, action_id: str, rt: Runtime | None = None) -> None:
    """Claim the action, carry it out, and record how it went; ``rt``: other than the process's runtime (``workers.inline``)."""
    rt = rt or runtime()
    claimed = rt.db.run(outbox.claim, action_id)
    if claimed is None:
        return  # done already, not due yet, or another worker holds it
    try:
        with LEASES.kept(rt.db, claimed):  # however long it takes, no second worker takes it over
            handler(rt, claimed)
    except PermanentProviderError as exc:
        log.warning("action %s (%s) failed for good: %s", action_id, claimed.kind, exc)
        rt.db.run(outbox.fail, action_id, str(exc))
    except TransientProviderError as exc:
        retry_later(rt, claimed, str(exc), exc.retry_after)
    except SlackAccessLost as exc:  # said once, when Slack told; each action just ends
        log.info("action %s (%s) not carried out: %s", action_id, claimed.kind, exc)
        rt.db.run(outbox.fail, action_id, str(exc))
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown")
        if error in slack_errors.PERMANENT:
            log.warning("action %s (%s) failed for good: Slack answered %s", action_id, claimed.kind, error)
            rt.db.run(outbox.fail, action_id, slack_errors.explain(error))
            return
        retry_later(rt, claimed, f"Slack answered {error}", _slack_retry_after(exc))
    except Exception as exc:
        log.warning("action %s (%s) failed; it will be retried", action_id, claimed.kind, exc_info=True)
        retry_later(rt, claimed, f"{type(exc).__name__}: {exc}", None)


def retry_later(rt: Runtime, claimed: outbox.Claimed, reason: str, retry_after: float | None) -> None:
    """Give the lease back with the action due again only when its retry is, then have dramatiq retry it then.

    The action's own run_after moves to the retry's time: a sweep or a duplicate delivery
    during the wait finds it not due, so a provider's Retry-After is never cut short.
    """
    delay = retry_delay_ms(claimed.attempts, retry_after)
    rt.db.run(outbox.release, claimed.id, retry_at=utcnow() + timedelta(milliseconds=delay))
    raise Retry(reason, delay=delay)


def _slack_retry_after(exc: SlackApiError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(value[0] if isinstance(value, list) else value))
    except (TypeError, ValueError):
        return None


def retry_delay_ms(attempts: int, retry_after: float | None) -> int:
    """The usual doubling backoff, never shorter than the provider's Retry-After.

    Taking a short Retry-After at its word on every try would spend all the retries of an
    action in a few seconds of a provider's outage, and fail a key that a minute's patience
    would have made.
    """
    backoff = min(RETRY_OPTIONS["min_backoff"] * 2 ** max(0, attempts - 1), RETRY_OPTIONS["max_backoff"])
    backoff = int(backoff * random.uniform(0.8, 1.2))  # actions refused together do not all come back together
    return max(backoff, int(retry_after * 1000)) if retry_after is not None else backoff
