"""The one way Purser talks to Slack's Web API from workers and jobs.

slack_sdk's WebClient with its retry handlers (429 honouring Retry-After, 5xx,
connection errors), pointed at ``SLACK_API_URL`` so tests and the local sandbox can
stand in for Slack. Every message is posted under a ref whose channel and ts are stored,
so a retried post or a later change edits the message rather than posting it twice.

The ref is stored before the post, and the message carries it in its metadata: a worker
that dies after Slack posted but before Purser stored the ts is followed by a retry that
finds the message in the channel's history instead of posting it again, and an edit
(``Slack.edit``) finds it there too. Only these search: a post whose ref it has just
stored cannot have been sent before.

An action whose last step is a message completes in the transaction that stores the
message's ts (``also``): one commit instead of two, and no moment where the action is
done but the ts unknown.

Files (charts, CSV statements) are uploaded under a ref the same way, the file's id (F…)
stored where a message keeps its ts: a retry after a completed upload is answered with
that id and uploads nothing. A file share carries no metadata to search for, so a retry
after an attempt that died mid-upload uploads again (at worst the file is shared twice).
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.models.blocks import Block
from sqlalchemy.orm import Session

from store.db import Database
from store import slack_access
from store.messages import POSTING, hold_known, hold_or_reserve, hold_with_copies, record_posted, record_sent

log = logging.getLogger(__name__)

#: the metadata event type of Purser's messages; its payload carries the message's ref
EVENT_TYPE = "purser_message"
#: history lookups that cannot succeed by retrying: the post goes ahead (at worst twice) rather than never
UNSEARCHABLE = {"missing_scope", "not_in_channel", "channel_not_found", "not_allowed_token_type"}
#: Slack refuses a file's alt text beyond this (alt_txt_too_large)
MAX_ALT_TEXT = 1000

#: more work for the transaction that stores a message's ts (see ``Slack.post``)
Also = Callable[[Session], object]


class SlackAccessLost(Exception):
    """Slack took Purser's access away (store.slack_access): no call is made, and retrying will not help."""

    def __init__(self, why: str) -> None:
        super().__init__(f"Slack revoked Purser's access ({why}): the operator must reinstall Purser in Slack and set the new SLACK_BOT_TOKEN.")


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

    def post(self, ref: str, channel: str, text: str, blocks: Sequence[Block], *, edit: bool = True, also: Also | None = None, thread_ts: str | None = None) -> tuple[str, str]:
        """Post under ``ref`` once; later calls with the same ref update that message in place (``edit=False``: leave it be).

        ``also(session)`` runs in the transaction that stores where the message is, just
        before it commits: an action that ends with this message completes with it, in one
        commit rather than two.
        """
        return self._send(ref, channel, text, blocks, edit=edit, also=also, thread_ts=thread_ts)

    def edit(self, ref: str, text: str, blocks: Sequence[Block], *, also: Also | None = None) -> None:
        """Show ``text``/``blocks`` on the message posted under ``ref``; one never posted is not posted now.

        A post of it still under way is waited for (the row's lock), and one whose poster died
        after Slack took it but before its ts was stored is found in the channel's history: an
        Admin may have decided from that message, and it must show the decision. ``also`` runs
        as with ``post``, whether or not there was a message to edit.
        """
        self._send(ref, None, text, blocks, edit=True, also=also)

    def dm(self, ref: str, user_id: str, text: str, blocks: Sequence[Block], *, also: Also | None = None) -> tuple[str, str]:
        """``post`` to a person's DM; Slack is asked for the DM's channel only the first time."""
        return self._send(ref, lambda: self.client.conversations_open(users=user_id)["channel"]["id"], text, blocks, edit=True, also=also)

    @contextmanager
    def _held(self, ref: str, channel: str | Callable[[], str] | None) -> Iterator[tuple[Session, Any, bool]]:
        """A session holding ``ref``'s row (reserved if new; ``channel`` None: only if it exists, else None)
        and whether this call reserved it; refused once Slack took the access away."""
        with self._lock(ref), self.db.session() as s:
            gone = slack_access.lost(s)
            if gone is not None:
                raise SlackAccessLost(gone.why)
            # Other processes posting or editing this message wait here, so its updates keep their order.
            row, reserved_now = hold_or_reserve(s, ref, channel) if channel is not None else (hold_known(s, ref), False)
            if self.db.dialect != "postgresql":
                s.commit()  # SQLite serves one process (the thread lock orders it); never hold its write lock over HTTP
            yield s, row, reserved_now

    def _send(self, ref: str, channel: str | Callable[[], str] | None, text: str, blocks: Sequence[Block], *, edit: bool, also: Also | None, thread_ts: str | None = None) -> tuple[str, str]:
        """``channel`` None: only an edit (``edit``), never a post."""
        payload = [b.to_dict() for b in blocks]  # validates sizes and required fields
        with self._held(ref, channel) as (s, row, reserved_now):
            ts = row.ts if row is not None else POSTING
            if row is not None and ts == POSTING and not reserved_now:  # an earlier attempt died not knowing whether Slack posted it
                ts = self._posted_before(row.channel, ref, row.created_at) or POSTING
            if ts == POSTING and channel is None:
                pass  # never posted (refused, or its poster died before sending): nothing to edit, and an edit posts nothing
            elif ts == POSTING:
                metadata = {"event_type": EVENT_TYPE, "event_payload": {"ref": ref}}
                answer = self.client.chat_postMessage(
                    channel=row.channel, text=text, blocks=payload, metadata=metadata, unfurl_links=False, unfurl_media=False, thread_ts=thread_ts
                )
                record_sent(row, answer["channel"], answer["ts"])
            else:
                if edit:
                    self.client.chat_update(channel=row.channel, ts=ts, text=text, blocks=payload)
                if ts != row.ts:  # found in the channel's history; a known ts needs no write
                    record_sent(row, row.channel, ts)
            if also is not None:
                also(s)
            s.commit()
            return (row.channel, row.ts) if row is not None else ("", POSTING)

    def open_dm(self, user_id: str) -> str:
        """The channel of Purser's DM with a person, for a message reserved before it is posted (``post_reserved``).

        Refused, like every call, once Slack took the access away.
        """
        with self.db.session() as s:
            gone = slack_access.lost(s)
        if gone is not None:
            raise SlackAccessLost(gone.why)
        return self.client.conversations_open(users=user_id)["channel"]["id"]

    def post_reserved(self, ref: str, channel: str, text: str, blocks: Sequence[Block], *, also: Also | None = None) -> str:
        """Post a message whose ref this attempt reserved (``store.messages.reserve_with``) in a transaction it has
        committed just now; its ts and ``also`` commit together, as with ``post``; the ts.

        Only for a ref nobody else edits and that this very attempt reserved: no earlier attempt can have
        sent it, so nothing is searched or locked first (``open_dm`` checked the access moments ago). A
        later attempt, after a failure anywhere here, must go through ``post``/``dm``, which search.
        """
        payload = [b.to_dict() for b in blocks]
        metadata = {"event_type": EVENT_TYPE, "event_payload": {"ref": ref}}
        with self._lock(ref):
            answer = self.client.chat_postMessage(channel=channel, text=text, blocks=payload, metadata=metadata, unfurl_links=False, unfurl_media=False)
            with self.db.session() as s:
                record_posted(s, ref, answer["channel"], answer["ts"])
                if also is not None:
                    also(s)
                s.commit()
        return answer["ts"]

    def edit_with_copies(
        self, ref: str, copies: str, text: str, blocks: Sequence[Block], *, also: Also | None = None,
        render: Callable[[], tuple[str, Sequence[Block]]] | None = None,
    ) -> None:  # fmt: skip
        """``edit`` the message posted under ``ref`` and every copy of it (refs starting with ``copies``), their rows
        found and locked in one SELECT; ``also`` as with ``edit``. ``render``, when given, draws the text and
        blocks once the rows are held, so an edit that waited for another never puts back an older state."""
        with self._lock(ref), self.db.session() as s:
            gone = slack_access.lost(s)
            if gone is not None:
                raise SlackAccessLost(gone.why)
            rows = hold_with_copies(s, ref, copies)
            if self.db.dialect != "postgresql":
                s.commit()  # as in _held: never hold SQLite's write lock over HTTP
            if render is not None:  # on SQLite the process's lock on the ref serialises the edits instead
                text, blocks = render()
            payload = [b.to_dict() for b in blocks]
            for row in rows:
                ts = row.ts or self._posted_before(row.channel, row.ref, row.created_at)  # an interrupted post, as in edit
                if ts:
                    self.client.chat_update(channel=row.channel, ts=ts, text=text, blocks=payload)
                    if ts != row.ts:
                        record_sent(row, row.channel, ts)
            if also is not None:
                also(s)
            s.commit()

    def upload(
        self, ref: str, channel: str | None, *, filename: str, content: bytes, alt_text: str, title: str,
        initial_comment: str | None = None, thread_ts: str | None = None,
    ) -> str:  # fmt: skip
        """Upload ``content`` under ``ref`` once and share it in ``channel`` (None: a private file, for
        App Home's image blocks); the Slack file id. Later calls with the same ref return that id."""
        return self._upload(ref, channel or "", lambda: [channel] if channel else [], filename=filename, content=content,
                            alt_text=alt_text, title=title, initial_comment=initial_comment, thread_ts=thread_ts)  # fmt: skip

    def upload_dm(self, ref: str, user_ids: list[str], *, filename: str, content: bytes, alt_text: str, title: str, initial_comment: str | None = None) -> str:
        """``upload`` once, shared into each person's DM with Purser; the Slack file id."""
        def dms() -> list[str]:
            return [self.client.conversations_open(users=user)["channel"]["id"] for user in user_ids]

        return self._upload(ref, "", dms, filename=filename, content=content, alt_text=alt_text, title=title, initial_comment=initial_comment, thread_ts=None)

    def _upload(
        self, ref: str, where: str, channels: Callable[[], list[str]], *, filename: str, content: bytes, alt_text: str, title: str,
        initial_comment: str | None, thread_ts: str | None,
    ) -> str:  # fmt: skip
        with self._held(ref, where) as (s, row, _):
            if row.ts == POSTING:
                shared = channels()
                answer = self.client.files_upload_v2(
                    filename=filename, content=content, title=title, alt_txt=alt_text[:MAX_ALT_TEXT], initial_comment=initial_comment,
                    thread_ts=thread_ts, **({"channels": shared} if len(shared) > 1 else {"channel": shared[0]} if shared else {}),
                )  # fmt: skip
                record_sent(row, row.channel, answer["files"][0]["id"])
            s.commit()
            return row.ts

    def _posted_before(self, channel: str, ref: str, since: datetime) -> str | None:
        """The ts of a message an interrupted attempt posted under ``ref``, if it did."""
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        oldest, cursor = f"{since.timestamp() - 300:.6f}", None  # five minutes' slack for the clocks' disagreement
        try:
            for _ in range(10):
                page = self.client.conversations_history(channel=channel, oldest=oldest, limit=200, include_all_metadata=True, cursor=cursor)
                for message in page.get("messages") or []:
                    meta = message.get("metadata") or {}
                    if meta.get("event_type") == EVENT_TYPE and (meta.get("event_payload") or {}).get("ref") == ref:
                        return message["ts"]
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except SlackApiError as exc:
            if exc.response.get("error") not in UNSEARCHABLE:
                raise
            log.warning("cannot search %s for an interrupted post (%s); posting %s", channel, exc.response.get("error"), ref)
        return None

    def user_by_email(self, email: str) -> str | None:
        from slack_sdk.errors import SlackApiError

        try:
            return self.client.users_lookupByEmail(email=email)["user"]["id"]
        except SlackApiError as exc:
            if exc.response.get("error") == "users_not_found":
                return None
            raise
