"""Requests to the app exactly as Slack sends them: form-encoded, signed with the signing secret."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from bot.commands.registry import answered_at_once
from sandbox.signing import sign
from sandbox.slack_api import SlackAPI, response_url

_triggers = itertools.count(1)


@dataclass
class SlackSender:
    url: str  # the app's /slack/events
    secret: str
    team_id: str = "local"
    #: the Slack double and its URL: where a command handed to a worker posts its answer
    slack: SlackAPI | None = None
    slack_url: str | None = None
    #: how long to wait for an answer that comes through response_url
    answer_timeout: float = 30.0

    def post(self, body: bytes, content_type: str = "application/x-www-form-urlencoded", *, timestamp: str | None = None, signature: str | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
        ts = timestamp or str(int(time.time()))
        sent = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature or sign(self.secret, ts, body), **(headers or {})}
        return httpx.post(self.url, content=body, headers=sent, timeout=10)

    def command(self, user: str, command: str, text: str = "", channel: str = "C0GENERAL") -> httpx.Response:
        """What the person sees: the ack's answer, or, when the ack is empty, what came to the response_url.

        An answer that comes later is returned as a 200 whose JSON body is what was posted,
        so a test reads both alike; ``ack`` on it is the app's own HTTP answer.
        """
        n = next(_triggers)
        url = response_url(self.slack_url, channel, user, f"{n}-{time.monotonic_ns()}") if self.slack_url else "http://127.0.0.1:9/unused"
        form = {
            "token": "unused",
            "team_id": self.team_id,
            "team_domain": "purser",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0PURSER",
            "response_url": url,
            "trigger_id": f"{n}.trigger",
        }
        ack = self.post(urlencode(form).encode())
        if self.slack is None or ack.status_code != 200 or ack.content.strip() or answered_at_once(command, text):
            return ack  # answered in the ack (an empty one: a form was opened instead)
        path = httpx.URL(url).path
        try:
            posted = wait_for(lambda: self.slack.responses.get(path), timeout=self.answer_timeout)
        except AssertionError:
            raise AssertionError(f"no answer to `{command} {text}` came to its response_url in {self.answer_timeout:.0f} s") from None
        answer = httpx.Response(200, json=posted[0], request=ack.request)
        answer.ack = ack
        return answer

    def interaction(self, payload: dict) -> httpx.Response:
        return self.post(urlencode({"payload": json.dumps(payload)}).encode())

    def click(self, user: str, action_id: str, value: str, *, channel: str | None = None, message_ts: str | None = None, view: dict | None = None, blocks: list[dict] | None = None) -> httpx.Response:
        """A button clicked; ``blocks``: the message's blocks, which Slack sends with a click in a message."""
        payload = {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": "purser"},
            "user": {"id": user, "team_id": self.team_id},
            "api_app_id": "A0PURSER",
            "trigger_id": f"{next(_triggers)}.trigger",
            "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value, "action_ts": str(time.time())}],
        }
        if channel:
            payload["channel"] = {"id": channel}
            payload["container"] = {"type": "message", "channel_id": channel, "message_ts": message_ts}
            payload["message"] = {"ts": message_ts} if blocks is None else {"ts": message_ts, "blocks": blocks}
        if view is not None:
            payload["view"] = view
            payload["container"] = {"type": "view", "view_id": view.get("id", "V0")}
        return self.interaction(payload)

    def submit(self, user: str, view: dict, values: dict[str, str]) -> httpx.Response:
        state = {"values": {block: {"value": {"type": "plain_text_input", "value": value}} for block, value in values.items()}}
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id},
            "user": {"id": user, "team_id": self.team_id},
            "api_app_id": "A0PURSER",
            "view": {**view, "state": state},
        }
        return self.interaction(payload)

    def event(self, event: dict, *, retry: tuple[int, str] | None = None, event_id: str | None = None) -> httpx.Response:
        """An Events API delivery; ``retry`` = (attempt, reason) sends it as Slack's retry of an earlier one
        (https://api.slack.com/apis/events-api#retries: ``X-Slack-Retry-Num``, ``X-Slack-Retry-Reason``)."""
        body = {"type": "event_callback", "team_id": self.team_id, "api_app_id": "A0PURSER", "event": event, "event_id": event_id or f"Ev{next(_triggers)}", "event_time": int(time.time())}
        headers = {"X-Slack-Retry-Num": str(retry[0]), "X-Slack-Retry-Reason": retry[1]} if retry else None
        return self.post(json.dumps(body).encode(), "application/json", headers=headers)


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll until ``predicate()`` is truthy (Slack events are handled after their ack)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
