"""The leak guard over HTTP: a key pasted where Purser can see it is revoked within seconds.

Events reach the app signed, as Slack sends them; the fake Slack API validates what
Purser posts back. The secret must reach no Slack payload, no log and no column.
"""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from sqlalchemy import func, select, text

from store import workspaces
from store.models import ApiKey, AuditEvent, Base, Request
from store.types import KeyStatus, Role
from tests import factories as f
from tests.slack_requests import wait_for

GENERAL, APPROVALS, AUDIT = "C0GENERAL", "C0APPROVALS", "C0AUDIT"


def buttons(message) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}


def dm(user: str) -> str:
    return "D" + user[1:]


def revealed_key(db, slack, slack_api, stub_workers, env="development"):
    """A workspace, an Admin, a Developer, and the Developer's key as the Reveal showed it."""
    ws = f.workspace(db, "dev" if env == "development" else "prod", env)
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    dev = f.member(db, ws, Role.DEVELOPER).slack_user_id
    db.run(workspaces.set_channels, f.OPERATOR, ws, approvals=APPROVALS, audit_channel=AUDIT)
    slack.command(dev, "/ai-key", "new search-bot")
    stub_workers.settle()
    [ready] = [m for m in slack_api.channel_messages(dm(dev)) if "is ready" in m.text]
    slack.click(dev, "key_reveal", buttons(ready)["key_reveal"], channel=dm(dev), message_ts=ready.ts)
    [modal] = slack_api.views.values()
    secret = [b["text"]["text"] for b in modal["blocks"] if b["type"] == "section" and b["text"]["type"] == "plain_text"][0]
    return ws, admin, dev, secret


def authz(web, secret: str) -> httpx.Response:
    return httpx.get(web.url + "/v1/authz", headers={"Authorization": f"Bearer {secret}"})


def message(channel: str, user: str, text: str, ts: str = "1700000000.000100", **more) -> dict:
    return {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts, "channel_type": "channel" if channel[0] == "C" else "im", **more}


def leaked_events(db) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "key.leaked")))


def assert_secret_nowhere(db, slack_api, caplog, secret: str) -> None:
    """Not in anything sent to Slack but the one reveal, not in the logs (at DEBUG), not in any table."""
    sent = repr([c.args for c in slack_api.calls if c.method != "views.open"]) + repr([(m.text, m.blocks) for m in slack_api.messages.values()])
    assert secret not in sent
    assert secret not in caplog.text
    with db.session() as s:
        tables = [t.name for t in Base.metadata.sorted_tables]
        dump = repr([tuple(r) for t in tables for r in s.execute(text(f"select * from {t}"))])
    assert secret not in dump and secret[10:40] not in dump


def test_a_key_pasted_in_a_channel_is_revoked_within_two_seconds_and_everyone_is_told(db, web, slack, slack_api, stub_workers, caplog):
    caplog.set_level(logging.DEBUG)
    ws, admin, dev, secret = revealed_key(db, slack, slack_api, stub_workers)
    assert authz(web, secret).status_code == 200
    poster = f.member(db, ws, Role.VIEWER).slack_user_id
    sent = time.monotonic()
    assert slack.event(message(GENERAL, poster, f"here you go: {secret} (from {dev})")).status_code == 200
    refused = wait_for(lambda: (r := authz(web, secret)).status_code == 401 and r, timeout=2)
    assert refused.headers["X-Purser-Refusal"] == "revoked" and time.monotonic() - sent < 2
    stub_workers.settle()
    [reply] = [m for m in slack_api.channel_messages(GENERAL) if m.thread_ts == "1700000000.000100"]
    assert "revoked" in reply.text and "delete" in reply.text
    [notice] = [m for m in slack_api.channel_messages(dm(dev)) if "revoked" in m.text]
    assert [m for m in slack_api.channel_messages(dm(admin)) if "revoked" in m.text]
    [leak] = leaked_events(db)
    assert leak.details["channel"] == GENERAL and leak.details["poster"] == poster and "p1700000000000100" in leak.details["permalink"]
    # the replacement button works, and follows the workspace's policy (auto here: made at once)
    slack.click(dev, "key_replace", buttons(notice)["key_replace"], channel=dm(dev), message_ts=notice.ts)
    stub_workers.settle()
    with db.session() as s:
        names = sorted((k.name, k.status) for k in s.scalars(select(ApiKey)))
    assert names == [("search-bot", KeyStatus.ACTIVE), ("search-bot", KeyStatus.REVOKED)]
    assert "key_replace" not in buttons(notice)
    # pasted again: nothing more happens
    slack.event(message(GENERAL, poster, secret, ts="1700000000.000200"))
    stub_workers.settle()
    assert len(leaked_events(db)) == 1
    assert_secret_nowhere(db, slack_api, caplog, secret)


