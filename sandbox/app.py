"""The sandbox: a web page that plays Slack for Purser on localhost.

It serves the Slack Web API double Purser's workers and bot call (the same one the
tests use), and a page where you pick who you are, type slash commands and messages,
click buttons and fill modals. Everything a person does reaches the bot exactly as Slack
would send it: a signed HTTP request to ``/slack/events`` (form-encoded for commands and
clicks, an Events API callback for messages and App Home).
"""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime, timezone
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import httpx
from werkzeug.wrappers import Request, Response

from sandbox.demo import CHANNELS, PEOPLE
from sandbox.signing import sign
from sandbox.slack_api import Message, SlackAPI, response_url
from store.db import Database
from store.errors import DomainError
from store.models import ApiKey, Member, Project, Workspace
from store.money import parse_money
from store.types import MemberStatus
from store.ingest import UsageIn, ingest_usage

STATIC = Path(__file__).with_name("static")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png"}


class Sandbox:
    def __init__(self, db: Database, slack_api: SlackAPI, bot, signing_secret: str, team_id: str) -> None:
        self.db = db
        self.api = slack_api
        self.bot = bot  # the WSGI app serving /slack/events
        self.bot_url = ""  # set once the server knows its port
        self.api_url = ""  # the Web API double's base URL, where commands' later answers go
        self.secret = signing_secret
        self.team_id = team_id
        self.triggers: dict[str, str] = {}  # trigger id -> the user who clicked
        self.closed: set[str] = set()  # view ids the user closed or submitted
        self._n = itertools.count(1)
        self.api.users.update({p.user_id: {"name": p.name, "email": p.email} for p in PEOPLE})

    # -- WSGI --------------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        path = request.path
        if path.startswith("/api/"):
            return self.api(environ, start_response)
        if path == "/slack/events" or path.startswith("/v1/") or path == "/healthz":
            return self.bot(environ, start_response)
        if path == "/":
            return self._static("index.html")(environ, start_response)
        if path.startswith("/static/"):
            return self._static(path[len("/static/") :])(environ, start_response)
        if path.startswith("/files/"):
            return self._file(path[len("/files/") :])(environ, start_response)
        if path.startswith("/sandbox/"):
            try:
                body = request.get_json(silent=True) or {}
                handler = getattr(self, "do_" + path[len("/sandbox/") :].replace("-", "_"), None)
                if handler is None:
                    return Response("not found", status=404)(environ, start_response)
                result = handler(body) if request.method == "POST" else handler(dict(request.args))
                return Response(json.dumps(result), mimetype="application/json")(environ, start_response)
            except DomainError as exc:
                return Response(json.dumps({"error": exc.message}), status=400, mimetype="application/json")(environ, start_response)
        return Response("not found", status=404)(environ, start_response)

    def _static(self, name: str) -> Response:
        path = (STATIC / name).resolve()
        if STATIC.resolve() not in path.parents or not path.is_file():
            return Response("not found", status=404)
        return Response(path.read_bytes(), mimetype=TYPES.get(path.suffix, "application/octet-stream"))

    def _file(self, file_id: str) -> Response:
        """A shared or private upload's bytes, as Slack shows it: an image inline, anything else as a download."""
        upload = self.api.uploads.get(file_id)
        if upload is None or not upload.completed:
            return Response("not found", status=404)
        disposition = "inline" if upload.is_image else f'attachment; filename="{upload.filename.replace(chr(34), "")}"'
        return Response(upload.data, mimetype=upload.mimetype, headers={"Content-Disposition": disposition, "Cache-Control": "private, max-age=3600"})

    # -- playing Slack -----------------------------------------------------------------

    def _trigger(self, user: str) -> str:
        trigger = f"{next(self._n)}.{uuid.uuid4().hex[:12]}"
        self.triggers[trigger] = user
        return trigger

    def _post(self, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> httpx.Response:
        ts = str(int(time.time()))
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(self.secret, ts, body)}
        return httpx.post(self.bot_url, content=body, headers=headers, timeout=10)

    def do_send(self, body: dict) -> dict:
        """What was typed in the composer: a slash command, or else a message in the channel."""
        user, channel, line = body.get("user", ""), body.get("channel", "C0GENERAL1"), (body.get("text") or "").strip()
        if not line:
            return {"ok": False}
        return self._command(user, channel, line) if line.startswith("/") else self._say(user, channel, line)

    def _say(self, user: str, channel: str, text: str) -> dict:
        """A person's message: shown in the channel as theirs, and delivered to Purser as Slack's
        ``message`` event, as Slack delivers every message in a conversation Purser is in.
        That is how the leak guard gets to see a key pasted where it should not be."""
        message = self.api.post_as(user, channel, text)
        event = {
            "type": "message",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": message.ts,
            "event_ts": message.ts,
            "team": self.team_id,
            "channel_type": "im" if channel.startswith("D") else "channel",
        }
        answer = self._post(json.dumps(self._callback(event)).encode(), "application/json")
        if answer.status_code != 200:
            self._ephemeral(user, channel, f"Purser did not take your message: it answered {answer.status_code} {answer.text[:200]}")
        return {"ok": answer.status_code == 200}

    def _callback(self, event: dict) -> dict:
        """The Events API envelope Slack wraps every event in."""
        return {"type": "event_callback", "team_id": self.team_id, "api_app_id": "A0SANDBOX", "event_id": f"Ev{next(self._n)}", "event_time": int(time.time()), "event": event}

    def _command(self, user: str, channel: str, line: str) -> dict:
        command, _, text = line.partition(" ")
        form = {
            "token": "sandbox",
            "team_id": self.team_id,
            "team_domain": "sandbox",
            "channel_id": channel,
            "channel_name": CHANNELS.get(channel, "directmessage"),
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0SANDBOX",
            "response_url": response_url(self.api_url, channel, user, next(self._n)),
            "trigger_id": self._trigger(user),
        }
        answer = self._post(urlencode(form).encode())
        self._show_answer(answer, user, channel, f"`{line}`")
        return {"ok": answer.status_code == 200}

    def _show_answer(self, answer: httpx.Response, user: str, channel: str, echo: str) -> None:
        """A command's direct answer is an ephemeral message only the one who typed it sees."""
        if answer.status_code == 404:
            self._ephemeral(user, channel, f"{echo} is not a Purser command.")
            return
        if answer.status_code != 200:
            self._ephemeral(user, channel, f"Purser answered {answer.status_code}: {answer.text[:200]}")
            return
        if not answer.content:
            return
        try:
            data = answer.json()
        except ValueError:
            data = {"text": answer.text}
        if data.get("text") or data.get("blocks"):
            self._ephemeral(user, channel, data.get("text", ""), data.get("blocks") or [])

    def _ephemeral(self, user: str, channel: str, text: str, blocks: list | None = None) -> None:
        self.api.ephemeral.append(Message(channel, self.api._next_ts(), text, blocks or [], user=user))

    def do_click(self, body: dict) -> dict:
        user = body.get("user", "")
        payload = {
            "type": "block_actions",
            "team": {"id": self.team_id, "domain": "sandbox"},
            "user": {"id": user, "team_id": self.team_id},
            "api_app_id": "A0SANDBOX",
            "trigger_id": self._trigger(user),
            "actions": [{"type": "button", "action_id": body.get("action_id"), "block_id": body.get("block_id", ""), "value": body.get("value", ""), "action_ts": str(time.time())}],
        }
        if body.get("view_id") == "home":
            payload["view"] = {"type": "home", "id": "home"}
            payload["container"] = {"type": "view", "view_id": "home"}
        elif body.get("channel"):
            payload["channel"] = {"id": body["channel"]}
            payload["container"] = {"type": "message", "channel_id": body["channel"], "message_ts": body.get("ts")}
            payload["message"] = {"ts": body.get("ts")}
        answer = self._post(urlencode({"payload": json.dumps(payload)}).encode())
        return {"ok": answer.status_code == 200}

    def do_submit(self, body: dict) -> dict:
        user, view_id = body.get("user", ""), body.get("view_id", "")
        view = self.api.views.get(view_id)
        if view is None:
            return {"ok": False, "errors": {"": "This form is gone."}}
        state = {"values": {block: {"value": {"type": "plain_text_input", "value": value}} for block, value in (body.get("values") or {}).items()}}
        payload = {"type": "view_submission", "team": {"id": self.team_id}, "user": {"id": user, "team_id": self.team_id}, "api_app_id": "A0SANDBOX", "view": {**view, "state": state}}
        answer = self._post(urlencode({"payload": json.dumps(payload)}).encode())
        data = answer.json() if answer.content else {}
        if data.get("response_action") == "errors":
            return {"ok": False, "errors": data.get("errors", {})}
        self.closed.add(view_id)
        return {"ok": answer.status_code == 200}

    def do_close(self, body: dict) -> dict:
        self.closed.add(body.get("view_id", ""))
        return {"ok": True}

    def do_home(self, body: dict) -> dict:
        event = {"type": "app_home_opened", "user": body.get("user", ""), "tab": "home"}
        answer = self._post(json.dumps(self._callback(event)).encode(), "application/json")
        return {"ok": answer.status_code == 200}

    def do_spend(self, body: dict) -> dict:
        """Report spend on a key, as a team's gateway would after a model call."""
        key_id = int(body.get("key_id") or 0)
        amount = parse_money(str(body.get("amount") or ""))
        event = UsageIn(f"sandbox-{uuid.uuid4().hex}", key_id, amount, datetime.now(timezone.utc), model=body.get("model") or "sandbox-model")
        result = self.db.run(ingest_usage, [event])
        if result.refused:
            return {"ok": False, "error": next(iter(result.refused.values()))}
        return {"ok": True, "crossings": [c.describe() for c in result.crossings], "paused": result.paused}

    # -- what the page shows -----------------------------------------------------------

    def do_state(self, args: dict) -> dict:
        user = args.get("user") or PEOPLE[0].user_id
        dm = "D" + user[1:]
        channels = [{"id": cid, "name": f"#{name}"} for cid, name in CHANNELS.items()] + [{"id": dm, "name": "Purser (DM)"}]
        visible = {c["id"] for c in channels}
        messages = {}
        for cid in visible:
            messages[cid] = [self._message(m) for m in self.api.channel_messages(cid)]
        for m in self.api.ephemeral:
            if m.user == user and m.channel in visible:
                messages.setdefault(m.channel, []).append({**self._message(m), "ephemeral": True})
        for cid in messages:
            messages[cid].sort(key=lambda m: float(m["ts"]))
        modal = None
        for view_id, view in self.api.views.items():
            if view_id not in self.closed and self.triggers.get(view.get("trigger_id", "")) == user:
                modal = view
        return {
            "user": user,
            "people": [{"id": p.user_id, "name": p.name} for p in PEOPLE],
            "channels": channels,
            "messages": messages,
            "modal": modal,
            "home": self.api.home.get(user),
            "keys": self._keys(),
        }

    @staticmethod
    def _message(m: Message) -> dict:
        return {"channel": m.channel, "ts": m.ts, "thread_ts": m.thread_ts, "author": m.author, "text": m.text, "blocks": m.blocks, "edited": m.updated > 0, "files": m.files}

    def _keys(self) -> list[dict]:
        """Every key of the demo team's people, revoked ones too: a leaked key is seen to stop."""
        def rows(s):
            q = (
                s.query(ApiKey, Member, Workspace, Project)
                .join(Member, Member.id == ApiKey.member_id)
                .join(Workspace, Workspace.id == ApiKey.workspace_id)
                .outerjoin(Project, Project.id == ApiKey.project_id)
                .filter(Member.status == MemberStatus.ACTIVE)
                .order_by(ApiKey.id)
            )
            names = {p.user_id: p.name.split(" ")[0] for p in PEOPLE}
            return [
                {
                    "id": k.id,
                    "label": f"{w.slug} · {k.name} ({names.get(m.slack_user_id, m.slack_user_id)}){' · ' + p.slug if p else ''}",
                    "status": k.status.value,
                    "why": _channel_names(k.status_reason or ""),
                }
                for k, m, w, p in q
            ]

        return self.db.run(rows)


def _channel_names(text: str) -> str:
    """A reason like "leaked in <#C0GENERAL1>" as the page shows it: "leaked in #general"."""
    return re.sub(r"<#([A-Z0-9]+)(?:\|[^>]*)?>", lambda m: "#" + CHANNELS.get(m.group(1), m.group(1)), text)
