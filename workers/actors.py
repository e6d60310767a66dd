"""The dramatiq actors of the outbox: one per action kind (each takes the action's id), and the relay that enqueues them.

The clock's jobs are in ``workers.maintenance`` and slash commands in ``workers.commands``;
``workers.registry`` gathers all of them and moves them onto the process's broker.
"""

from __future__ import annotations

import logging

import dramatiq

from store import outbox
from store.types import ActionKind, utcnow
from workers.broker import RETRY_OPTIONS
from workers.handlers import budgets, charts, directory, keys, leaks, lease_notices, linked, messages, reviews, scim, spikes, statements
from workers.perform import Handler, perform
from workers.runtime import runtime

log = logging.getLogger(__name__)

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
    ActionKind.APPLY_BUDGET: linked.rebalance_leases,
    ActionKind.APPLY_CAP: linked.apply_cap,
    ActionKind.POST_ALERT: budgets.post_alert,
    ActionKind.POST_SPIKE: spikes.post_spike,
    ActionKind.ANNOUNCE_ROLLOVER: budgets.announce_rollover,
    ActionKind.ANNOUNCE_RAISE: budgets.announce_raise,
    ActionKind.REQUEST_OPENED: messages.request_opened,
    ActionKind.REQUEST_DECIDED: messages.request_decided,
    ActionKind.REQUEST_PROGRESS: messages.request_progress,
    ActionKind.SEND_INVITATION: messages.send_invitation,
    ActionKind.ACTION_FAILED: messages.action_failed,
    ActionKind.REFRESH_AUTHZ: budgets.nothing_at_the_provider,
    ActionKind.REBALANCE_LEASES: linked.rebalance_leases,
    ActionKind.APPLY_MODEL_POLICY: linked.apply_model_policy,
    ActionKind.LINK_WORKSPACE: linked.link_workspace,
    ActionKind.LEAK_NOTICE: leaks.leak_notice,
    ActionKind.FOREIGN_SECRET_NOTICE: leaks.foreign_secret_notice,
    ActionKind.MEMBER_SUSPENDED: directory.member_suspended,
    ActionKind.SCIM_LOOKUP: scim.scim_lookup,
    ActionKind.SCIM_REFUSED: scim.scim_refused,
    ActionKind.USAGE_CHART: charts.usage_chart,
    ActionKind.HOME_CHART: charts.home_chart,
    ActionKind.POST_STATEMENT: statements.post_statement,
    ActionKind.POST_REVIEW: reviews.post_review,
    ActionKind.REMIND_REVIEW: reviews.remind_review,
    ActionKind.REVIEW_COMPLETE: reviews.review_complete,
    ActionKind.KEY_TRANSFERRED: reviews.key_transferred,
    ActionKind.LEASE_NOTICE: lease_notices.lease_notice,
}

_UNHANDLED = set(ActionKind) - set(HANDLERS)
if _UNHANDLED:  # an action nobody carries out would wait in the outbox for ever
    raise RuntimeError(f"no handler for action kind(s) {sorted(k.value for k in _UNHANDLED)}")

#: A worker takes what it has fetched lowest number first: a person waiting in Slack for a
#: command's answer (priority 0) goes before a backlog of actions.
ACTION_PRIORITY = 10


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


ACTORS = [*ACTION_ACTORS.values(), action_gave_up]
