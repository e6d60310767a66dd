"""The HTTP edge: Slack's signature, malformed bodies, other teams, health."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.web import malformed
from store.types import Role
from tests import factories as f
from tests.slack_requests import sign

# Slack's published example (api.slack.com/authentication/verifying-requests-from-slack).
EXAMPLE_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
EXAMPLE_TS = "1531420618"
EXAMPLE_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar"
    "&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com"
    "%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
EXAMPLE_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


class FixedClock:
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def test_slacks_published_example_verifies_under_a_clock_at_its_time():
    verifier = SignatureVerifier(EXAMPLE_SECRET, clock=FixedClock(int(EXAMPLE_TS) + 10))
    headers = {"x-slack-request-timestamp": EXAMPLE_TS, "x-slack-signature": EXAMPLE_SIGNATURE}
    assert verifier.is_valid_request(EXAMPLE_BODY, headers)
    assert sign(EXAMPLE_SECRET, EXAMPLE_TS, EXAMPLE_BODY.encode()) == EXAMPLE_SIGNATURE  # our test sender signs the same way
    assert not verifier.is_valid_request(EXAMPLE_BODY + "x", headers)


def test_the_app_accepts_the_published_example_at_its_time_and_refuses_it_later(db):
    from bot.app import build_app
    from bot.web import WebApp
    from sandbox.serve import serve_in_thread

    bolt = build_app(db, token="xoxb-unused", team_id="T1DC2JH3J", api_url="http://127.0.0.1:9/api/")
    # At its time the signature verifies and Bolt gets the request (no /webhook-collect here: 404);
    # five minutes later the same request is stale: 401.
    for clock, expected in ((FixedClock(int(EXAMPLE_TS) + 1), 404), (FixedClock(int(EXAMPLE_TS) + 301), 401)):
        served = serve_in_thread(WebApp(db, bolt, EXAMPLE_SECRET, clock=clock))
        try:
            answer = httpx.post(
                served.url + "/slack/events",
                content=EXAMPLE_BODY.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": EXAMPLE_TS, "X-Slack-Signature": EXAMPLE_SIGNATURE},
            )
        finally:
            served.stop()
        assert answer.status_code == expected


def test_wrong_signature_and_stale_timestamp_are_refused_with_401(db, slack):
    body = urlencode({"command": "/ai-key", "user_id": "U0SOMEONE1", "team_id": "local", "text": "help"}).encode()
    assert slack.post(body, signature="v0=" + "0" * 64).status_code == 401
    stale = str(int(__import__("time").time()) - 301)
    assert slack.post(body, timestamp=stale).status_code == 401
    assert slack.post(body, signature=sign("another-secret", stale, body), timestamp=stale).status_code == 401
    assert slack.post(body).status_code == 200


def test_malformed_signed_bodies_are_answered_400_never_500(db, slack):
    cases = [
        urlencode({"payload": "{not json"}).encode(),
        urlencode({"payload": json.dumps([1, 2])}).encode(),
        urlencode({"payload": json.dumps({"type": "block_actions"})}).encode(),
        b"\xff\xfe garbage",
        b"",
        urlencode({"command": "/ai-key"}).encode(),
    ]
    for body in cases:
        assert slack.post(body).status_code == 400, body
    assert slack.post(b"{nope", "application/json").status_code == 400
    assert slack.post(b"x" * 300_000).status_code == 413


def test_unknown_action_ids_are_answered_without_error(db, slack):
    answer = slack.click("U0SOMEONE1", "no_such_action", "1")
    assert answer.status_code in (200, 404)


def test_a_request_from_another_slack_team_is_refused(db, slack):
    ws = f.workspace(db, "prod", "production")
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    slack.team_id = "T0INTRUDER"
    answer = slack.command(admin, "/ai-team", "list")
    assert answer.status_code == 403
    assert admin not in answer.text


def test_healthz_answers_200_when_the_store_answers(web):
    answer = httpx.get(web.url + "/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"


def test_healthz_says_what_is_down(db):
    from bot.web import health_checks

    problems = health_checks(db, "redis://127.0.0.1:1/0")()
    assert "broker" in problems and "Redis not answering" in problems["broker"]


def test_healthz_says_when_nobody_carries_out_the_work(db, clock):
    from datetime import timedelta

    from bot.web import health_checks

    from store import keys

    ws = f.workspace(db)
    # No workers here: the approval message the request asks for waits in the outbox.
    db.run(keys.request_key, f.member(db, ws, Role.DEVELOPER), ws, name="search-bot")
    check = health_checks(db, None)
    assert "workers" not in check()
    clock.shift(timedelta(minutes=3))
    assert "waiting over 2 minutes" in check().get("workers", "")


def test_purser_web_refuses_to_start_without_redis_and_says_what_to_do(monkeypatch):
    from typer.testing import CliRunner

    from purser.cli import app
    from purser.settings import get_settings

    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["web"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2 and "REDIS_URL is not set" in result.stderr and "purser run" in result.stderr


def test_malformed_classifier_accepts_real_shapes():
    assert malformed(urlencode({"command": "/ai-key", "user_id": "U1"}).encode(), "application/x-www-form-urlencoded") is None
    assert malformed(urlencode({"payload": json.dumps({"type": "block_actions", "user": {"id": "U1"}})}).encode(), "application/x-www-form-urlencoded") is None


def test_manifest_declares_every_command_the_app_handles():
    import yaml

    from bot.app import COMMANDS
    from bot.texts import HELP

    manifest = yaml.safe_load(open("manifest.yml"))
    declared = {c["command"]: c for c in manifest["features"]["slash_commands"]}
    assert set(declared) == set(COMMANDS) == set(HELP)
    assert all(c["description"] and c["usage_hint"] and c["url"].endswith("/slack/events") for c in declared.values())
    # history: a retry after a crash looks for the message it may already have posted, and the leak guard reads messages
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {"commands", "chat:write", "files:write", "im:write", "users:read", "users:read.email", "channels:history", "groups:history", "im:history", "mpim:history"}
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened", "message.channels", "message.groups", "message.im", "message.mpim", "user_change", "team_join", "tokens_revoked", "app_uninstalled"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


def test_the_web_process_will_not_start_without_its_secret_key(tmp_path, monkeypatch, sqlite_db):
    import pytest

    from purser.wiring import create_app
    from purser.settings import get_settings
    from store import secrets

    for name, value in {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "DATABASE_URL": sqlite_db.url, "PURSER_SECRET_KEY_FILE": str(tmp_path / "none")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PURSER_SECRET_KEY", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env here either
    monkeypatch.setattr(secrets, "_cipher", None)
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit, match="PURSER_SECRET_KEY is not set"):
            create_app()
    finally:
        get_settings.cache_clear()


def test_a_junk_timestamp_is_refused_as_unsigned_never_a_server_error(db):
    from bot.app import build_app
    from bot.web import WebApp
    from sandbox.serve import serve_in_thread

    bolt = build_app(db, token="xoxb-unused", team_id="T1DC2JH3J", api_url="http://127.0.0.1:9/api/")
    served = serve_in_thread(WebApp(db, bolt, EXAMPLE_SECRET))
    try:
        for timestamp in ("abc", "", "1e9", "99999999999999999999999", "12.5", "NaN"):
            answer = httpx.post(
                served.url + "/slack/events",
                content=EXAMPLE_BODY.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign(EXAMPLE_SECRET, timestamp, EXAMPLE_BODY.encode())},
            )
            assert answer.status_code == 401, (timestamp, answer.status_code, answer.text[:200])
    finally:
        served.stop()


def test_an_event_purser_does_nothing_with_is_still_answered_200(db, slack):
    """A 404 would make Slack retry it, and disable the subscription after enough of them."""
    for event in ({"type": "member_joined_channel", "user": "U0SOMEONE1", "channel": "C0GENERAL"}, {"type": "message", "text": "hello", "user": "U0SOMEONE1", "channel": "C0GENERAL", "ts": "1.000001"}):
        answer = slack.event(event)
        assert answer.status_code == 200, (event["type"], answer.status_code, answer.text)


@pytest.mark.parametrize("reason,handled", [("http_timeout", False), ("http_error", True), ("connection_failed", True)])
def test_slacks_retry_of_an_event_is_handled_once(db, slack, slack_api, reason, handled):
    """After a timeout the first delivery was handled (late); a retry after an error or no connection was not."""
    from tests.slack_requests import wait_for

    ws = f.workspace(db, "prod", "production")
    admin = f.member(db, ws, Role.ADMIN).slack_user_id
    opened = {"type": "app_home_opened", "user": admin, "tab": "home"}
    assert slack.event(opened, event_id="Ev0FIRST").status_code == 200
    wait_for(lambda: len(slack_api.calls_to("views.publish")) == 1)
    assert slack.event(opened, event_id="Ev0FIRST", retry=(1, reason)).status_code == 200
    if handled:
        wait_for(lambda: len(slack_api.calls_to("views.publish")) == 2)
    else:
        time.sleep(0.5)  # the first publish came within this; a second would have too
        assert len(slack_api.calls_to("views.publish")) == 1
