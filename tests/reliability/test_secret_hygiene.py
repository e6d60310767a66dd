"""Secret hygiene: whole runs over HTTP with the workers, searched for every secret they handled.

A key's secret exists in clear only in the provider's answer, the encrypted reveal row and
the one modal that shows it (docs/design.md). These runs configure Purser the way
production does (environment variables read by ``bot.web.create_app`` and the workers'
``from_settings``), issue local and OpenRouter keys, rotate them, leave some unrevealed,
make OpenRouter fail with messages that echo secrets, report usage through the gateway,
and then search every log record (every logger at DEBUG), every call to the fake Slack,
every answer the app gave and every row of every table for every secret they know.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets as random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from bot.web import create_app
from purser.cli import app as cli
from purser.settings import Settings, get_settings
from sandbox.serve import serve_in_thread
from store import keys, workspaces
from store import secrets as store_secrets
from store.errors import InvalidInput
from store.models import ApiKey, Base, KeyReveal
from store.secrets import Cipher, use_cipher
from store.types import Role, utcnow
from tests import factories as f
from tests.fixtures_workers import BOT_TOKEN, Workers
from tests.slack_requests import SlackSender
from workers import maintenance
from workers.broker import use_broker
from workers.providers import get_provider
from workers.providers.openrouter import OpenRouterProvider
from workers.runtime import configure, from_settings

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


@pytest.fixture
def deployed(db, slack_server, openrouter, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    saved_levels = every_logger_at_debug()
    _, slack_url = slack_server
    config = Config()
    url = db.url
    if db.dialect == "postgresql":  # trust auth ignores the password, so it can be a needle
        url = make_url(db.url).set(password=config.db_password).render_as_string(hide_password=False)
    env = {
        "DATABASE_URL": url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": config.signing_secret,
        "SLACK_API_URL": slack_url + "/api/",
        "SLACK_TEAM_ID": TEAM,
        "PURSER_SECRET_KEY": config.fernet_key,
        "PURSER_INGEST_TOKEN": config.ingest_token,
        "OPENROUTER_MANAGEMENT_KEY": config.management_key,
        "OPENROUTER_API_URL": openrouter.url + "/api/v1",
        "LOG_LEVEL": "DEBUG",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    get_provider.cache_clear()
    saved_cipher = store_secrets._cipher
    use_cipher(None)  # the processes read PURSER_SECRET_KEY themselves
    saved_key, openrouter.management_key = openrouter.management_key, config.management_key

    broker = StubBroker()
    broker.emit_after("process_boot")
    use_broker(broker)
    rt = from_settings()  # what a `purser worker` process builds
    configure(rt)
    workers = Workers(broker, rt)
    app = create_app()  # what gunicorn runs
    saved_levels += every_logger_at_debug()  # create_app quiets some and makes new ones; hear everything
    served = serve_in_thread(app)
    sender = RecordingSender(served.url + "/slack/events", config.signing_secret, TEAM)
    sender.answers = []
    yield Deployment(served.url, sender, workers, app, config, db.dialect == "postgresql")
    served.stop()
    workers.stop()
    broker.close()
    configure(None)
    for provider in rt.providers.values():
        getattr(provider, "close", lambda: None)()
    app.db.dispose()
    rt.db.dispose()
    get_settings.cache_clear()
    get_provider.cache_clear()
    use_cipher(saved_cipher)
    openrouter.management_key = saved_key
    for lg, level, disabled in reversed(saved_levels):
        lg.setLevel(level)
        lg.disabled = disabled


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


# -- the flows -----------------------------------------------------------------------


@dataclass
class Team:
    workspace: int
    admin: str
    dev: str
    approvals: str
    clicked: list[str] = field(default_factory=list)  # secrets its members revealed


def team(db, tag: str, environment: str, provider: str = "local") -> Team:
    ws = f.workspace(db, f"{provider[:6]}-{tag}", environment, provider=provider)
    admin = f.member(db, ws, Role.ADMIN, user()).slack_user_id
    dev = f.member(db, ws, Role.DEVELOPER, user()).slack_user_id
    approvals, alerts, audit = (f"C0{tag.upper()}{what}" for what in ("APPROVE", "ALERT", "AUDIT"))
    db.run(workspaces.set_channels, f.OPERATOR, ws, approvals=approvals, alerts=alerts, audit_channel=audit)
    return Team(ws, admin, dev, approvals)


def ready_dm(slack_api, owner: str, name: str, rotated: bool = False):
    prefix = "Your rotated key" if rotated else "Your key"
    [message] = [m for m in slack_api.channel_messages(dm(owner)) if m.text.startswith(f"{prefix} {name} ")]
    return message


def click_reveal(d: Deployment, owner: str, message, key: str | None = None) -> None:
    """``key``: the number a stale copy of the message still carries (after the reveal the button is gone)."""
    d.slack.click(owner, "key_reveal", key or buttons(message)["key_reveal"], channel=dm(owner), message_ts=message.ts)


def reveal(d: Deployment, slack_api, t: Team, owner: str, message) -> str:
    before = len(reveal_modals(slack_api))
    click_reveal(d, owner, message)
    shown = reveal_modals(slack_api)
    assert len(shown) == before + 1, slack_api.ephemeral[-1:]
    t.clicked.append(shown[-1])
    return shown[-1]


def key_number(message) -> str:
    """The key a "your key is ready" DM is about, from the ref it carries (its button goes after the reveal)."""
    return message.metadata["event_payload"]["ref"].removeprefix("key_ready:")


def local_run(d: Deployment, db, slack_api, tag: str) -> Team:
    """Approval, provisioning, reveal (and again), rotation, an unrevealed key, the gateway."""
    t = team(db, tag, "production")
    slack = d.slack
    assert "request #" in slack.command(t.dev, "/ai-key", "new search-bot --limit $20").json()["text"]
    d.settle()
    [approval] = slack_api.channel_messages(t.approvals)
    slack.click(t.admin, "request_approve", buttons(approval)["request_approve"], channel=t.approvals, message_ts=approval.ts)
    d.settle()
    first = ready_dm(slack_api, t.dev, "search-bot")
    number = key_number(first)
    s1 = reveal(d, slack_api, t, t.dev, first)
    assert "key_reveal" not in buttons(first)  # shown once: the button goes
    click_reveal(d, t.dev, first, number)  # a stale copy (another device) is refused
    assert "already revealed" in slack_api.ephemeral[-1].text
    assert "Rotating" in slack.command(t.dev, "/ai-key", f"rotate {number}").json()["text"]
    d.settle()
    s2 = reveal(d, slack_api, t, t.dev, ready_dm(slack_api, t.dev, "search-bot", rotated=True))
    assert "Approved" in slack.command(t.admin, "/ai-key", "new never-shown").json()["text"]
    d.settle()
    ready_dm(slack_api, t.admin, "never-shown")  # delivered, never clicked
    assert "No live key matches" in slack.command(t.dev, "/ai-key", "revoke never-shown").json()["text"]  # not theirs
    # A gateway asks about the keys and reports spend, the secret in hand.
    assert d.gateway("GET", "/v1/authz", s2).status_code == 200
    assert d.gateway("GET", "/v1/authz", s1).status_code == 200  # the rotation's grace period
    assert d.gateway("GET", "/v1/authz", "sk-purser-" + random.token_urlsafe(32)).status_code == 401
    events = [{"external_id": f"{tag}-1", "key": s2, "amount_usd": 0.5, "model": "gpt-4o-mini"}, {"external_id": f"{tag}-2", "key": "sk-purser-nobody", "amount_usd": 1}]
    answer = d.gateway("POST", "/v1/usage", d.config.ingest_token, json={"events": events}).json()
    assert [r["result"] for r in answer["results"]] == ["accepted", "refused"]
    return t


def openrouter_run(d: Deployment, db, slack_api, openrouter, tag: str) -> Team:
    """OpenRouter keys: a retried and a refused creation whose errors echo secrets, reveal, rotation, usage sync."""
    t = team(db, tag, "development", provider="openrouter")
    slack = d.slack
    echoed = f"upstream trouble for {d.config.management_key} while making sk-or-v1-{random.token_hex(32)}"
    openrouter.fail("POST", status=500, message=echoed, retry_after=0)  # retried at once
    assert "Approved" in slack.command(t.dev, "/ai-key", "new router-bot --limit $5").json()["text"]
    d.settle()
    first = ready_dm(slack_api, t.dev, "router-bot")
    assert reveal(d, slack_api, t, t.dev, first).startswith("sk-or-v1-")
    slack.command(t.dev, "/ai-key", f"rotate {key_number(first)}")
    d.settle()
    reveal(d, slack_api, t, t.dev, ready_dm(slack_api, t.dev, "router-bot", rotated=True))
    assert "Approved" in slack.command(t.admin, "/ai-key", "new router-spare").json()["text"]
    d.settle()
    ready_dm(slack_api, t.admin, "router-spare")
    openrouter.fail("POST", status=403, message=f"{d.config.management_key} is not a provisioning key")  # refused for good
    slack.command(t.dev, "/ai-key", "new doomed")
    d.settle()
    [failure] = [m for m in slack_api.channel_messages(dm(t.dev)) if "could not make your key" in m.text]
    assert "[management key]" in failure.text
    with db.session() as s:
        ref = s.scalars(select(ApiKey.provider_ref).where(ApiKey.workspace_id == t.workspace, ApiKey.rotated_from_id.is_not(None))).one()
    openrouter.add_usage(ref, 0.75)
    maintenance.sync_usage.send()
    assert "Revoked" in slack.command(t.dev, "/ai-key", f"revoke {key_number(first)}").json()["text"]
    d.settle()
    return t


def burst(d: Deployment, slack_api, t: Team, n: int) -> None:
    """``n`` keys asked for at once, then every Reveal button clicked twice at the same moment."""
    names = [f"burst-{i}" for i in range(n)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: d.slack.command(t.admin, "/ai-key", f"new {name}"), names))
    d.settle()
    before = len(reveal_modals(slack_api))
    messages = [ready_dm(slack_api, t.admin, name) for name in names]
    go = threading.Barrier(2 * n)

    def click(message):
        go.wait()
        click_reveal(d, t.admin, message)

    with ThreadPoolExecutor(2 * n) as pool:
        list(pool.map(click, messages + messages))
    shown = reveal_modals(slack_api)[before:]
    assert len(shown) == n, "each key revealed exactly once however fast the clicks come"
    t.clicked += shown


def look_around(d: Deployment, slack_api, teams: list[Team]) -> None:
    """What people and the clock read afterwards: lists, App Home, exports, digests."""
    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    for t in teams:
        d.slack.command(t.dev, "/ai-key", "list")
        d.slack.command(t.admin, "/ai-key", "list --all")
        assert '"hash"' in d.slack.command(t.admin, "/ai-audit", "export jsonl").json()["text"]
        assert "verifies" in d.slack.command(t.admin, "/ai-audit", "verify").json()["text"]
        for who in (t.dev, t.admin):
            d.slack.event({"type": "app_home_opened", "user": who, "tab": "home"})
        maintenance.post_digest.send(t.workspace, tomorrow)
    d.settle()
    d.app.gateway.flush_refusals()


def waiting_secrets(db, config: Config) -> list[str]:
    """The secrets still waiting for their reveal, decrypted here (they must appear nowhere)."""
    cipher = Cipher(config.fernet_key)
    with db.session() as s:
        waiting = list(s.scalars(select(KeyReveal.ciphertext).where(KeyReveal.ciphertext.is_not(None))))
    secrets = [cipher.decrypt(c) for c in waiting]
    assert all(secret.encode() not in c for secret, c in zip(secrets, waiting))
    return secrets


def assert_no_secret_escaped(d: Deployment, db, slack_api, openrouter, caplog, teams: list[Team], unrevealed: int) -> None:
    clicked = [s for t in teams for s in t.clicked]
    shown = reveal_modals(slack_api)
    assert sorted(shown) == sorted(clicked) and len(set(shown)) == len(shown), "one modal per revealed key"
    waiting = waiting_secrets(db, d.config)
    assert len(waiting) == unrevealed
    issued = {s: None for s in [*shown, *waiting, *openrouter.secrets.values()]}  # ordered, no repeats
    assert set(openrouter.secrets.values()) - set(issued) == set()
    key_needles = {f"{'OpenRouter' if s.startswith('sk-or-') else 'local'} key {i + 1}": s for i, s in enumerate(issued)}
    config_needles = d.config.needles(d.db_password_in_use)
    needles = key_needles | config_needles
    # A reveal modal shows its own key's secret and nothing else.
    for call in filter(is_reveal_call, slack_api.calls):
        body = json.dumps(call.args, default=str)
        assert len([name for name, secret in needles.items() if secret in body]) == 1

    n_records, logs = log_text(caplog)
    n_calls, slack = slack_text(slack_api)
    n_rows, rows = database_text(db)
    haystacks = {"logs": logs, "Slack": slack, "app answers": "\n".join(d.slack.answers), "database": rows}
    found = hits(haystacks, needles)
    summary = (
        f"{db.dialect}: {len(needles)} secrets ({len(key_needles)} key secrets: {len(shown)} revealed, {len(waiting)} waiting, "
        f"{len(openrouter.secrets)} made at OpenRouter; {len(config_needles)} configuration) searched in {n_records} log records "
        f"({len(logs):,} chars), {n_calls} Slack calls, {len(d.slack.answers)} app answers, {n_rows} database rows; hits {len(found)}"
    )
    print("\nsecret hygiene " + summary)
    assert found == []
    assert n_records > 100 and n_calls > 20 and n_rows > 50  # the search looked at a real run


def test_a_whole_run_leaves_no_secret_outside_its_one_reveal_modal(deployed, db, slack_api, openrouter, caplog):
    teams = [local_run(deployed, db, slack_api, "l1"), openrouter_run(deployed, db, slack_api, openrouter, "r1")]
    burst(deployed, slack_api, teams[1], 3)
    look_around(deployed, slack_api, teams)
    # never-shown (local) and router-spare (OpenRouter) still wait for their owners
    assert_no_secret_escaped(deployed, db, slack_api, openrouter, caplog, teams, unrevealed=2)


@pytest.mark.slow
def test_many_runs_and_bursts_leave_no_secret_outside_its_one_reveal_modal(deployed, db, slack_api, openrouter, caplog):
    teams = []
    for i in range(4):
        teams += [local_run(deployed, db, slack_api, f"l{i}"), openrouter_run(deployed, db, slack_api, openrouter, f"r{i}")]
        burst(deployed, slack_api, teams[-2], 10)
        burst(deployed, slack_api, teams[-1], 10)
    look_around(deployed, slack_api, teams)
    assert_no_secret_escaped(deployed, db, slack_api, openrouter, caplog, teams, unrevealed=8)


# -- the operator's configuration ----------------------------------------------------


def test_settings_and_provider_never_show_a_secret_in_repr_or_str(monkeypatch):
    config = Config()
    env = {
        "DATABASE_URL": f"postgresql+psycopg://purser:{config.db_password}@db.internal:5432/purser",
        "REDIS_URL": f"redis://:{config.db_password}x@cache.internal:6379/0",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": config.signing_secret,
        "SLACK_APP_TOKEN": "xapp-" + random.token_hex(16),
        "PURSER_SECRET_KEY": config.fernet_key,
        "PURSER_INGEST_TOKEN": config.ingest_token,
        "OPENROUTER_MANAGEMENT_KEY": config.management_key,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.openrouter_management_key.get_secret_value() == config.management_key
    needles = config.needles(True) | {"SLACK_APP_TOKEN": env["SLACK_APP_TOKEN"], "REDIS_URL password": config.db_password + "x"}
    provider = OpenRouterProvider(config.management_key, "https://openrouter.example/api/v1")
    try:
        shown = {"repr(Settings)": repr(settings), "str(Settings)": str(settings), "repr(provider)": repr(provider), "str(provider)": str(provider), "vars(provider)": repr(vars(provider))}
    finally:
        provider.close()
    assert hits(shown, needles) == []
    assert "db.internal" in repr(settings) and "openrouter.example" in repr(provider)  # still says where


# -- rotating PURSER_SECRET_KEY ------------------------------------------------------


@pytest.fixture
def restore_cipher():
    saved = store_secrets._cipher
    yield
    use_cipher(saved)


@pytest.fixture
def operator(db, restore_cipher, monkeypatch):
    """`purser …` as the operator runs it: the store and PURSER_SECRET_KEY from the environment."""
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()

    def run(*args: str, secret_key: str):
        monkeypatch.setenv("PURSER_SECRET_KEY", secret_key)
        use_cipher(None)  # a new process reads the key afresh
        return CliRunner().invoke(cli, list(args))

    yield run
    get_settings.cache_clear()


def waiting_keys(db, n: int):
    """``n`` keys waiting for their reveal, and their owner."""
    ws = f.workspace(db, "rot", "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    return [f.key(db, ws, dev, f"bot-{i}") for i in range(n)], dev


def ciphertexts(db) -> dict[int, bytes]:
    with db.session() as s:
        return {r.key_id: r.ciphertext for r in s.scalars(select(KeyReveal).where(KeyReveal.ciphertext.is_not(None)))}


def as_process(secret_key: str, monkeypatch) -> None:
    """Web and worker processes started with this PURSER_SECRET_KEY."""
    monkeypatch.setenv("PURSER_SECRET_KEY", secret_key)
    use_cipher(None)


def test_secret_key_rotation_keeps_reveals_working_then_reencrypts_them(db, operator, monkeypatch):
    old, new = Cipher.generate(), Cipher.generate()
    as_process(old, monkeypatch)
    made, dev = waiting_keys(db, 3)
    under_old = ciphertexts(db)
    # The operator puts the new key first and keeps the old one listed.
    as_process(f"{new}, {old}", monkeypatch)
    (first_id, first_secret), *rest = made
    assert db.run(keys.reveal_key, dev, first_id).secret == first_secret
    done = operator("reveals", "reencrypt", secret_key=f"{new},{old}")
    assert done.exit_code == 0 and f"Re-encrypted {len(rest)} waiting secret(s)" in done.stdout
    after = ciphertexts(db)
    assert set(after) == {k for k, _ in rest} and all(after[k] != under_old[k] for k in after)
    # Only the new key is needed now; the old one can be dropped.
    as_process(new, monkeypatch)
    for key_id, secret in rest:
        with pytest.raises(InvalidInput):
            Cipher(old).decrypt(after[key_id])
        assert db.run(keys.reveal_key, dev, key_id).secret == secret


def test_a_secret_under_an_unknown_key_is_refused_with_what_to_do_and_kept(db, operator, monkeypatch):
    lost, stranger = Cipher.generate(), Cipher.generate()
    as_process(lost, monkeypatch)
    [(key_id, secret)], dev = waiting_keys(db, 1)
    as_process(stranger, monkeypatch)  # the old key was dropped too early
    with pytest.raises(InvalidInput, match=r"no longer in PURSER_SECRET_KEY.*Nothing was wiped.*PURSER_SECRET_KEY=new,old.*purser reveals reencrypt"):
        db.run(keys.reveal_key, dev, key_id)
    refused = operator("reveals", "reencrypt", secret_key=stranger)
    assert refused.exit_code == 1 and "no longer in PURSER_SECRET_KEY" in refused.stderr
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    as_process(f"{stranger},{lost}", monkeypatch)  # listed again: nothing was lost
    assert db.run(keys.reveal_key, dev, key_id).secret == secret


def test_a_secret_key_in_dotenv_is_the_one_reveals_use(sqlite_db, restore_cipher, monkeypatch, tmp_path):
    key = Cipher.generate()
    (tmp_path / ".env").write_text(f"PURSER_SECRET_KEY={key}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PURSER_SECRET_KEY", raising=False)
    get_settings.cache_clear()
    use_cipher(None)
    try:
        [(key_id, secret)], dev = waiting_keys(sqlite_db, 1)
    finally:
        get_settings.cache_clear()
    with sqlite_db.session() as s:
        assert Cipher(key).decrypt(s.get(KeyReveal, key_id).ciphertext) == secret
