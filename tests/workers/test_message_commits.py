"""A message and the action that sent it are stored in one transaction, and still never posted twice."""

from __future__ import annotations

from sqlalchemy import select

from store import decisions, keys
from store.messages import POSTING
from store.models import Action, SlackMessage
from store.types import ActionStatus, Role
from tests import factories as f
from workers.handlers import keys as key_handlers

from tests.workers.test_actors import count, dm, setup_workspace


def test_a_fresh_message_is_posted_without_searching_the_channel(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="bot")
    stub_workers.settle()  # the approval message is up
    db.run(decisions.decide_request, admin, req.id, approve=True)
    stub_workers.settle()
    assert count(slack_api, dm(dev), "is ready") == 1
    # The approval message, the outcome DM and the key DM: each ref was reserved by the post that sent it.
    assert len(slack_api.calls_to("chat.postMessage")) == 3
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
