"""A Slack Web API double over real HTTP: answers like Slack, records every call, and refuses invalid Block Kit.

Both the tests and the local sandbox use this one implementation. Every ``blocks`` or
``view`` payload is parsed with ``slack_sdk.models`` and validated against Slack's limits
(50 blocks in a message, 100 in a view, text lengths); an invalid one is answered with
``invalid_blocks`` exactly as Slack would, and remembered in ``invalid`` so a test fails.
File uploads, and the images blocks show from them, are sandbox/slack_files.py's part.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from werkzeug.wrappers import Request, Response

from sandbox.slack_files import UPLOAD_PATH, FilesAPI

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT = 40_000


def check_blocks(blocks: Any, limit: int) -> str | None:
    """None when valid, else what is wrong (in Slack's spirit)."""
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return "blocks is not JSON"
    if not isinstance(blocks, list):
        return "blocks must be a list"
    if len(blocks) > limit:
        return f"{len(blocks)} blocks, more than {limit}"
    for i, raw in enumerate(blocks):
        if not isinstance(raw, dict):
            return f"block {i} is not an object"
        try:
            parsed = Block.parse(raw)
            if parsed is None:
                return f"block {i} has an unknown type {raw.get('type')!r}"
            parsed.validate_json()
        except Exception as exc:  # slack_sdk raises SlackObjectFormationError and friends
            return f"block {i} ({raw.get('type')}): {exc}"
    return None


def check_view(view: Any) -> str | None:
    if isinstance(view, str):
        try:
            view = json.loads(view)
        except ValueError:
            return "view is not JSON"
    if not isinstance(view, dict):
        return "view must be an object"
    problem = check_blocks(view.get("blocks", []), MAX_VIEW_BLOCKS)
    if problem:
        return problem
    try:
        View(**view).validate_json()
    except Exception as exc:
        return f"view: {exc}"
    return None


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float = field(default_factory=time.time)


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict]
    user: str | None = None  # for ephemeral messages: the only one who sees it
    thread_ts: str | None = None
    updated: int = 0
    metadata: dict | None = None  # what chat.postMessage was given as ``metadata``
    # Who wrote it: a person's user id, or None for Purser's own posts. Kept apart from ``user``,
    # which means "only this person sees it", so a person's message stays visible to everyone.
    author: str | None = None
    files: list[dict] = field(default_factory=list)  # files shared with the message (files.completeUploadExternal)


def response_url(base: str, channel: str, user: str, n: int | str) -> str:
    """Where the app answers one slash command later: Slack hands out such a URL with every command."""
    return f"{base.rstrip('/')}/response/{channel or '-'}/{user or '-'}/{n}"


