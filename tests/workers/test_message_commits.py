"""A message and the action that sent it are stored in one transaction, and still never posted twice."""

from __future__ import annotations

import dramatiq
import pytest
from sqlalchemy import select

from bot.blocks.requests import APPROVE
from store import decisions, keys
from store.messages import POSTING
from store.models import Action, SlackMessage
from store.types import ActionStatus, Role
from tests import factories as f
from workers import actors, maintenance
from workers.faults import InjectedCrash
from workers.handlers import keys as key_handlers
from workers.handlers import messages as message_handlers

from tests.workers.test_actors import APPROVALS, actions, count, dm, setup_workspace
from tests.workers.test_openrouter_flows import let_the_lease_lapse


def test_a_fresh_message_is_posted_without_searching_the_channel(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="bot")
    stub_workers.settle()  # the approval message is up
    db.run(decisions.decide_request, admin, req.id, approve=True)
    stub_workers.settle()
    assert count(slack_api, dm(dev), "is ready") == 1
    # The approval message and the key DM (which says who approved): each ref was reserved before its post.
    assert len(slack_api.calls_to("chat.postMessage")) == 2
    assert slack_api.calls_to("conversations.history") == []
    with db.session() as s:
        assert set(s.scalars(select(Action.status))) == {ActionStatus.DONE}
        assert POSTING not in set(s.scalars(select(SlackMessage.ts)))


def test_an_action_that_fails_to_complete_after_its_dm_keeps_no_ts_and_its_retry_posts_no_second_dm(db, stub_workers, slack_api, monkeypatch):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    failures = []

    def completes_once_failing(a):
        def complete(s):
            if not failures:
                failures.append(a.id)
                raise RuntimeError("the store went away after Slack answered")
            key_handlers.outbox.complete(s, a.id)

        return complete

    monkeypatch.setattr(key_handlers, "completes", completes_once_failing)
    req = db.run(keys.request_key, dev, ws, name="bot")
    db.run(decisions.decide_request, admin, req.id, approve=True)
    stub_workers.settle()

    assert len(failures) == 1, "the completion never failed"
    # The ts and the completion were rolled back together; the retry searched the DM, found
    # the message the first attempt posted, and edited it instead of posting again.
    assert count(slack_api, dm(dev), "is ready") == 1
    [ready] = [m for m in slack_api.channel_messages(dm(dev)) if "is ready" in m.text]
    assert ready.updated == 1
    assert len(slack_api.calls_to("conversations.history")) == 1
    with db.session() as s:
        action = s.get(Action, failures[0])
        assert action.status is ActionStatus.DONE and action.attempts == 2
        [row] = s.scalars(select(SlackMessage).where(SlackMessage.ref.startswith("key_ready:")))
        assert row.ts == ready.ts


def test_a_decision_shows_on_an_approval_message_whose_poster_died_before_storing_its_ts(db, stub_workers, slack_api, monkeypatch):
    """Slack took the approval message, then its worker died before the ts was stored; an Admin decides from it.

    The decision's update finds the message in the channel's history and shows the outcome
    there; the dead poster's retry, once its lease lapses, finds the request decided and posts nothing.
    """
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    stub_workers.worker.stop()

    def dies_before_commit(a):
        def die(s):
            raise InjectedCrash("request_opened: after Slack answered, before the commit")

        return die

    monkeypatch.setattr(message_handlers, "completes", dies_before_commit)
    req = db.run(keys.request_key, dev, ws, name="bot")
    [opened] = actions(db, "request_opened")
    with pytest.raises(InjectedCrash):
        actors.perform(actors.HANDLERS["request_opened"], opened.id)
    monkeypatch.undo()
    [message] = slack_api.channel_messages(APPROVALS)
    assert APPROVE in str(message.blocks)
    with db.session() as s:
        assert s.get(SlackMessage, f"request:{req.id}").ts == POSTING

    db.run(decisions.decide_request, admin, req.id, approve=True)
    stub_workers.worker = dramatiq.Worker(stub_workers.broker, worker_threads=4, worker_timeout=50)
    stub_workers.worker.start()
    stub_workers.settle()
    [message] = slack_api.channel_messages(APPROVALS)
    assert APPROVE not in str(message.blocks) and "Approved" in str(message.blocks)
    assert count(slack_api, dm(dev), "is ready") == 1

    let_the_lease_lapse(db, opened.id)
    maintenance.sweep_outbox.fn()
    stub_workers.settle()
    [message] = slack_api.channel_messages(APPROVALS)
    assert APPROVE not in str(message.blocks) and message.updated == 1
    with db.session() as s:
        assert set(s.scalars(select(Action.status))) == {ActionStatus.DONE}
        assert s.get(SlackMessage, f"request:{req.id}").ts == message.ts
