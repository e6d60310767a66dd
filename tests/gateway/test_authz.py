"""/v1/authz and /v1/usage over HTTP: trust rules, refusals that say nothing of other workspaces, ingest results."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
import pytest

from bot.web import WebApp
from purser.wiring import add_gateway
from gateway.clientip import client_address, parse_networks
from purser.settings import Settings
from sandbox.serve import serve_in_thread
from store import budgets, workspaces
from store.money import parse_money
from store.types import Role, utcnow
from tests import factories as f
from tests.gateway.test_nginx import _no_bolt

TOKENS = "new-token,old-token"


@pytest.fixture
def serve(db):
    served = []

    def start(trusted: str = "127.0.0.1/32,::1/128"):
        web = WebApp(db, bolt_app=_no_bolt(), signing_secret="unused")
        add_gateway(web, db, Settings(PURSER_INGEST_TOKEN=TOKENS, PURSER_TRUSTED_PROXIES=trusted))
        server = serve_in_thread(web)
        served.append(server)
        start.gateways.append(web.gateway)
        return server.url

    start.gateways = []
    yield start
    for server in served:
        server.stop()
    for gateway in start.gateways:
        gateway.close()


def two_workspaces(db):
    a = f.workspace(db, "alpha", "development")
    b = f.workspace(db, "bravo-secret-name", "development")
    dev = f.member(db, a, Role.DEVELOPER)
    f.project(db, a, "search")
    f.project(db, b, "moonshot")
    key_id, secret = f.key(db, a, dev, "bot", project="search")
    return a, b, dev, key_id, secret


def authz(url, secret, **headers):
    return httpx.get(url + "/v1/authz", headers={"Authorization": f"Bearer {secret}", **headers})


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(db, serve):
    a, b, dev, key_id, secret = two_workspaces(db)
    db.run(workspaces.add_allowlist, f.OPERATOR, a, "10.0.0.0/8")
    untrusting = serve(trusted="192.0.2.1/32")  # our test client (127.0.0.1) is not a proxy here
    assert authz(untrusting, secret, **{"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"}).status_code == 403
    trusting = serve()  # 127.0.0.1 is a trusted proxy: its forwarded address is believed
    assert authz(trusting, secret, **{"X-Forwarded-For": "10.1.2.3"}).status_code == 200
    # A client cannot slip an address in front of the one the proxy appended.
    assert authz(trusting, secret, **{"X-Forwarded-For": "10.1.2.3, 198.51.100.7"}).status_code == 403


def test_a_tag_naming_another_workspaces_project_is_refused_without_naming_it(db, serve):
    a, b, dev, key_id, secret = two_workspaces(db)
    url = serve()
    answer = authz(url, secret, **{"X-Purser-Project": "moonshot"})
    assert answer.status_code == 403
    assert "moonshot" not in answer.text and "bravo" not in answer.text
    assert authz(url, secret, **{"X-Purser-Project": "search"}).status_code == 200


@pytest.mark.calendar
def test_headers_on_success_and_reasons_on_refusal(db, serve):
    a, b, dev, key_id, secret = two_workspaces(db)
    url = serve()
    ok = authz(url, secret)
    assert (ok.headers["X-Purser-Workspace"], ok.headers["X-Purser-Project"], ok.headers["X-Purser-Key"], ok.headers["X-Purser-Member"]) == ("alpha", "search", str(key_id), dev.slack_user_id)
    assert httpx.get(url + "/v1/authz").status_code == 401
    assert authz(url, secret[:-4]).status_code == 401  # truncated
    db.run(budgets.set_workspace_cap, f.OPERATOR, a, parse_money("$1"))
    f.spend(db, key_id, parse_money("$1"))
    import time

    time.sleep(0.6)
    refused = authz(url, secret)
    assert refused.status_code == 402 and refused.headers["X-Purser-Refusal"] == "workspace_cap"
    assert "/ai-budget cap" in refused.json()["error"]["message"]


@pytest.mark.calendar
def test_usage_ingest_results_per_event_and_token_rotation(db, serve):
    a, b, dev, key_id, secret = two_workspaces(db)
    url = serve()
    an_hour_ago = (utcnow() - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    body = {
        "events": [
            {"external_id": "e1", "key": secret, "amount_usd": 0.5},
            {"external_id": "e2", "key_hash": hashlib.sha256(secret.encode()).hexdigest(), "model": "gpt-4o-mini", "prompt_tokens": 1000, "completion_tokens": 1000, "occurred_at": an_hour_ago},
            {"external_id": "e3", "key": "sk-purser-nobody", "amount_usd": 1},
            {"external_id": "e4", "key": secret, "model": "mystery-model", "prompt_tokens": 1, "completion_tokens": 1},
            {"external_id": "e5", "key": secret, "amount_usd": -1},
            {"key": secret, "amount_usd": 1},
        ]
    }
    for token in ("new-token", "old-token"):  # both valid while one is rotated out
        answer = httpx.post(url + "/v1/usage", json=body, headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        results = {r["external_id"]: r for r in answer.json()["results"]}
        first = token == "new-token"
        assert results["e1"]["result"] == ("accepted" if first else "duplicate")
        assert results["e2"]["result"] == ("accepted" if first else "duplicate")
        assert results["e3"] == {"external_id": "e3", "result": "refused", "reason": "unknown key"}
        assert results["e4"]["result"] == "refused" and "no price" in results["e4"]["reason"]
        assert results["e5"]["result"] == "refused"
        assert results["#5"]["result"] == "refused" and "external_id" in results["#5"]["reason"]
    report = db.run(lambda s: __import__("store.usage_reports", fromlist=["x"]).usage_report(s, f.OPERATOR, a, days=366))
    # $0.50 + 1000 × $0.15/M + 1000 × $0.60/M = $0.50075
    assert report.total_micros == 500_750


@pytest.mark.parametrize("token", [None, "wrong", "new-token-but-longer", "new-tok", "Bearer"])
def test_usage_refuses_a_wrong_or_missing_token(db, serve, token):
    url = serve()
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    assert httpx.post(url + "/v1/usage", json={"events": []}, headers=headers).status_code == 401


def test_usage_refuses_junk_bodies_with_400(db, serve):
    url = serve()
    auth = {"Authorization": "Bearer new-token"}
    assert httpx.post(url + "/v1/usage", content=b"{not json", headers=auth).status_code == 400
    assert httpx.post(url + "/v1/usage", json={"events": []}, headers=auth).status_code == 400
    assert httpx.post(url + "/v1/usage", json={"events": [1, "x", None]}, headers=auth).json()["results"][0]["result"] == "refused"


def test_litellm_generic_logger_payload_is_accepted(db, serve):
    a, b, dev, key_id, secret = two_workspaces(db)
    url = serve()
    payload = [
        {
            "id": "chatcmpl-abc",
            "call_type": "acompletion",
            "response_cost": 0.00042,
            "model": "gpt-4o-mini",
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "startTime": 1795000000.0,
            "endTime": 1795000001.5,
            "status": "success",
            "metadata": {"user_api_key_hash": hashlib.sha256(secret.encode()).hexdigest(), "user_api_key_alias": "bot"},
        }
    ]
    answer = httpx.post(url + "/v1/usage/litellm", json=payload, headers={"Authorization": "Bearer new-token"})
    assert answer.json()["results"] == [{"external_id": "litellm:chatcmpl-abc", "result": "accepted"}]
    again = httpx.post(url + "/v1/usage/litellm", json=payload, headers={"Authorization": "Bearer new-token"})
    assert again.json()["results"][0]["result"] == "duplicate"


def test_client_address_rules():
    trusted = parse_networks("127.0.0.1/32,10.0.0.0/8")
    assert client_address("203.0.113.9", "10.1.1.1", None, trusted) == "203.0.113.9"  # untrusted peer: header ignored
    assert client_address("127.0.0.1", "198.51.100.4, 10.2.2.2", None, trusted) == "198.51.100.4"  # skip our own proxies
    assert client_address("127.0.0.1", None, "198.51.100.5", trusted) == "198.51.100.5"
    assert client_address("127.0.0.1", "garbage, 10.2.2.2", None, trusted) is None
    assert client_address("127.0.0.1", None, None, trusted) == "127.0.0.1"


@pytest.mark.calendar
def test_refusals_are_counted_and_shown_in_the_digest_not_audited_one_by_one(db, serve):
    from datetime import timedelta

    from sqlalchemy import func, select

    from bot.blocks.digest import digest_message
    from store.digests import build_digest
    from store.models import AuditEvent
    from store.types import utcnow

    a, b, dev, key_id, secret = two_workspaces(db)
    db.run(workspaces.add_allowlist, f.OPERATOR, a, "10.0.0.0/8")
    url = serve()
    import time

    time.sleep(0.6)
    with db.session() as s:
        audited = s.scalar(select(func.count()).select_from(AuditEvent))
    for _ in range(3):
        assert authz(url, secret).status_code == 403
    serve.gateways[-1].flush_refusals()  # it flushes by itself every few seconds
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == audited
        digest = build_digest(s, a, utcnow() - timedelta(days=1), utcnow() + timedelta(days=1))
    assert digest.gateway_refusals == [("bot", "ip_not_allowed", 3)]
    text, blocks = digest_message(digest)
    assert "Refused at the gateway" in str([b.to_dict() for b in blocks])


def test_usage_verdicts_are_per_place_in_the_batch_when_external_ids_repeat(db, serve):
    a, b, dev, key_id, secret = two_workspaces(db)
    url = serve()
    auth = {"Authorization": "Bearer new-token"}
    events = [
        {"external_id": "same", "key": secret, "amount_usd": 1},
        {"external_id": "same", "key": secret, "amount_usd": 2},
        {"external_id": "bad-first", "key": secret, "amount_usd": -1},
        {"external_id": "bad-first", "key": secret, "amount_usd": 3},
    ]
    answer = httpx.post(url + "/v1/usage", json={"events": events}, headers=auth)
    assert [(r["external_id"], r["result"]) for r in answer.json()["results"]] == [
        ("same", "accepted"),
        ("same", "duplicate"),
        ("bad-first", "refused"),
        ("bad-first", "accepted"),
    ]
    report = db.run(lambda s: __import__("store.usage_reports", fromlist=["x"]).usage_report(s, f.OPERATOR, a))
    assert report.total_micros == parse_money("$4")  # the first "same" ($1) and the second "bad-first" ($3)
