"""The clock's jobs as actors: each runs one store operation (or fans out to per-workspace actors)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import dramatiq
from dramatiq import Retry
from sqlalchemy import select

from bot.blocks.digest import digest_message
from store import alerts, digests, invitations, keys, leases, outbox, quota_ledger, raises, requests, reviews, rollover, spikes, statements
from store.errors import NotFound
from store.models import Workspace
from store.permissions import Actor
from store.types import ActionKind, WorkspaceStatus, utcnow
from workers import quota
from workers.actors import enqueue
from workers.handlers import charts
from workers.broker import RETRY_OPTIONS
from workers.providers.base import PermanentProviderError, TransientProviderError
from workers.runtime import runtime

log = logging.getLogger(__name__)

#: an action still pending this long after its time was probably never enqueued (Redis down, a crash)
SWEEP_AFTER = timedelta(seconds=30)


@dramatiq.actor(queue_name="maintenance", max_retries=0)
def sweep_outbox(older_than_seconds: float | None = None) -> None:
    older_than = SWEEP_AFTER if older_than_seconds is None else timedelta(seconds=older_than_seconds)
    with runtime().db.session() as s:
        stale = outbox.due(s, older_than=older_than)
    if stale:
        log.info("re-enqueueing %d action(s) the queue never ran", len(stale))
        enqueue(stale)


@dramatiq.actor(queue_name="maintenance", **RETRY_OPTIONS)
def sync_usage() -> None:
    """Read every key at each provider workspace Purser's workspaces link to; record the spend, then top up the leases."""
    rt = runtime()
    with rt.db.session() as s:
        linked = [(w.id, w.provider, w.provider_ref) for w in s.scalars(select(Workspace).where(Workspace.status != WorkspaceStatus.DELETED, Workspace.provider != "local").order_by(Workspace.id))]
    read: dict[tuple[str, str | None], list] = {}
    for workspace_id, name, ref in linked:
        if (name, ref) not in read:
            try:
                read[(name, ref)] = quota.all_keys(rt.provider(name), ref)
            except TransientProviderError as exc:
                raise Retry(str(exc), delay=None if exc.retry_after is None else int(exc.retry_after * 1000)) from None
            except PermanentProviderError as exc:
                # Retrying cannot mend a refused management key; the next scheduled sync tries again.
                log.error("usage sync from %s refused: %s", name, exc)
                read[(name, ref)] = None
                continue
            quota.record(rt, name, read[(name, ref)])
            log.info("usage sync from %s workspace %s: %d key(s) read", name, ref or "(default)", len(read[(name, ref)]))
        if read[(name, ref)] is not None:
            quota.rebalance(rt, workspace_id, read=False)


@dramatiq.actor(queue_name="maintenance", max_retries=0)
def poll_leases() -> None:
    """Between syncs, read the keys that spend (idle ones less often) and top up the ones near their lease."""
    try:
        quota.poll(runtime())
    except (TransientProviderError, PermanentProviderError) as exc:
        log.warning("reading leased keys: %s (the next poll tries again)", exc)


@dramatiq.actor(queue_name="maintenance", max_retries=0)
def sync_directory() -> None:
    """Daily: apply what Slack's directory says and its events may not have (a lost user_change)."""
    from workers.directory import sync

    rt = runtime()
    if rt.slack is None:
        return
    sync(rt.db, rt.slack.client, rt.team_id)


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def evaluate_thresholds() -> None:
    runtime().db.run(alerts.evaluate_thresholds)


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def roll_over_periods() -> None:
    db = runtime().db
    db.run(rollover.roll_over_periods)
    # A new period grows what remains of budgets, and so the leases, at once (not at the next poll).
    db.run(lambda s: [outbox.emit(s, ActionKind.REBALANCE_LEASES, workspace_id=w) for w in quota_ledger.new_periods(s)])


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def end_raises() -> None:
    """Temporary raises past their end: audited, announced, and what they held up paused (store.raises)."""
    runtime().db.run(raises.end_raises)


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def expire_requests() -> None:
    db = runtime().db
    db.run(requests.expire_requests)
    db.run(invitations.expire_invitations)


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def wipe_reveals() -> None:
    runtime().db.run(keys.wipe_expired_reveals)


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def announce_leases() -> None:
    """Leased keys: the warnings a day and an hour ahead, and the ends, each once (store.leases)."""
    runtime().db.run(leases.announce_leases)


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def post_digests() -> None:
    with runtime().db.session() as s:
        due = digests.due_digests(s)
    for workspace_id in due:
        post_digest.send(workspace_id)


