"""Commands handed to the workers: acked at once, answered through response_url, run at most once."""

from __future__ import annotations

import time
import uuid

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import func, select

from bot import texts
from sandbox.slack_api import response_url
from store.models import Request
from store.types import Role
from tests import factories as f
from tests.slack_requests import wait_for
from workers import commands
from workers.registry import use_broker


def requests_made(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Request))


def test_a_store_command_is_acked_empty_and_answered_through_response_url(db, slack, slack_api):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    answer = slack.command(dev, "/ai-key", "new search-bot --limit $20")
    assert answer.ack.status_code == 200 and answer.ack.content == b""  # Slack heard back before the store was touched
    assert "request #" in answer.json()["text"]
    [(url, posted)] = slack_api.responses.items()
    assert url.startswith("/response/C0GENERAL/" + dev) and posted[0]["response_type"] == "ephemeral"
    assert requests_made(db) == 1


def test_help_and_the_key_form_are_answered_in_the_ack(db, slack, slack_api):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    assert "/ai-budget set" in slack.command(dev, "/ai-budget", "help").json()["text"]
    assert "ai-key new" in slack.command(dev, "/ai-key", "").json()["text"]
    assert slack.command(dev, "/ai-key", "new").content == b""  # the form opened instead
    assert "not an option" in slack.command(dev, "/ai-key", "new x --colour red").json()["text"]  # the parser's answer
    assert [c.method for c in slack_api.calls] == ["views.open"] and not slack_api.responses


def test_with_the_queue_away_the_ack_answers_and_says_queued(db, slack, slack_api, stub_workers, monkeypatch):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    monkeypatch.setattr(commands, "_queue_down_until", 0.0)
    away = RedisBroker(url="redis://127.0.0.1:1/0", socket_connect_timeout=0.2, socket_timeout=0.2)  # nothing listens there
    tried = []
    real_enqueue = away.enqueue
    monkeypatch.setattr(away, "enqueue", lambda message, *, delay=None: tried.append(message.actor_name) or real_enqueue(message, delay=delay))
    use_broker(away)
    try:
        answer = slack.command(dev, "/ai-key", "new search-bot")
        assert answer.content, "answered in the ack"
        assert "request #" in answer.json()["text"] and texts.QUEUED in answer.json()["text"]
        second = slack.command(dev, "/ai-key", "new other-bot")
        assert "request #" in second.json()["text"]
        # The queue is not tried again at once: the second command never waits on a dead broker.
        assert tried.count("run_command") == 1, tried
    finally:
        use_broker(stub_workers.broker)
        monkeypatch.setattr(commands, "_queue_down_until", 0.0)
    assert not slack_api.responses and requests_made(db) == 2


def _send(slack_url: str, user: str, text: str, *, asked_at: float | None = None, delivery: str | None = None) -> str:
    url = response_url(slack_url, "C0GENERAL", user, uuid.uuid4().hex[:8])
    commands.run_command.send("/ai-key", "local", user, "C0GENERAL", text, url, asked_at or time.time(), delivery or uuid.uuid4().hex)
    return url.split("://", 1)[1].split("/", 1)[1]


def test_a_command_that_waited_too_long_is_not_carried_out(db, slack_server, slack_api, stub_workers):
    api, slack_url = slack_server
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    path = _send(slack_url, dev, "new late-bot", asked_at=time.time() - commands.STALE_AFTER - 1)
    [posted] = wait_for(lambda: api.responses.get("/" + path))
    assert "did nothing" in posted["text"] and requests_made(db) == 0


def test_a_command_delivered_again_is_not_run_twice(pg_db, slack_server, slack_api, redis_workers):
    db = pg_db
    api, slack_url = slack_server
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    delivery = uuid.uuid4().hex
    first = _send(slack_url, dev, "new twice-bot", delivery=delivery)
    [answer] = wait_for(lambda: api.responses.get("/" + first))
    assert "request #" in answer["text"]
    # As Redis hands back the message of a worker that died before acknowledging it.
    again = _send(slack_url, dev, "new twice-bot", delivery=delivery)
    [answer] = wait_for(lambda: api.responses.get("/" + again))
    assert "cannot tell whether it went through" in answer["text"]
    redis_workers.settle()
    assert requests_made(db) == 1
