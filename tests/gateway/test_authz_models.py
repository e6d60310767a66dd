"""/v1/authz and the model policy: a gateway that names the model (X-Purser-Model) has it checked; one that cannot is let through."""

from __future__ import annotations

import time

import httpx
import pytest

from bot.web import WebApp
from gateway.cache import LONG_TTL
from purser.settings import Settings
from purser.wiring import add_gateway
from sandbox.serve import serve_in_thread
from store import policy
from store.types import Role
from tests import factories as f
from tests.gateway.test_nginx import _no_bolt
from tests.slack_requests import wait_for


@pytest.fixture
def gateway(db, redis_url):
    """The gateway endpoints with their key cache kept fresh over Redis, as in production."""
    web = WebApp(db, bolt_app=_no_bolt(), signing_secret="unused")
    add_gateway(web, db, Settings(REDIS_URL=redis_url))
    served = serve_in_thread(web)
    wait_for(lambda: web.gateway.cache.invalidation_live, timeout=10)
    yield served.url, web.gateway
    served.stop()
    web.gateway.close()


@pytest.fixture
def keyed(db):
    ws = f.workspace(db, "alpha", "development")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    f.project(db, ws, "search")
    _, secret = f.key(db, ws, dev, "bot", project="search")
    return ws, admin, secret


def authz(url: str, secret: str, model: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"}
    if model is not None:
        headers["X-Purser-Model"] = model
    return httpx.get(url + "/v1/authz", headers=headers)


def test_a_named_model_is_checked_against_the_keys_policy(db, gateway, keyed):
    url, _ = gateway
    ws, admin, secret = keyed
    db.run(policy.set_models, admin, ws, ["openai/*"])
    assert authz(url, secret, "openai/gpt-4o").status_code == 200
    assert authz(url, secret, "gpt-4o-mini").status_code == 200  # as OpenAI-compatible clients name it
    refused = authz(url, secret, "anthropic/claude-3.5-sonnet")
    assert refused.status_code == 403 and refused.headers["X-Purser-Refusal"] == "model_not_allowed"
    message = refused.json()["error"]["message"]
    assert message.startswith("Model anthropic/claude-3.5-sonnet is not allowed for keys of project search: it is not on the list of allowed models.")
    assert '/ai-models request anthropic/claude-3.5-sonnet --project search -w alpha --reason "..."' in message
    assert refused.headers["X-Purser-Message"] == message
    # a bare name is named in the request as a policy names it
    assert "/ai-models request anthropic/claude-3-5-haiku " in authz(url, secret, "claude-3-5-haiku").json()["error"]["message"]


def test_without_the_header_a_restricted_key_is_let_through(db, gateway, keyed):
    """Gateways that cannot read the body (nginx's plain auth_request) keep working; docs/gateways.md says so."""
    url, _ = gateway
    ws, admin, secret = keyed
    db.run(policy.set_models, admin, ws, ["openai/*"])
    assert authz(url, secret).status_code == 200
    assert authz(url, secret, "").status_code == 200


def test_the_projects_own_policy_is_the_one_checked(db, gateway, keyed):
    url, _ = gateway
    ws, admin, secret = keyed
    db.run(policy.set_providers, admin, ws, ["openai"])
    db.run(policy.set_providers, admin, ws, ["anthropic"], project="search")
    assert authz(url, secret, "anthropic/claude-3.5-sonnet").status_code == 200
    refused = authz(url, secret, "openai/gpt-4o")
    assert refused.status_code == 403 and "only models by anthropic are allowed" in refused.json()["error"]["message"]


def test_a_policy_change_is_obeyed_at_once_not_after_the_caches_ttl(db, gateway, keyed):
    url, gw = gateway
    ws, admin, secret = keyed
    assert authz(url, secret, "anthropic/claude-3.5-sonnet").status_code == 200  # now cached, for 15 s at least
    db.run(policy.set_models, admin, ws, ["openai/*"])
    changed_at = time.monotonic()
    wait_for(lambda: authz(url, secret, "anthropic/claude-3.5-sonnet").status_code == 403, timeout=5)
    assert time.monotonic() - changed_at < LONG_TTL / 2 and gw.cache.invalidation_live
    db.run(policy.set_models, admin, ws, None)  # any model again: let through as promptly
    wait_for(lambda: authz(url, secret, "anthropic/claude-3.5-sonnet").status_code == 200, timeout=5)


def test_a_model_header_of_any_shape_gets_an_answer_never_a_server_error(db, gateway, keyed):
    url, _ = gateway
    ws, admin, secret = keyed
    db.run(policy.set_models, admin, ws, ["openai/*"])
    for junk in ("modèle/ü".encode(), b"x" * 5000, b"openai/gpt-4o\tx", b"../../etc"):  # raw bytes: UTF-8 sent as it is
        answer = httpx.get(url + "/v1/authz", headers={"Authorization": f"Bearer {secret}", "X-Purser-Model": junk})
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "model_not_allowed", junk[:20]
        assert len(answer.headers["X-Purser-Message"]) <= 300