@dramatiq.actor(queue_name="maintenance", **RETRY_OPTIONS)
def post_digest(workspace_id: int, until: str | None = None) -> None:
    """One workspace's digest to its audit channel; posted under a ref per day, so a retry edits it."""
    rt = runtime()
    now = datetime.fromisoformat(until) if until else utcnow()
    with rt.db.session() as s:
        ws = s.get(Workspace, workspace_id)
        frequency = ws.digest_frequency
        since, end = digests.digest_window(frequency, now)
        digest = digests.build_digest(s, workspace_id, since, end)
        channel = ws.audit_channel
    if rt.slack is not None and channel:
        text, blocks = digest_message(digest)
        ref = f"digest:{workspace_id}:{end:%Y-%m-%d}"
        _, ts = rt.slack.post(ref, channel, text, blocks)
        if frequency == "weekly":
            # The chart follows the text in its thread, and never holds it back: a digest
            # whose picture cannot be drawn or uploaded is still posted, and says nothing less.
            try:
                charts.post_week_chart(rt, workspace_id, channel, ts, ref, end)
            except Exception:
                log.exception("the weekly digest of workspace %s was posted without its chart", workspace_id)


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def post_statements() -> None:
    """Last month's statement of each workspace (not deleted) that has not closed it, one actor each: on the 1st, all of them."""
    with runtime().db.session() as s:
        month, due = statements.due_statements(s)
    for workspace_id in due:
        close_statement.send(workspace_id, f"{month:%Y-%m}")


@dramatiq.actor(queue_name="maintenance", **RETRY_OPTIONS)
def close_statement(workspace_id: int, month: str) -> None:
    """Close one workspace's statement of ``month``; the post_statement action it emits sends it (workers.handlers.statements)."""
    try:
        runtime().db.run(statements.close_statement, Actor.operator("clock"), workspace_id, statements.parse_month(month))
    except NotFound:  # deleted since the fan-out: a deleted workspace's month is not closed, and retrying will not change that
        log.info("workspace %s was deleted before its statement for %s closed", workspace_id, month)


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def check_spikes(at: str | None = None) -> None:
    """Hourly, a few minutes past: each workspace's check of the hour just ended, one actor each."""
    with runtime().db.session() as s:
        live = list(s.scalars(select(Workspace.id).where(Workspace.status != WorkspaceStatus.DELETED).order_by(Workspace.id)))
    at = at or utcnow().isoformat()  # every workspace judges the same hour, however long the fan-out takes
    for workspace_id in live:
        check_workspace_spikes.send(workspace_id, at)


@dramatiq.actor(queue_name="maintenance", **RETRY_OPTIONS)
def check_workspace_spikes(workspace_id: int, at: str) -> None:
    rt = runtime()
    try:
        found = rt.db.run(spikes.check_spikes, workspace_id, rt.spike_rule, datetime.fromisoformat(at))
    except NotFound:  # deleted since the fan-out: nothing of it is announced any more
        return
    if found:
        log.info("workspace %s: %d spend spike(s) in the hour to %s", workspace_id, len(found), at)


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def open_reviews() -> None:
    """Daily: last quarter's access review of each workspace that has none, one actor each: on a quarter's first day, all of them."""
    with runtime().db.session() as s:
        _, due = reviews.due_quarterly(s)
    for workspace_id in due:
        open_review.send(workspace_id)


@dramatiq.actor(queue_name="maintenance", **RETRY_OPTIONS)
def open_review(workspace_id: int) -> None:
    """Idempotent per workspace and quarter (the review's quarter is unique), so a repeated job opens nothing twice."""
    try:
        runtime().db.run(reviews.open_review, Actor.operator("clock"), workspace_id, quarterly=True)
    except NotFound:  # deleted since the fan-out: nothing of it is reviewed
        log.info("workspace %s was deleted before its access review opened", workspace_id)


@dramatiq.actor(queue_name="maintenance", max_retries=3)
def remind_reviews() -> None:
    runtime().db.run(reviews.remind_reviews)


ACTORS = [sweep_outbox, sync_usage, poll_leases, sync_directory, evaluate_thresholds, roll_over_periods, expire_requests, wipe_reveals, post_digests, post_digest, post_statements, close_statement, check_spikes, check_workspace_spikes, open_reviews, open_review, remind_reviews, announce_leases, end_raises]
