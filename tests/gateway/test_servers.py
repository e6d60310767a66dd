"""Both servers Purser runs under — gunicorn (`purser web`, the Procfile) and waitress (`purser run`) — answer a gateway alike."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from store import workspaces
from store.db import Database
from store.migrate import upgrade
from store.secrets import Cipher
from store.types import Role
from tests import factories as f

pytestmark = pytest.mark.real_clock  # the servers are other processes on the machine's clock


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    """A SQLite store with an allowlisted workspace and a live key, and both servers on it."""
    root = tmp_path_factory.mktemp("servers")
    url = f"sqlite:///{root}/purser.db"
    upgrade(url)
    db = Database(url)
    ws = f.workspace(db, "edge", "development")
    key_id, secret = f.key(db, ws, f.member(db, ws, Role.DEVELOPER), "bot")
    db.run(workspaces.add_allowlist, f.OPERATOR, ws, "203.0.113.0/24")
    db.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "REDIS_URL", "PURSER_"))}
    env.update(DATABASE_URL=url, PURSER_SECRET_KEY=Cipher.generate())
    servers: dict[str, tuple[subprocess.Popen, str, Path]] = {}
    for name, argv, extra in (
        ("waitress", [sys.executable, "-m", "purser", "run"], {}),
        ("gunicorn", [sys.executable, "-m", "gunicorn", "--workers", "1", "--bind", "127.0.0.1:{port}", "purser.wiring:create_app()"], {"SLACK_BOT_TOKEN": "xoxb-unused", "SLACK_SIGNING_SECRET": "unused"}),
    ):
        port = free_port()
        log = root / f"{name}.log"
        proc = subprocess.Popen([a.format(port=port) for a in argv], cwd=root, env={**env, **extra, "PORT": str(port)}, stdout=log.open("w"), stderr=subprocess.STDOUT)
        servers[name] = (proc, f"http://127.0.0.1:{port}", log)
    try:
        for name, (proc, base, log) in servers.items():
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code in (200, 503):
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"{name} did not answer within 60 s:\n" + log.read_text()[-3000:])
                time.sleep(0.2)
        yield {name: base for name, (_, base, _) in servers.items()}, secret
    finally:
        for proc, _, _ in servers.values():
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.parametrize("server", ["waitress", "gunicorn"])
def test_a_proxys_forwarded_address_is_believed_under_either_server(edge, server):
    bases, secret = edge
    url = bases[server] + "/v1/authz"
    auth = {"Authorization": f"Bearer {secret}"}
    behind_the_proxy = httpx.get(url, headers={**auth, "X-Forwarded-For": "203.0.113.7"})
    assert behind_the_proxy.status_code == 200, (server, behind_the_proxy.headers.get("X-Purser-Refusal"))
    assert httpx.get(url, headers={**auth, "X-Real-IP": "203.0.113.8"}).status_code == 200
    # The peer itself (127.0.0.1) is not on the allowlist, and a client cannot slip an address in front.
    assert httpx.get(url, headers=auth).status_code == 403
    assert httpx.get(url, headers={**auth, "X-Forwarded-For": "203.0.113.7, 198.51.100.9"}).status_code == 403
