"""The dramatiq actors: one per outbox action kind (each takes the action's id), the clock's jobs, and slash commands.

Importing this module binds the actors to the broker from the settings (Redis when
REDIS_URL is set); `dramatiq workers.actors` runs them as the `worker` process.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import Callable

import dramatiq
from dramatiq import Retry
from slack_sdk.errors import SlackApiError

from store import outbox
from store.types import ActionKind, utcnow
from workers import slack_errors
from workers.broker import RETRY_OPTIONS, setup_broker
from workers.handlers import budgets, keys, messages
from workers.leases import LEASES
from workers.providers.base import PermanentProviderError, TransientProviderError
from workers.runtime import Runtime, runtime

log = logging.getLogger(__name__)

if dramatiq.broker.global_broker is None:  # tests and the all-in-one run may have set one already
    setup_broker()

Handler = Callable[[Runtime, outbox.Claimed], None]

#: every action kind the store emits, and what carries it out
HANDLERS: dict[ActionKind, Handler] = {
    ActionKind.PROVISION_KEY: keys.provision_key,
    ActionKind.ROTATE_KEY: keys.rotate_key,
    ActionKind.RETIRE_KEY: keys.retire_key,
    ActionKind.REVOKE_KEY: keys.revoke_key,
    ActionKind.DISABLE_KEY: keys.disable_key,
    ActionKind.ENABLE_KEY: keys.enable_key,
    ActionKind.SYNC_KEY_STATE: keys.sync_key_state,
    ActionKind.NOTIFY_KEY_READY: keys.notify_key_ready,
    ActionKind.PAUSE_PROJECT: budgets.pause_project,
    ActionKind.RESUME_PROJECT: budgets.resume_project,
    ActionKind.PAUSE_WORKSPACE: budgets.pause_workspace,
    ActionKind.RESUME_WORKSPACE: budgets.resume_workspace,
    ActionKind.APPLY_BUDGET: budgets.nothing_at_the_provider,
    ActionKind.APPLY_CAP: budgets.nothing_at_the_provider,
    ActionKind.POST_ALERT: budgets.post_alert,
    ActionKind.ANNOUNCE_ROLLOVER: budgets.announce_rollover,
    ActionKind.REQUEST_OPENED: messages.request_opened,
    ActionKind.REQUEST_DECIDED: messages.request_decided,
    ActionKind.SEND_INVITATION: messages.send_invitation,
    ActionKind.ACTION_FAILED: messages.action_failed,
    ActionKind.REFRESH_AUTHZ: budgets.nothing_at_the_provider,
}

_UNHANDLED = set(ActionKind) - set(HANDLERS)
if _UNHANDLED:  # an action nobody carries out would wait in the outbox for ever
    raise RuntimeError(f"no handler for action kind(s) {sorted(k.value for k in _UNHANDLED)}")

#: A worker takes what it has fetched lowest number first: a person waiting in Slack for a
#: command's answer (priority 0) goes before a backlog of actions.
ACTION_PRIORITY = 10



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


def _action_actor(kind: str, handler: Handler) -> dramatiq.Actor:
    def run(action_id: str) -> None:
        perform(handler, action_id)

    run.__name__ = kind
    run.__qualname__ = kind
    return dramatiq.actor(run, actor_name=kind, queue_name="actions", priority=ACTION_PRIORITY, on_retry_exhausted="action_gave_up", **RETRY_OPTIONS)


ACTION_ACTORS = {kind: _action_actor(kind.value, handler) for kind, handler in HANDLERS.items()}


@dramatiq.actor(queue_name="actions", priority=ACTION_PRIORITY, max_retries=3)
def action_gave_up(message: dict, retry_info: dict) -> None:
    """Retries ran out: mark the action failed so the requester hears about it."""
    action_id = (message.get("args") or [None])[0]
    if action_id:
        error = (message.get("options", {}).get("traceback") or "").strip().splitlines()
        last = error[-1] if error else "it kept failing"
        name, sep, rest = last.partition(": ")
        if sep and "." in name and " " not in name:  # "dramatiq.errors.Retry: …" → what it said
            last = rest
        last = last[:300]
        runtime().db.run(outbox.fail, action_id, f"gave up after {retry_info.get('retries', '?')} tries ({last})")


#: actions due later than this stay in the outbox until the sweeper finds them due
MAX_QUEUE_DELAY_MS = 60_000


def enqueue(actions) -> None:
    """Hand committed actions to the queue (the relay). A rotation's retirement a day away waits in the store."""
    now = utcnow()
    for a in actions:
        actor = ACTION_ACTORS.get(a.kind)
        if actor is None:
            log.error("no actor for action kind %r (action %s)", a.kind, a.id)
            continue
        delay_ms = max(0, int((a.run_after - now).total_seconds() * 1000))
        if delay_ms > MAX_QUEUE_DELAY_MS:
            continue
        actor.send_with_options(args=(a.id,), delay=delay_ms or None)


from workers import commands, maintenance  # noqa: E402  (their actors join ALL below)

ALL = [*ACTION_ACTORS.values(), action_gave_up, *maintenance.ACTORS, *commands.ACTORS]
