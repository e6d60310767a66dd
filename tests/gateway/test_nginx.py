"""A real nginx, configured as docs/gateway/nginx.conf says, in front of a stub OpenAI-compatible upstream."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from bot.web import WebApp
from purser.wiring import add_gateway
from purser.settings import Settings
from sandbox.serve import serve_in_thread
from store import budgets, keys, workspaces
from store.money import parse_money
from store.types import Role
from tests import factories as f
from tests.services import IN_CI

pytestmark = pytest.mark.real_clock  # nginx and the upstream run as other processes on the machine's clock

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "docs" / "gateway" / "nginx.conf"
INGEST_TOKEN = "ingest-token-for-tests"


def nginx_binary() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if path is None:
        if IN_CI:
            pytest.fail("nginx is not installed; .ci/run installs Debian's nginx", pytrace=False)
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upstream_app(environ, start_response):
    request = Request(environ)
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "seen_headers": {h: request.headers.get(h) for h in ("X-Purser-Workspace", "X-Purser-Project", "X-Purser-Key", "X-Purser-Member")},
    }
    return Response(json.dumps(body), mimetype="application/json")(environ, start_response)


def start_nginx(binary: str, server: str, temp: Path, *, modules: str = "") -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = server.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{port}")
    temp.mkdir(exist_ok=True)
    main = f"""
{modules}
daemon off;
worker_processes 1;
pid {temp}/nginx.pid;
error_log {temp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {temp}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{server}
}}
"""
    (temp / "nginx.conf").write_text(main)
    proc = subprocess.Popen([binary, "-c", str(temp / "nginx.conf"), "-p", str(temp)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/", timeout=0.5)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("nginx did not start: " + (temp / "error.log").read_text())


@pytest.fixture
def purser_and_upstream(db, request):
    redis_url = None
    if db.dialect == "postgresql":  # on PostgreSQL also prove the Redis pub/sub path
        redis_url = request.getfixturevalue("redis_url")
    settings = Settings(PURSER_INGEST_TOKEN=INGEST_TOKEN, REDIS_URL=redis_url)
    web = WebApp(db, bolt_app=_no_bolt(), signing_secret="unused")
    add_gateway(web, db, settings)
    purser = serve_in_thread(web)
    upstream = serve_in_thread(upstream_app)
    if redis_url:
        from tests.slack_requests import wait_for

        wait_for(lambda: web.gateway.cache.invalidation_live, timeout=10)
    yield purser, upstream, web.gateway
    purser.stop()
    upstream.stop()
    web.gateway.close()


def addressed(config: str, purser, upstream) -> str:
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{upstream.server.server_port}")
    return config.replace("127.0.0.1:3000", f"127.0.0.1:{purser.server.server_port}")


@pytest.fixture
def stack(purser_and_upstream, tmp_path):
    """Purser (web with the gateway endpoints), the stub upstream, and nginx between the client and both."""
    purser, upstream, gateway = purser_and_upstream
    proc, url = start_nginx(nginx_binary(), addressed(CONFIG.read_text(), purser, upstream), tmp_path / "nginx")
    yield url, purser.url, gateway
    proc.terminate()
    proc.wait(timeout=10)


def _no_bolt():
    from slack_bolt import App

    return App(token="xoxb-unused", signing_secret="unused", token_verification_enabled=False, request_verification_enabled=False)


def call(url: str, key: str | None, project: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if project:
        headers["X-Purser-Project"] = project
    return httpx.post(url + "/v1/chat/completions", headers=headers, json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}, timeout=5)


def report(purser_url: str, key: str, amount: str, external_id: str) -> dict:
    answer = httpx.post(purser_url + "/v1/usage", headers={"Authorization": f"Bearer {INGEST_TOKEN}"}, json={"events": [{"external_id": external_id, "key": key, "amount_usd": amount}]})
    assert answer.status_code == 200
    return answer.json()


#: Purser's promise: a change reaches every check within a second
PROMISED = 1.0


def answers_within_the_second(url: str, key: str, expected: int, changed_at: float) -> None:
    """Every call started a second or more after the change gets ``expected``.

    What is timed is when a call *starts*, against the change: a machine too busy to answer
    quickly makes the loop go round fewer times, but cannot turn a kept promise into a failure.
    """
    while True:
        started = time.monotonic()
        status = call(url, key).status_code
        if status == expected:
            return
        assert started - changed_at < PROMISED, f"still {status}, not {expected}, for a call started {started - changed_at:.2f} s after the change"
        time.sleep(0.02)


def test_nginx_in_front_of_an_upstream_obeys_purser(db, stack):
    url, purser_url, gateway = stack
    ws = f.workspace(db, "prod", "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    admin = f.member(db, ws, Role.ADMIN)
    f.project(db, ws, "search", budget=parse_money("$10"))
    key_id, secret = f.key(db, ws, dev, "bot", project="search", limit=parse_money("$50"))
    other_id, other_secret = f.key(db, ws, dev, "spare", project="search")

    # A good key passes, and the upstream hears who it is.
    ok = call(url, secret)
    assert ok.status_code == 200, ok.text
    assert ok.json()["seen_headers"] == {"X-Purser-Workspace": "prod", "X-Purser-Project": "search", "X-Purser-Key": str(key_id), "X-Purser-Member": dev.slack_user_id}
    assert call(url, None).status_code == 401
    assert call(url, "sk-purser-forged").status_code == 401

    # A revoked key gets 401 (within the cache's second).
    db.run(keys.revoke_key, admin, other_id)
    answers_within_the_second(url, other_secret, 401, time.monotonic())
    assert call(url, other_secret).json()["error"]["code"] == "revoked"

    # Usage pushes the project to 100 %: the next call is refused with 402 within a second.
    report(purser_url, secret, "9.99", "u1")
    assert call(url, secret).status_code == 200
    assert report(purser_url, secret, "0.01", "u2")["results"][0]["result"] == "accepted"
    answers_within_the_second(url, secret, 402, time.monotonic())
    refused = call(url, secret).json()["error"]
    assert refused["code"] == "project_budget" and "/ai-budget set search" in refused["message"]

    # Raising the budget lets it through again within a second.
    db.run(budgets.set_project_budget, admin, ws, "search", parse_money("$20"))
    answers_within_the_second(url, secret, 200, time.monotonic())

    # An address outside the allowlist gets 403; inside it passes.
    db.run(workspaces.add_allowlist, admin, ws, "10.0.0.0/8")
    answers_within_the_second(url, secret, 403, time.monotonic())
    assert call(url, secret).json()["error"]["code"] == "ip_not_allowed"
    db.run(workspaces.add_allowlist, admin, ws, "127.0.0.0/8")
    answers_within_the_second(url, secret, 200, time.monotonic())

    # Refusals were counted per key and reason, not audited one by one.
    gateway.flush_refusals()
    from store.authz import refusals_between
    from store.types import utcnow
    from datetime import timedelta

    with db.session() as s:
        counted = {(name, reason): n for name, reason, n in refusals_between(s, ws, utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))}
    assert counted[("bot", "project_budget")] >= 1 and counted[("spare", "revoked")] >= 1


def test_nginx_with_njs_reports_each_calls_cost(db, purser_and_upstream, tmp_path):
    module = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")
    if not module.exists():
        if IN_CI:
            pytest.fail("nginx's njs module is not installed; .ci/run installs libnginx-mod-http-js", pytrace=False)
        pytest.skip("libnginx-mod-http-js is not installed")
    purser, upstream, gateway = purser_and_upstream
    temp = tmp_path / "nginx"
    temp.mkdir()
    shutil.copy(ROOT / "docs" / "gateway" / "purser.js", temp / "purser.js")
    config = addressed((ROOT / "docs" / "gateway" / "nginx-usage.conf").read_text(), purser, upstream)
    config = config.replace('"change-me"', f'"{INGEST_TOKEN}"').replace("js_import purser from purser.js;", f"js_import purser from {temp}/purser.js;")
    proc, url = start_nginx(nginx_binary(), config, temp, modules=f"load_module {module};")
    try:
        ws = f.workspace(db, "prod", "development")
        dev = f.member(db, ws, Role.DEVELOPER)
        f.project(db, ws, "search", budget=parse_money("$10"))
        key_id, secret = f.key(db, ws, dev, "bot", project="search")
        for _ in range(3):
            answer = call(url, secret)
            assert answer.status_code == 200, answer.text + (temp / "error.log").read_text()
            assert answer.json()["usage"]["total_tokens"] == 15
        from store.usage_reports import usage_report

        report = db.run(usage_report, f.OPERATOR, ws)
        # 3 calls × (10 prompt × $0.15/M + 5 completion × $0.60/M) = 3 × $0.0000045, to the micro-dollar
        assert report.rows[0].events == 3
        assert report.total_micros == 3 * 5  # each rounds half-up from 4.5 micro-dollars to 5
        assert call(url, "sk-purser-forged").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