class SlackAPI(FilesAPI):
    """The WSGI app. ``calls`` records everything; ``messages`` holds the current state of each message.

    Besides the Web API methods it takes what the app posts to a command's ``response_url``
    (made by ``response_url()`` above): kept by URL in ``responses``, and shown like Slack shows
    it, as an ephemeral message for the one who typed the command (or in the channel).
    """

    def __init__(self, token: str | None = None, users: dict[str, dict] | None = None) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.invalid: list[tuple[str, str]] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.ephemeral: list[Message] = []
        self.views: dict[str, dict] = {}  # view id -> view (with "user")
        self.home: dict[str, dict] = {}  # user -> App Home view
        self.responses: dict[str, list[dict]] = {}  # response_url path -> what was posted to it
        self.users = users or {}
        self._ts = itertools.count(1)
        self._views = itertools.count(1)
        self._lock = threading.RLock()
        self._failures: list[tuple[str, int, float | None, int, str | None]] = []  # (method, status, retry_after, times, error)
        self._init_files()

    # -- for tests -------------------------------------------------------------------

    def fail(self, method: str, status: int = 429, retry_after: float | None = 1, times: int = 1, error: str | None = None) -> None:
        """Answer the next ``times`` calls of ``method`` (or "*") with an HTTP error — or, given
        ``error``, as Slack answers a call it refuses: HTTP 200 with ``{"ok": false, "error": …}``
        (``expired_trigger_id``, ``not_in_channel`` …)."""
        with self._lock:
            self._failures.append((method, 200 if error else status, retry_after, times, error))

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def channel_messages(self, channel: str) -> list[Message]:
        return sorted((m for m in self.messages.values() if m.channel == channel), key=lambda m: float(m.ts))

    def post_as(self, author: str, channel: str, text: str) -> Message:
        """A person's own message in a channel, kept as Slack keeps it when they send it (the sandbox's composer)."""
        with self._lock:
            message = Message(channel, self._next_ts(), text, [], author=author)
            self.messages[(channel, message.ts)] = message
        return message

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.invalid.clear()
            self.messages.clear()
            self.ephemeral.clear()
            self.views.clear()
            self.home.clear()
            self.responses.clear()
            self.uploads.clear()
            self._failures.clear()

    # -- the API -------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        if "/response/" in request.path:
            return self._respond(request)(environ, start_response)
        if "/" + UPLOAD_PATH in request.path:
            return self._receive_upload(request)(environ, start_response)
        prefix, _, method = request.path.rstrip("/").rpartition("/")
        args = self._args(request)
        with self._lock:
            self.calls.append(Call(method, args))
            failure = self._take_failure(method)
        if failure is not None:
            status, retry_after, error = failure
            if error:
                return self._json({"ok": False, "error": error})(environ, start_response)
            headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
            return Response(json.dumps({"ok": False, "error": "ratelimited" if status == 429 else "internal_error"}), status=status, headers=headers, mimetype="application/json")(environ, start_response)
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._json({"ok": False, "error": "invalid_auth"})(environ, start_response)
        handler = getattr(self, "api_" + method.replace(".", "_"), None)
        if handler is None:
            body = {"ok": False, "error": "unknown_method"}
        else:
            with self._lock:
                self._here = request.host_url.rstrip("/") + prefix + "/"
                body = handler(args)
        return self._json(body)(environ, start_response)

    def _respond(self, request: Request) -> Response:
        """A post to a command's response_url. Slack answers ``ok`` in plain text, or 404 for a URL it never gave."""
        parts = request.path.split("/response/", 1)[1].strip("/").split("/")
        if len(parts) != 3:
            return Response("invalid_url", status=404)
        channel, user = (p if p != "-" else "" for p in parts[:2])
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return Response("invalid_payload", status=400)
        with self._lock:
            self.calls.append(Call("response_url", body))
            failure = self._take_failure("response_url")
            if failure is not None:
                status, retry_after, _ = failure
                return Response("rate_limited" if status == 429 else "internal_error", status=status, headers={"Retry-After": str(int(retry_after))} if retry_after else {})
            checked = self._text_and_blocks("response_url", body)
            if isinstance(checked, dict):
                return Response(checked.get("error", "invalid_blocks"), status=400)
            self.responses.setdefault(request.path, []).append(body)
            if body.get("response_type") == "in_channel":
                message = Message(channel, self._next_ts(), *checked)
                self.messages[(channel, message.ts)] = message
            else:
                self.ephemeral.append(Message(channel, self._next_ts(), *checked, user=user))
        return Response("ok", mimetype="text/plain")

    def _take_failure(self, method: str):
        for i, (m, status, retry_after, times, error) in enumerate(self._failures):
            if m in (method, "*"):
                if times <= 1:
                    self._failures.pop(i)
                else:
                    self._failures[i] = (m, status, retry_after, times - 1, error)
                return status, retry_after, error
        return None

    @staticmethod
    def _args(request: Request) -> dict[str, Any]:
        if request.mimetype == "application/json":
            return request.get_json(silent=True) or {}
        args = dict(request.form.items())
        args.update(request.args.items())
        for name in ("blocks", "view", "attachments", "metadata"):
            if isinstance(args.get(name), str):
                try:
                    args[name] = json.loads(args[name])
                except ValueError:
                    pass
        return args

    @staticmethod
    def _json(body: dict) -> Response:
        return Response(json.dumps(body), mimetype="application/json")

    def _invalid(self, method: str, problem: str) -> dict:
        self.invalid.append((method, problem))
        return {"ok": False, "error": "invalid_blocks", "errors": [problem]}

    @staticmethod
    def _call(method: str, args: dict) -> Call:
        return Call(method, args)

    def _message_with_files(self, channel: str, text: str, files: list[dict], thread_ts: str | None) -> Message:
        return Message(channel, self._next_ts(), text, [], thread_ts=thread_ts, files=files)

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _text_and_blocks(self, method: str, args: dict) -> tuple[str, list] | dict:
        blocks = args.get("blocks") or []
        problem = (check_blocks(blocks, MAX_MESSAGE_BLOCKS) or self._file_problem(blocks)) if blocks else None
        if problem:
            return self._invalid(method, problem)
        text = args.get("text") or ""
        if not text and not blocks:
            return {"ok": False, "error": "no_text"}
        if len(text) > MAX_TEXT:
            return {"ok": False, "error": "msg_too_long"}
        return text, blocks

    def api_auth_test(self, args: dict) -> dict:
        return {"ok": True, "user_id": "UPURSERBOT", "bot_id": "BPURSER", "team_id": "T0SANDBOX", "team": "Sandbox"}

    def api_chat_postMessage(self, args: dict) -> dict:
        checked = self._text_and_blocks("chat.postMessage", args)
        if isinstance(checked, dict):
            return checked
        channel = args.get("channel") or ""
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel.startswith(("U", "W")):
            channel = self._dm_channel(channel)
        metadata = args.get("metadata") if isinstance(args.get("metadata"), dict) else None
        message = Message(channel, self._next_ts(), *checked, thread_ts=args.get("thread_ts"), metadata=metadata)
        self.messages[(channel, message.ts)] = message
        return {"ok": True, "channel": channel, "ts": message.ts, "message": {"text": message.text, "blocks": message.blocks}}

    def api_conversations_history(self, args: dict) -> dict:
        """Newest first, after ``oldest``, a page of ``limit`` at a time; metadata only when asked for, as Slack does."""
        channel = args.get("channel", "")
        oldest = float(args.get("oldest") or 0)
        found = sorted((m for m in self.messages.values() if m.channel == channel and float(m.ts) > oldest), key=lambda m: float(m.ts), reverse=True)
        start, limit = int(args.get("cursor") or 0), min(int(args.get("limit") or 100), 999)
        page = found[start : start + limit]
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        messages = [{"type": "message", "ts": m.ts, "text": m.text, **({"user": m.author} if m.author else {}), **({"metadata": m.metadata} if with_metadata and m.metadata else {}), **({"files": m.files} if m.files else {})} for m in page]
        more = start + limit < len(found)
        return {"ok": True, "messages": messages, "has_more": more, "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def api_chat_update(self, args: dict) -> dict:
        checked = self._text_and_blocks("chat.update", args)
        if isinstance(checked, dict):
            return checked
        message = self.messages.get((args.get("channel", ""), args.get("ts", "")))
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        message.text, message.blocks = checked
        message.updated += 1
        return {"ok": True, "channel": message.channel, "ts": message.ts}

    def api_chat_postEphemeral(self, args: dict) -> dict:
        checked = self._text_and_blocks("chat.postEphemeral", args)
        if isinstance(checked, dict):
            return checked
        self.ephemeral.append(Message(args.get("channel", ""), self._next_ts(), *checked, user=args.get("user")))
        return {"ok": True, "message_ts": self.ephemeral[-1].ts}

    def _dm_channel(self, user: str) -> str:
        return "D" + user[1:]

    def api_conversations_open(self, args: dict) -> dict:
        users = str(args.get("users", "")).split(",")
        if not users or not users[0]:
            return {"ok": False, "error": "users_list_not_supplied"}
        return {"ok": True, "channel": {"id": self._dm_channel(users[0])}}

    def api_users_info(self, args: dict) -> dict:
        user = args.get("user", "")
        info = self.users.get(user)
        if info is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": user, "name": info.get("name", user), "profile": {"email": info.get("email"), "real_name": info.get("name", user)}}}

    def api_users_list(self, args: dict) -> dict:
        """The team's directory, ``limit`` at a time (Slack: up to 1,000, 200 advised) behind ``cursor``;
        ``deleted`` marks a deactivated account, ``is_restricted`` a guest."""
        people = sorted(self.users.items())
        start, limit = int(args.get("cursor") or 0), max(1, min(int(args.get("limit") or 0) or 1000, 1000))
        page = people[start : start + limit]
        more = start + limit < len(people)
        members = [
            {
                "id": user,
                "team_id": info.get("team_id", "T0LOCAL"),
                "name": info.get("name", user),
                "deleted": bool(info.get("deleted")),
                "is_restricted": bool(info.get("is_restricted")),
                "is_ultra_restricted": bool(info.get("is_ultra_restricted")),
                "is_bot": bool(info.get("is_bot")),
                "profile": {"email": info.get("email"), "real_name": info.get("name", user)},
            }
            for user, info in page
        ]
        return {"ok": True, "members": members, "cache_ts": int(time.time()), "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def api_users_lookupByEmail(self, args: dict) -> dict:
        email = str(args.get("email", "")).lower()
        for user, info in self.users.items():
            if str(info.get("email", "")).lower() == email:
                return {"ok": True, "user": {"id": user, "profile": {"email": email}}}
        return {"ok": False, "error": "users_not_found"}

    def api_views_open(self, args: dict) -> dict:
        view = args.get("view")
        problem = check_view(view) or self._file_problem(view.get("blocks"))
        if problem:
            return self._invalid("views.open", problem)
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view_id = f"V{next(self._views):08d}"
        self.views[view_id] = {**view, "id": view_id, "trigger_id": args["trigger_id"]}
        return {"ok": True, "view": self.views[view_id]}

    def api_views_update(self, args: dict) -> dict:
        view = args.get("view")
        problem = check_view(view) or self._file_problem(view.get("blocks"))
        if problem:
            return self._invalid("views.update", problem)
        view_id = args.get("view_id")
        if view_id not in self.views:
            return {"ok": False, "error": "not_found"}
        self.views[view_id] = {**view, "id": view_id}
        return {"ok": True, "view": self.views[view_id]}

    def api_views_publish(self, args: dict) -> dict:
        view = args.get("view")
        problem = check_view(view) or self._file_problem(view.get("blocks"))
        if problem:
            return self._invalid("views.publish", problem)
        self.home[args.get("user_id", "")] = view
        return {"ok": True, "view": view}
