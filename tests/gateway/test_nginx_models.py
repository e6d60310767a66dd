"""A real nginx with njs, configured as docs/gateway/nginx-models.conf says: the model in each call's body is checked against the key's policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from store import budgets, policy
from store.money import parse_money
from store.types import Role
from tests import factories as f
from tests.gateway.test_nginx import INGEST_TOKEN, ROOT, addressed, nginx_binary, purser_and_upstream, start_nginx  # noqa: F401 (a fixture)
from tests.services import IN_CI
from tests.slack_requests import wait_for

pytestmark = pytest.mark.real_clock  # nginx and the upstream run as other processes on the machine's clock

MODULE = Path("/usr/lib/nginx/modules/ngx_http_js_module.so")


@pytest.fixture
def njs_stack(purser_and_upstream, tmp_path):  # noqa: F811
    if not MODULE.exists():
        if IN_CI:
            pytest.fail("nginx's njs module is not installed; .ci/run installs libnginx-mod-http-js", pytrace=False)
        pytest.skip("libnginx-mod-http-js is not installed")
    purser, upstream, gateway = purser_and_upstream
    temp = tmp_path / "nginx"
    temp.mkdir()
    shutil.copy(ROOT / "docs" / "gateway" / "purser.js", temp / "purser.js")
    config = addressed((ROOT / "docs" / "gateway" / "nginx-models.conf").read_text(), purser, upstream)
    config = config.replace('"change-me"', f'"{INGEST_TOKEN}"').replace("js_import purser from purser.js;", f"js_import purser from {temp}/purser.js;")
    proc, url = start_nginx(nginx_binary(), config, temp, modules=f"load_module {MODULE};")
    yield url, temp
    proc.terminate()
    proc.wait(timeout=10)


def call(url: str, key: str, model: str | None, **headers: str) -> httpx.Response:
    body: dict = {"messages": [{"role": "user", "content": "hi"}]}
    if model is not None:
        body["model"] = model
    return httpx.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}", **headers}, json=body, timeout=5)


def test_nginx_sends_the_bodys_model_and_purser_refuses_one_outside_the_policy(db, njs_stack):
    url, temp = njs_stack
    ws = f.workspace(db, "prod", "development")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    f.project(db, ws, "search", budget=parse_money("$10"))
    key_id, secret = f.key(db, ws, dev, "bot", project="search")
    db.run(policy.set_models, admin, ws, ["openai/*"])

    ok = call(url, secret, "gpt-4o-mini")
    assert ok.status_code == 200, ok.text + (temp / "error.log").read_text()
    assert ok.json()["seen_headers"] == {"X-Purser-Workspace": "prod", "X-Purser-Project": "search", "X-Purser-Key": str(key_id), "X-Purser-Member": dev.slack_user_id}

    refused = call(url, secret, "anthropic/claude-3.5-sonnet")
    assert refused.status_code == 403 and refused.headers["X-Purser-Refusal"] == "model_not_allowed"
    assert "/ai-models request anthropic/claude-3.5-sonnet" in refused.json()["error"]["message"]
    # the header is the body's: one the client sends cannot vouch for another model
    assert call(url, secret, "anthropic/claude-3.5-sonnet", **{"X-Purser-Model": "openai/gpt-4o"}).status_code == 403
    assert call(url, secret, None, **{"X-Purser-Model": "anthropic/claude-3.5-sonnet"}).status_code == 200  # no model named: let through
    assert call(url, "sk-purser-forged", "gpt-4o-mini").status_code == 401

    # the policy widened: let through as soon as the change is announced
    db.run(policy.set_models, admin, ws, None)
    wait_for(lambda: call(url, secret, "anthropic/claude-3.5-sonnet").status_code == 200, timeout=5)

    # Purser's 402 comes through as 402 (no auth_request to turn it into a 500), with its words
    db.run(budgets.set_project_budget, admin, ws, "search", parse_money("$0.000001"))
    f.spend(db, key_id, 1)
    wait_for(lambda: call(url, secret, "gpt-4o-mini").status_code == 402, timeout=5)
    assert call(url, secret, "gpt-4o-mini").json()["error"]["code"] == "project_budget"

    from store.usage_reports import usage_report

    report = db.run(usage_report, f.OPERATOR, ws)
    assert report.rows[0].events >= 3  # every call let through was reported, each once (and the spend above)


def test_a_body_too_large_to_check_is_refused_not_let_through(db, njs_stack):
    url, temp = njs_stack
    ws = f.workspace(db, "prod", "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    _, secret = f.key(db, ws, dev, "bot")
    big = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * (2 * 1024 * 1024)}]}
    answer = httpx.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {secret}"}, json=big, timeout=10)
    assert answer.status_code == 413