def test_an_edit_that_adds_a_key_and_a_key_in_a_dm_to_purser_are_caught(db, web, slack, slack_api, stub_workers, caplog):
    ws, admin, dev, secret = revealed_key(db, slack, slack_api, stub_workers)
    edited = {"type": "message", "subtype": "message_changed", "channel": GENERAL, "ts": "1700000001.000300",
              "message": {"type": "message", "user": dev, "text": f"oops {secret}", "ts": "1700000001.000100", "edited": {"user": dev, "ts": "1700000001.000300"}},
              "previous_message": {"type": "message", "user": dev, "text": "oops", "ts": "1700000001.000100"}}
    slack.event(message(GENERAL, dev, "oops", ts="1700000001.000100"))
    slack.event(edited)
    wait_for(lambda: authz(web, secret).status_code == 401, timeout=2)
    stub_workers.settle()
    [leak] = leaked_events(db)
    assert leak.details["poster"] == dev and "p1700000001000100" in leak.details["permalink"]

    slack.command(dev, "/ai-key", "new other-bot")
    stub_workers.settle()
    [ready] = [m for m in slack_api.channel_messages(dm(dev)) if "is ready" in m.text and "other-bot" in str(m.blocks)]
    slack.click(dev, "key_reveal", buttons(ready)["key_reveal"], channel=dm(dev), message_ts=ready.ts)
    other = [b["text"]["text"] for v in slack_api.views.values() for b in v["blocks"] if b["type"] == "section" and b["text"]["type"] == "plain_text" and b["text"]["text"] != secret][0]
    slack.event(message(dm(dev), dev, f"is this right? {other}", ts="1700000002.000100"))
    wait_for(lambda: authz(web, other).status_code == 401, timeout=2)
    stub_workers.settle()
    assert len(leaked_events(db)) == 2
    assert_secret_nowhere(db, slack_api, caplog, other)


def test_a_retried_event_is_acted_on_once(db, web, slack, slack_api, stub_workers):
    ws, admin, dev, secret = revealed_key(db, slack, slack_api, stub_workers)
    event = message(GENERAL, dev, secret)
    slack.event(event, event_id="Ev0LEAK")
    slack.event(event, event_id="Ev0LEAK", retry=(1, "http_timeout"))
    slack.event(event, event_id="Ev0LEAK", retry=(2, "http_error"))
    wait_for(lambda: authz(web, secret).status_code == 401, timeout=2)
    stub_workers.settle()
    assert len(leaked_events(db)) == 1
    assert len([m for m in slack_api.channel_messages(GENERAL) if m.thread_ts]) == 1
    assert len([m for m in slack_api.channel_messages(dm(dev)) if "revoked" in m.text]) == 1


@pytest.mark.parametrize("token", ["AKIAIOSFODNN7EXAMPLE", "ghp_" + "a1B2" * 9, "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx"])
def test_another_vendors_token_is_warned_about_and_nothing_is_revoked(db, web, slack, slack_api, stub_workers, token, caplog):
    caplog.set_level(logging.DEBUG)
    ws, admin, dev, secret = revealed_key(db, slack, slack_api, stub_workers)
    slack.event(message(GENERAL, dev, f"creds: {token}"))
    stub_workers.settle()
    assert authz(web, secret).status_code == 200 and leaked_events(db) == []
    [warning] = [e for e in slack_api.ephemeral if e.user == dev and "credential" in e.text]
    assert "rotate" in warning.text and token not in warning.text
    [told] = slack_api.channel_messages(AUDIT)
    assert "not a Purser key" in str(told.blocks) and token not in str(told.blocks)
    assert token not in caplog.text


def test_a_string_shaped_like_a_key_that_is_none_changes_nothing_and_leaves_no_trace(db, web, slack, slack_api, stub_workers, caplog):
    caplog.set_level(logging.DEBUG)
    ws, admin, dev, secret = revealed_key(db, slack, slack_api, stub_workers)
    fake = "sk-purser-" + "Q" * 43
    calls = len(slack_api.calls)
    slack.event(message(GENERAL, dev, f"try {fake}"))
    stub_workers.settle()
    assert authz(web, secret).status_code == 200 and leaked_events(db) == []
    assert len(slack_api.calls) == calls  # nobody was told anything
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Request)) == 1  # only the key's own request
    assert fake not in caplog.text and "Q" * 20 not in caplog.text
    assert_secret_nowhere(db, slack_api, caplog, fake)
