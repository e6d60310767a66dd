"""The outside edges under load: the fake Slack Web API and the fake OpenRouter, with faults by the clock.

Both extend the shared fakes. Slack keeps every message write in the order it applied
them (so a test can read one message's history) and can rate-limit methods for a while;
OpenRouter can be down for a while (500 and 429 with Retry-After, alternating), knows
which worker process called it (each worker is given its own URL prefix) and can run a
hook the moment it has made a key, before its answer leaves — where a worker killed
leaves an orphan behind.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from sandbox.slack_api import SlackAPI
from tests.fakes.openrouter import FakeOpenRouter

#: the Web API methods workers call to post and edit messages
WRITE_METHODS = ("chat.postMessage", "chat.update", "conversations.open")


@dataclass(frozen=True)
class Write:
    method: str  # chat.postMessage or chat.update
    channel: str
    ts: str
    text: str
    blocks: list


class RecordingSlackAPI(SlackAPI):
    def __init__(self, token: str) -> None:
        super().__init__(token=token)
        self.writes: list[Write] = []
        self.limited = 0  # calls answered 429
        self._limit_until = 0.0
        self._limit_methods: tuple[str, ...] = ()
        self._retry_after = 1.0

    def rate_limit(self, seconds: float, *, retry_after: float = 1, methods: tuple[str, ...] = WRITE_METHODS) -> None:
        """Answer these methods 429 with Retry-After for the next ``seconds``."""
        with self._lock:
            self._limit_until, self._limit_methods, self._retry_after = time.monotonic() + seconds, methods, retry_after

    def _take_failure(self, method: str):
        if method in self._limit_methods and time.monotonic() < self._limit_until:
            self.limited += 1
            return 429, self._retry_after
        return super()._take_failure(method)

    def api_chat_postMessage(self, args: dict) -> dict:
        answer = super().api_chat_postMessage(args)
        if answer.get("ok"):
            m = self.messages[(answer["channel"], answer["ts"])]
            self.writes.append(Write("chat.postMessage", m.channel, m.ts, m.text, list(m.blocks)))
        return answer

    def api_chat_update(self, args: dict) -> dict:
        answer = super().api_chat_update(args)
        if answer.get("ok"):
            m = self.messages[(answer["channel"], answer["ts"])]
            self.writes.append(Write("chat.update", m.channel, m.ts, m.text, list(m.blocks)))
        return answer

    def snapshot(self):
        """Messages, ephemeral messages, views and writes as they are now (the server thread keeps changing them)."""
        with self._lock:
            return list(self.messages.values()), list(self.ephemeral), dict(self.views), list(self.writes)

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self.writes.clear()
            self.limited = 0
            self._limit_until = 0.0


class FlakyOpenRouter(FakeOpenRouter):
    def __init__(self) -> None:
        super().__init__()
        self.refused = 0  # calls answered with the scripted outage
        self.deleted: list[str] = []  # names of the keys deleted, in order
        self.on_create: Callable[[str | None, str], None] | None = None  # (worker, key name) after a key is made
        self.slow_started = self.slow_answered = 0
        self._slow: list[float] = []
        self._outage_until = 0.0
        self._retry_after = 1.0
        self._caller = threading.local()

    def outage(self, seconds: float, *, retry_after: float = 1) -> None:
        """For the next ``seconds`` answer every call 500 or 429 (with Retry-After), in turn."""
        with self._lock:
            self._outage_until, self._retry_after = time.monotonic() + seconds, retry_after

    def slow_creates(self, count: int, seconds: float) -> None:
        """Make the next ``count`` keys only after ``seconds`` (the key exists whether or not the caller still waits)."""
        with self._lock:
            self._slow = [seconds] * count

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.refused, self._outage_until, self.slow_started, self.slow_answered = 0, 0.0, 0, 0
            self.deleted.clear()
            self._slow.clear()
        self.on_create = None

    def __call__(self, environ, start_response):
        # /<worker>/api/v1/keys…: the first segment names the calling worker process
        _, first, rest = (environ.get("PATH_INFO", "") + "/").split("/", 2)
        self._caller.worker = None
        if first != "api":
            self._caller.worker = first
            environ["PATH_INFO"] = "/" + rest.rstrip("/")
        if time.monotonic() < self._outage_until:
            with self._lock:
                self.refused += 1
                status = 429 if self.refused % 2 else 500
            return self._error(status, "scripted outage", self._retry_after if status == 429 else None)(environ, start_response)
        delay = 0.0
        if environ.get("REQUEST_METHOD") == "POST":
            with self._lock:
                delay = self._slow.pop() if self._slow else 0.0
        if delay:
            self.slow_started += 1
            time.sleep(delay)
            self.slow_answered += 1
        return super().__call__(environ, start_response)

    def _handle(self, request, body):
        if request.method == "DELETE":
            key = self.keys.get(request.path.rstrip("/").rsplit("/", 1)[-1])
            if key is not None:
                self.deleted.append(key["name"])
        return super()._handle(request, body)

    def _create(self, body):
        response = super()._create(body)
        if response.status_code == 201 and self.on_create is not None:
            self.on_create(self._caller.worker, body["name"])  # the answer has not left yet
        return response
