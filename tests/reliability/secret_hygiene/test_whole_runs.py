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

import json
import secrets as random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select

from store import workspaces
from store.models import ApiKey, KeyReveal
from store.secrets import Cipher
from store.types import Role, utcnow
from tests import factories as f
from workers import maintenance

from tests.reliability.secret_hygiene.search import Config, Deployment, buttons, database_text, dm, hits, is_reveal_call, log_text, reveal_modals, slack_text, user


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
