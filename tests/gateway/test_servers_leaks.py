"""The leak guard under both servers: a key pasted into Slack is refused by /v1/authz within two seconds,
whether Purser runs under gunicorn (`purser web`) or waitress (`purser run`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from sandbox.serve import serve_in_thread
from sandbox.slack_api import SlackAPI
from store.db import Database
from store.migrate import upgrade
from store.secrets import Cipher
from store.types import Role
from tests import factories as f
from tests.gateway.test_servers import free_port
from tests.slack_requests import SlackSender, wait_for

pytestmark = pytest.mark.real_clock  # the servers are other processes on the machine's clock

SIGNING, TEAM, TOKEN = "servers-leak-signing-secret", "T0SERVERS", "xoxb-servers"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """A SQLite store with a key for each server, both servers on it, and the fake Slack Web API they post to."""
    root = tmp_path_factory.mktemp("leak-servers")
    url = f"sqlite:///{root}/purser.db"
    upgrade(url)
    db = Database(url)
    ws = f.workspace(db, "edge", "development", team_id=TEAM)
    dev = f.member(db, ws, Role.DEVELOPER)
    secrets = {name: f.key(db, ws, dev, f"bot-{name}")[1] for name in ("waitress", "gunicorn")}
    db.dispose()
    api = SlackAPI(token=TOKEN)
    slack_api = serve_in_thread(api)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "REDIS_URL", "PURSER_"))}
    env.update(DATABASE_URL=url, PURSER_SECRET_KEY=Cipher.generate(), SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SIGNING, SLACK_TEAM_ID=TEAM, SLACK_API_URL=slack_api.url + "/api/")
    running: dict[str, tuple[subprocess.Popen, str]] = {}
    for name, argv in (
        ("waitress", [sys.executable, "-m", "purser", "run"]),
        ("gunicorn", [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", "127.0.0.1:{port}", "purser.wiring:create_app()"]),
    ):
        port = free_port()
        log = (root / f"{name}.log").open("w")
        proc = subprocess.Popen([a.format(port=port) for a in argv], cwd=root, env={**env, "PORT": str(port)}, stdout=log, stderr=subprocess.STDOUT)
        running[name] = (proc, f"http://127.0.0.1:{port}")
    try:
        for name, (proc, base) in running.items():
            wait_for(lambda: _answers(base) or proc.poll() is not None, timeout=60)
            assert proc.poll() is None, f"{name} stopped:\n" + (root / f"{name}.log").read_text()[-3000:]
        yield {name: base for name, (_, base) in running.items()}, secrets, api
    finally:
        for proc, _ in running.values():
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        slack_api.stop()


def _answers(base: str) -> bool:
    try:
        return httpx.get(base + "/healthz", timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("server", ["waitress", "gunicorn"])
def test_a_pasted_key_is_refused_within_two_seconds_under_either_server(servers, server):
    bases, secrets, api = servers
    base, secret = bases[server], secrets[server]
    authz = lambda: httpx.get(base + "/v1/authz", headers={"Authorization": f"Bearer {secret}"})  # noqa: E731
    assert authz().status_code == 200
    sender = SlackSender(base + "/slack/events", SIGNING, TEAM)
    sent = time.monotonic()
    answer = sender.event({"type": "message", "channel": "C0GENERAL", "user": "U0POSTER", "text": f"the key: {secret}", "ts": f"{int(time.time())}.000100"})
    assert answer.status_code == 200
    refused = wait_for(lambda: (r := authz()).status_code == 401 and r, timeout=2)
    assert refused.headers["X-Purser-Refusal"] == "revoked" and time.monotonic() - sent < 2
    assert secret not in repr([c.args for c in api.calls])
