"""/v1/authz and /v1/usage under hostile input, over HTTP on real PostgreSQL: fuzzed headers and bodies,
forged and truncated keys, spoofed forwarding headers, wrong and rotated-out ingest tokens.
Never a 500; never a 200 that should not be."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.web import WebApp
from purser.settings import Settings
from purser.wiring import add_gateway
from sandbox.serve import serve_in_thread
from store import budgets, keys, workspaces
from store.models import UsageEvent
from store.types import Role
from tests import factories as f
from tests.gateway.test_nginx import _no_bolt
from tests.reliability.hostile.checks import assert_no_leak

TOKENS = "new-token,old-token"
FAST, SLOW = 100, 2000
TRUSTED = "127.0.0.1/32,::1/128"
NOBODY_TRUSTED = "192.0.2.1/32"  # the test client (127.0.0.1) is no proxy of ours


@pytest.fixture
def serve(db):
    served = []

    def start(trusted: str = TRUSTED, tokens: str = TOKENS) -> str:
        web = WebApp(db, bolt_app=_no_bolt(), signing_secret="unused")
        add_gateway(web, db, Settings(PURSER_INGEST_TOKEN=tokens or None, PURSER_TRUSTED_PROXIES=trusted, REDIS_URL=None))
        server = serve_in_thread(web)
        served.append((server, web))
        return server.url

    yield start
    for server, web in served:
        server.stop()
        web.gateway.close()  # its counts go to this test's store, not the next one's


@pytest.fixture
def keyring(db):
    """alpha: a live key on project search; a revoked one. zulu: a key behind an allowlist (10.0.0.0/8)."""
    alpha = f.workspace(db, "alpha", "development")
    zulu = f.workspace(db, "zulu-secret", "development")
    f.project(db, alpha, "search")
    f.project(db, zulu, "moonshot")
    dev = f.member(db, alpha, Role.DEVELOPER)
    z_dev = f.member(db, zulu, Role.DEVELOPER)
    live_id, live = f.key(db, alpha, dev, "bot", project="search")
    revoked_id, revoked = f.key(db, alpha, dev, "old")
    db.run(keys.revoke_key, f.OPERATOR, revoked_id)
    fenced_id, fenced = f.key(db, zulu, z_dev, "zbot", project="moonshot")
    db.run(workspaces.add_allowlist, f.OPERATOR, zulu, "10.0.0.0/8")
    return {"alpha": alpha, "zulu": zulu, "live": live, "live_id": live_id, "revoked": revoked, "fenced": fenced}


def hypothesis_settings(examples: int):
    return settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def events_stored(db) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(UsageEvent))


# -- /v1/authz --------------------------------------------------------------------------------

# What h11 lets a client put in a header value: visible ASCII, spaces inside, obs-text.
header_bytes = st.binary(max_size=120).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F).strip())
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120).map(str.strip)


def fuzz_authz(url: str, keyring: dict, examples: int) -> None:
    live = keyring["live"]
    secrets = st.sampled_from([live, keyring["revoked"], keyring["fenced"], live[:-1], live[:10], live + "x", live.upper(), live[::-1], hashlib.sha256(live.encode()).hexdigest(), "sk-purser-" + "A" * 43, ""])
    mangled = st.builds(lambda s, i, c: s[:i] + c + s[i + 1 :], st.just(live), st.integers(0, len(live) - 1), st.sampled_from("aA0-_ "))
    authorization = st.one_of(
        st.builds(lambda scheme, sep, secret, tail: f"{scheme}{sep}{secret}{tail}", st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", "Bearer:", ""]), st.sampled_from([" ", "  ", "\t", ""]), st.one_of(secrets, mangled, header_text), st.sampled_from(["", " ", "\t", ",", " x"])),
        header_text,
        header_bytes,
        st.none(),
    )
    forwarded = st.one_of(st.none(), st.sampled_from(["10.1.2.3", "10.1.2.3, 198.51.100.7", "198.51.100.7, 10.1.2.3", "unknown", "10.1.2.3:443", "[::1]", "::ffff:10.1.2.3", "", ",,,"]), header_text)
    project = st.one_of(st.none(), st.sampled_from(["search", "SEARCH", " search ", "moonshot", "", "search\t", "searc"]), header_text)

    @hypothesis_settings(examples)
    @given(auth=authorization, xff=forwarded, real_ip=forwarded, tag=project, method=st.sampled_from(["GET", "POST", "HEAD"]))
    def prop(auth, xff, real_ip, tag, method):
        headers = {name: value for name, value in (("Authorization", auth), ("X-Forwarded-For", xff), ("X-Real-IP", real_ip), ("X-Purser-Project", tag)) if value is not None}
        try:
            answer = httpx.request(method, url + "/v1/authz", headers=headers, timeout=10)
        except httpx.LocalProtocolError:
            assume(False)  # the client refused to send it; nothing reached Purser
        assert answer.status_code in (200, 401, 402, 403), (headers, answer.status_code, answer.text[:200])
        assert_no_leak([answer.text, *answer.headers.values()])
        scheme, _, value = (auth.decode("latin-1") if isinstance(auth, bytes) else (auth or "")).partition(" ")
        presented = value.strip() if scheme.lower() == "bearer" else None
        tag_text = (tag or "").strip().lower() if tag is not None else ""
        # Only the live key of alpha, presented exactly, on its own project or none, may pass.
        should_pass = presented == live and tag_text in ("", "search")
        assert (answer.status_code == 200) == should_pass, (headers, answer.status_code, answer.text[:200])
        if answer.status_code != 200 and method != "HEAD":
            assert "zulu" not in answer.text and "moonshot" not in answer.text

    prop()


def test_fuzzed_authz_requests_pass_only_with_the_exact_live_key(db, serve, keyring):
    # Nobody is a trusted proxy here: forwarded addresses are the caller's own word and count for nothing,
    # so the allowlisted zulu key never passes from 127.0.0.1 whatever the headers claim.
    fuzz_authz(serve(trusted=NOBODY_TRUSTED), keyring, FAST)


@pytest.mark.slow
def test_fuzzed_authz_requests_at_length(db, serve, keyring):
    fuzz_authz(serve(trusted=NOBODY_TRUSTED), keyring, SLOW)


def test_forged_and_truncated_keys_are_refused(db, serve, keyring):
    url = serve()
    live = keyring["live"]
    forged = [live[:n] for n in range(1, len(live))]  # every truncation
    forged += [live[:i] + ("B" if live[i] != "B" else "C") + live[i + 1 :] for i in range(len(live))]  # every one-character change
    forged += [live + "=", live + "\u00e9".encode().decode("latin-1"), " " + live + "x", hashlib.sha256(live.encode()).hexdigest(), keyring["revoked"]]
    for secret in forged:
        answer = httpx.get(url + "/v1/authz", headers={"Authorization": f"Bearer {secret}".encode("latin-1")})
        assert answer.status_code == 401, (secret, answer.status_code)
    assert httpx.get(url + "/v1/authz", headers={"Authorization": f"Bearer {live}"}).status_code == 200
    # Another workspace's key does not open alpha's project, and the refusal names nothing of zulu.
    wrong = httpx.get(url + "/v1/authz", headers={"Authorization": f"Bearer {keyring['fenced']}", "X-Forwarded-For": "10.9.9.9", "X-Purser-Project": "search"})
    assert wrong.status_code == 403 and "zulu" not in wrong.text and "moonshot" not in wrong.text


def test_spoofed_forwarding_headers_do_not_open_an_allowlist(db, serve, keyring):
    fenced = {"Authorization": f"Bearer {keyring['fenced']}"}
    untrusting = serve(trusted=NOBODY_TRUSTED)
    for spoof in ({"X-Forwarded-For": "10.1.2.3"}, {"X-Real-IP": "10.1.2.3"}, {"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3"}, {"Forwarded": "for=10.1.2.3"}):
        assert httpx.get(untrusting + "/v1/authz", headers={**fenced, **spoof}).status_code == 403, spoof
    trusting = serve()
    assert httpx.get(trusting + "/v1/authz", headers={**fenced, "X-Forwarded-For": "10.1.2.3"}).status_code == 200
    for spoof in ("10.1.2.3, 198.51.100.7", "10.1.2.3, garbage", "10.1.2.3:443", "garbage", ", ,", "10.1.2.3 198.51.100.7", "0x0a010203"):
        assert httpx.get(trusting + "/v1/authz", headers={**fenced, "X-Forwarded-For": spoof}).status_code == 403, spoof
    assert httpx.get(trusting + "/v1/authz", headers=fenced).status_code == 403  # 127.0.0.1 itself is not allowed


def test_a_pause_reason_cannot_break_the_refusal_headers(db, serve, keyring):
    """The reason an admin typed goes back to the gateway in X-Purser-Message: control characters must not end a header."""
    url = serve()
    db.run(budgets.pause_project, f.OPERATOR, keyring["alpha"], "search", "line one\r\nX-Injected: yes\x7f\x1b[2J and <!channel> ünïcode")
    import time

    time.sleep(0.6)  # past the cache's short life
    answer = httpx.get(url + "/v1/authz", headers={"Authorization": f"Bearer {keyring['live']}"})
    assert answer.status_code == 403 and answer.headers["X-Purser-Refusal"] == "project_paused"
    assert "X-Injected" not in answer.headers and "\n" not in answer.headers["X-Purser-Message"]
    assert "line one" in answer.json()["error"]["message"]


def test_an_oversized_authorization_header_is_refused_not_failed(db, serve):
    url = serve()
    answer = httpx.get(url + "/v1/authz", headers={"Authorization": "Bearer " + "x" * 60_000})
    assert answer.status_code in (401, 431), answer.status_code


# -- /v1/usage --------------------------------------------------------------------------------

chars = st.characters(blacklist_categories=("Cs",))
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(),  # NaN and ±Infinity included: json.dumps writes them and json.loads reads them
    st.text(chars, max_size=40),
)
json_value = st.recursive(json_leaf, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(chars, max_size=12), inner, max_size=4)), max_leaves=10)


def usage_event(keyring: dict):
    live = keyring["live"]
    return st.fixed_dictionaries(
        {},
        optional={
            "external_id": st.one_of(st.text(chars, max_size=40), st.text(chars, min_size=190, max_size=260), json_value, st.sampled_from(["e1", "e1", "e\x00", " "])),
            "key": st.one_of(st.sampled_from([live, keyring["revoked"], keyring["fenced"], live[:-2], ""]), json_value),
            "key_hash": st.one_of(st.sampled_from([hashlib.sha256(live.encode()).hexdigest(), hashlib.sha256(live.encode()).hexdigest().upper(), "0" * 64, "g" * 64, "\x00" * 64]), json_value),
            "amount_usd": st.one_of(json_leaf, st.sampled_from(["0.5", "1e999", "-1", "NaN", "0.0000001", 1e308, 10**30, "１２"])),
            "model": st.one_of(st.sampled_from(["gpt-4o-mini", "openai/gpt-4o-mini", "mystery", "gpt-4o-mini\x00"]), json_value),
            "prompt_tokens": json_leaf,
            "completion_tokens": json_leaf,
            "occurred_at": st.one_of(json_leaf, st.sampled_from(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+00:00", "2026-13-45T99:99:99Z", 1e20, -1e20, 253402300800])),
        },
    )


def fuzz_usage(db, url: str, keyring: dict, examples: int) -> None:
    auth = {"Authorization": "Bearer new-token"}
    body = st.one_of(
        st.builds(lambda events: {"events": events}, st.lists(usage_event(keyring), min_size=1, max_size=6)),
        st.lists(usage_event(keyring), max_size=4),
        json_value,
    )

    @hypothesis_settings(examples)
    @given(body=body, litellm=st.booleans())
    def prop(body, litellm):
        before = events_stored(db)
        path = "/v1/usage/litellm" if litellm else "/v1/usage"
        answer = httpx.post(url + path, content=json.dumps(body).encode(), headers={**auth, "Content-Type": "application/json"}, timeout=20)
        assert answer.status_code in (200, 400, 413), (body, answer.status_code, answer.text[:300])
        assert_no_leak([answer.text])
        added = events_stored(db) - before
        if answer.status_code != 200:
            assert added == 0
            return
        results = answer.json()["results"]
        assert all(r["result"] in ("accepted", "duplicate", "refused") for r in results)
        # Every stored event was reported accepted, and nothing reported accepted was lost.
        assert added == sum(r["result"] == "accepted" for r in results), (body, results)

    prop()


def test_fuzzed_usage_bodies_are_answered_and_counted_exactly(db, serve, keyring):
    fuzz_usage(db, serve(), keyring, FAST)


@pytest.mark.slow
def test_fuzzed_usage_bodies_at_length(db, serve, keyring):
    fuzz_usage(db, serve(), keyring, SLOW)


def test_events_the_fuzzer_broke_are_refused_one_by_one(db, serve, keyring):
    """Each once answered 500: too large for the decimal context, NUL (PostgreSQL refuses it), a model
    that is no string, token counts past a column, times no datetime holds, JSON nested past recursion."""
    url = serve()
    live, good_hash = keyring["live"], hashlib.sha256(keyring["live"].encode()).hexdigest()
    bad = [
        {"external_id": "huge", "key": live, "amount_usd": 10**22},
        {"external_id": "nul-hash", "key_hash": "\x00" * 64, "amount_usd": 0},
        {"external_id": "short-hash", "key_hash": good_hash[:-1], "amount_usd": 0},
        {"external_id": "nul\x00id", "key": live, "amount_usd": 1},
        {"external_id": "model-object", "key": live, "amount_usd": 1, "model": {"name": "gpt"}},
        {"external_id": "model-nul", "key": live, "amount_usd": 1, "model": "gpt\x00"},
        {"external_id": "tokens-huge", "key": live, "amount_usd": 1, "prompt_tokens": 2**40, "completion_tokens": 1},
        {"external_id": "tokens-text", "key": live, "amount_usd": 1, "prompt_tokens": "12", "completion_tokens": 1},
        {"external_id": "far-future", "key": live, "amount_usd": 1, "occurred_at": 1e20},
        {"external_id": "before-year-1", "key": live, "amount_usd": 1, "occurred_at": "0001-01-01T00:00:00+14:00"},
    ]
    answer = httpx.post(url + "/v1/usage", content=json.dumps({"events": bad}).encode(), headers={"Authorization": "Bearer new-token"})
    assert answer.status_code == 200, answer.text[:300]
    assert [r["result"] for r in answer.json()["results"]] == ["refused"] * len(bad)
    nan = httpx.post(url + "/v1/usage", content=b'{"events": [{"external_id": "nan", "key": "%s", "amount_usd": 1, "occurred_at": NaN}]}' % live.encode(), headers={"Authorization": "Bearer new-token"})
    assert nan.status_code == 200 and nan.json()["results"][0]["result"] == "refused"
    hashed = [{"id": "x", "response_cost": 1, "metadata": {"user_api_key_hash": "\x00" * 64}}, {"id": "y", "response_cost": 1, "model": [1], "metadata": {"user_api_key_hash": good_hash}}]
    litellm = httpx.post(url + "/v1/usage/litellm", content=json.dumps(hashed).encode(), headers={"Authorization": "Bearer new-token"})
    assert litellm.status_code == 200 and [r["result"] for r in litellm.json()["results"]] == ["refused", "refused"]
    assert events_stored(db) == 0


JUNK = [b"", b"{", b"\xff\xfe\x00", b"[" * 100_000, b'{"events": [' + b"{}," * 2000 + b"{}]}", b"NaN", b'"events"', b"\xef\xbb\xbf{}", b"{}", b'{"events": {}}']


def test_junk_usage_bodies_are_refused_not_failed(db, serve):
    url = serve()
    for raw in JUNK:
        answer = httpx.post(url + "/v1/usage", content=raw, headers={"Authorization": "Bearer new-token", "Content-Type": "application/json"})
        assert answer.status_code in (400, 413), (raw[:30], answer.status_code, answer.text[:200])
        assert_no_leak([answer.text])
    assert events_stored(db) == 0


def test_an_oversized_usage_body_is_refused_with_413(db, serve, keyring):
    url = serve()
    big = json.dumps({"events": [{"external_id": "x", "key": keyring["live"], "amount_usd": 1, "model": "m" * 3_000_000}]}).encode()
    assert httpx.post(url + "/v1/usage", content=big, headers={"Authorization": "Bearer new-token"}).status_code == 413
    chunked = httpx.post(url + "/v1/usage", content=(big[i : i + 65536] for i in range(0, len(big), 65536)), headers={"Authorization": "Bearer new-token"})
    assert chunked.status_code in (400, 413)
    assert events_stored(db) == 0


WRONG_TOKENS = [None, "", "Bearer", "Bearer wrong", "Bearer NEW-TOKEN", "Bearer new-toke", "Bearer new-token-x", "Bearer new-token,old-token", "Basic bmV3LXRva2Vu", "Token new-token", "new-token", "Bearer\tnew-token\tx"]


def test_a_wrong_ingest_token_is_refused_and_nothing_is_recorded(db, serve, keyring):
    url = serve()
    body = {"events": [{"external_id": "e1", "key": keyring["live"], "amount_usd": 1}]}
    for header in WRONG_TOKENS:
        headers = {"Authorization": header} if header is not None else {}
        for path in ("/v1/usage", "/v1/usage/litellm"):
            assert httpx.post(url + path, json=body, headers=headers).status_code == 401, (header, path)
    assert events_stored(db) == 0


def test_a_rotated_out_ingest_token_stops_working_and_none_configured_refuses_all(db, serve, keyring):
    body = {"events": [{"external_id": "e1", "key": keyring["live"], "amount_usd": 1}]}
    both = serve(tokens="new-token,old-token")
    assert httpx.post(both + "/v1/usage", json=body, headers={"Authorization": "Bearer old-token"}).json()["results"][0]["result"] == "accepted"
    rotated = serve(tokens="new-token")
    assert httpx.post(rotated + "/v1/usage", json={"events": [{**body["events"][0], "external_id": "e2"}]}, headers={"Authorization": "Bearer old-token"}).status_code == 401
    assert httpx.post(rotated + "/v1/usage", json={"events": [{**body["events"][0], "external_id": "e3"}]}, headers={"Authorization": "Bearer new-token"}).status_code == 200
    closed = serve(tokens="")  # no token configured: ingest is closed, not open
    for token in ("new-token", "None", "null", '""'):
        assert httpx.post(closed + "/v1/usage", json=body, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert events_stored(db) == 2
