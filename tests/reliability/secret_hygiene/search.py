"""The deployment the secret-hygiene runs use, and where they search for secrets: logs, Slack, answers, the store."""

from __future__ import annotations

import itertools
import json
import logging
import secrets as random
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from store.models import Base
from store.secrets import Cipher
from tests.fixtures_workers import BOT_TOKEN, Workers
from tests.slack_requests import SlackSender

TEAM = "local"
REVEALED = "key_revealed"  # the reveal modal's callback_id: the one place a secret may be shown
_users = itertools.count(1)


def user() -> str:
    return f"U0HYG{next(_users):05d}"


def dm(user_id: str) -> str:
    return "D" + user_id[1:]


def buttons(message) -> dict[str, str]:
    return {e["action_id"]: e["value"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]}


# -- Purser as deployed: configured from the environment, served over HTTP ---------------


@dataclass
class Config:
    """The operator's secrets, fresh for each run so a hit cannot come from elsewhere."""

    signing_secret: str = field(default_factory=lambda: random.token_hex(16))
    management_key: str = field(default_factory=lambda: "sk-or-v1-" + random.token_hex(32))
    fernet_key: str = field(default_factory=Cipher.generate)
    ingest_token: str = field(default_factory=lambda: "ingest-" + random.token_urlsafe(24))
    db_password: str = field(default_factory=lambda: "pw-" + random.token_hex(12))

    def needles(self, with_db_password: bool) -> dict[str, str]:
        found = {
            "SLACK_SIGNING_SECRET": self.signing_secret,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "OPENROUTER_MANAGEMENT_KEY": self.management_key,
            # base64 padding is URL-encoded in form bodies; the key without it is still unique
            "PURSER_SECRET_KEY": self.fernet_key.rstrip("="),
            "PURSER_INGEST_TOKEN": self.ingest_token,
        }
        if with_db_password:
            found["DATABASE_URL password"] = self.db_password
        return found


def answer_text(response: httpx.Response) -> str:
    return f"{response.status_code} {dict(response.headers)} {response.text}"


class RecordingSender(SlackSender):
    """Signed requests like Slack's, keeping every answer the app gave, headers and all."""

    answers: list[str]

    def post(self, *args, **kwargs) -> httpx.Response:
        response = super().post(*args, **kwargs)
        self.answers.append(answer_text(response))
        return response


@dataclass
class Deployment:
    url: str
    slack: RecordingSender
    workers: Workers
    app: object
    config: Config
    db_password_in_use: bool

    def settle(self) -> None:
        self.workers.settle(timeout=60)

    def gateway(self, method: str, path: str, token: str, **kwargs) -> httpx.Response:
        response = httpx.request(method, self.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10, **kwargs)
        self.slack.answers.append(answer_text(response))
        return response


def every_logger_at_debug() -> list[tuple[logging.Logger, int, bool]]:
    """Every logger that exists, root included, at DEBUG (the product's own quieting overridden too)."""
    loggers = [logging.getLogger()] + [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    return saved


# -- what to search ------------------------------------------------------------------


def log_text(caplog) -> tuple[int, str]:
    records = caplog.get_records("setup") + caplog.get_records("call")
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    return len(records), "\n".join(formatter.format(r) for r in records)


def is_reveal_call(call) -> bool:
    return call.method == "views.open" and isinstance(call.args.get("view"), dict) and call.args["view"].get("callback_id") == REVEALED


def slack_text(slack_api) -> tuple[int, str]:
    """Everything Purser sent to Slack, but each reveal modal's own views.open."""
    calls = [{"method": c.method, "args": c.args} for c in slack_api.calls if not is_reveal_call(c)]
    kept = {
        "calls": calls,
        "messages": [(m.channel, m.text, m.blocks) for m in slack_api.messages.values()],
        "ephemeral": [(m.channel, m.user, m.text, m.blocks) for m in slack_api.ephemeral],
        "views": [v for v in slack_api.views.values() if v.get("callback_id") != REVEALED],
        "home": slack_api.home,
    }
    return len(calls), json.dumps(kept, default=str, ensure_ascii=False)


def database_text(db) -> tuple[int, str]:
    """Every row of every table, bytes as latin-1 so no byte sequence escapes the search."""
    rows, lines = 0, []
    with db.session() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).mappings():
                rows += 1
                cells = {k: _plain(v) for k, v in row.items()}
                lines.append(f"{table.name} {json.dumps(cells, default=str, ensure_ascii=False)}")
    return rows, "\n".join(lines)


def _plain(value):
    if isinstance(value, memoryview):
        value = bytes(value)
    return value.decode("latin-1") if isinstance(value, bytes) else value


def hits(haystacks: dict[str, str], needles: dict[str, str]) -> list[tuple[str, str, int, str]]:
    """(where, which secret, how often, the first line it is on — the secret itself masked)."""
    found = []
    for where, text in haystacks.items():
        for name, secret in needles.items():
            if secret in text:
                at = text.index(secret)
                line = text[text.rfind("\n", 0, at) + 1 : text.find("\n", at) if "\n" in text[at:] else None]
                found.append((where, name, text.count(secret), line.replace(secret, f"<{name}>")[:400]))
    return found


def reveal_modals(slack_api) -> list[str]:
    """The secret each key_revealed modal showed, in order."""
    shown = []
    for call in slack_api.calls:
        if is_reveal_call(call):
            [secret] = [b["text"]["text"] for b in call.args["view"]["blocks"] if b["type"] == "section" and b["text"]["type"] == "plain_text"]
            shown.append(secret)
    return shown
