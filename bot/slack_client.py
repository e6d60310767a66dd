"""The one way Purser talks to Slack's Web API from workers and jobs.

slack_sdk's WebClient with its retry handlers (429 honouring Retry-After, 5xx,
connection errors), pointed at ``SLACK_API_URL`` so tests and the local sandbox can
stand in for Slack. Every message is posted under a ref whose channel and ts are stored,
so a retried post or a later change edits the message rather than posting it twice.
"""

from __future__ import annotations

import logging
import threading
from typing import Sequence

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.models.blocks import Block

from store.db import Database
from store.messages import find_message, remember_message

log = logging.getLogger(__name__)


class Slack:
    def __init__(self, db: Database, token: str, base_url: str = "https://slack.com/api/") -> None:
        self.db = db
        self.client = WebClient(
            token=token,
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            timeout=10,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=2),
                RateLimitErrorRetryHandler(max_retry_count=5),
                ServerErrorRetryHandler(max_retry_count=2),
            ],
        )
        # Updates to one message must reach Slack in the order they were made.
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def _lock(self, ref: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(ref, threading.Lock())

    def post(self, ref: str, channel: str, text: str, blocks: Sequence[Block]) -> tuple[str, str]:
        """Post under ``ref`` once; later calls with the same ref update that message in place."""
        payload = [b.to_dict() for b in blocks]  # validates sizes and required fields
        with self._lock(ref):
            with self.db.session() as s:
                known = find_message(s, ref)
                where = (known.channel, known.ts) if known else None
            if where is not None:
                self.client.chat_update(channel=where[0], ts=where[1], text=text, blocks=payload)
                return where
            answer = self.client.chat_postMessage(channel=channel, text=text, blocks=payload, unfurl_links=False, unfurl_media=False)
            where = (answer["channel"], answer["ts"])
            with self.db.session() as s:
                remember_message(s, ref, *where)
                s.commit()
            return where

    def dm(self, ref: str, user_id: str, text: str, blocks: Sequence[Block]) -> tuple[str, str]:
        with self.db.session() as s:
            known = find_message(s, ref)
        channel = known.channel if known else self.client.conversations_open(users=user_id)["channel"]["id"]
        return self.post(ref, channel, text, blocks)

    def user_by_email(self, email: str) -> str | None:
        from slack_sdk.errors import SlackApiError

        try:
            return self.client.users_lookupByEmail(email=email)["user"]["id"]
        except SlackApiError as exc:
            if exc.response.get("error") == "users_not_found":
                return None
            raise
