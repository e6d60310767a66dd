"""OpenRouter keys: the provider against a fake OpenRouter over HTTP — what it sends, and how it reads every answer and error."""

from __future__ import annotations

import hashlib
import socket
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from sandbox.serve import serve_in_thread
from store.types import Period
from tests.workers.test_openrouter_defects import Stub, paged, reply
from workers.providers.base import KeyState, PermanentProviderError, TransientProviderError
from workers.providers.local import LocalProvider
from workers.providers.openrouter import OpenRouterProvider

KEYS = "/api/v1/keys"


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# -- the provider --------------------------------------------------------------------


@pytest.mark.parametrize(
    "limit_micros, usd",
    [(1, "0.000001"), (300_000, "0.3"), (12_345_678, "12.345678"), (50_000_000, "50"), (999_999_999_999, "999999.999999")],
)
def test_create_returns_secret_and_hash_with_limit_in_exact_usd(fake, provider, limit_micros, usd):
    expires = datetime(2031, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    created = provider.create(name="purser-a1", limit_micros=limit_micros, limit_reset="weekly", expires_at=expires)
    assert created.secret.startswith("sk-or-v1-") and created.secret == fake.secrets[created.ref]
    assert created.ref == sha256(created.secret)
    key = fake.keys[created.ref]
    assert Decimal(repr(key["limit"])) == Decimal(usd)
    assert (key["name"], key["limit_reset"], key["include_byok_in_limit"]) == ("purser-a1", "weekly", False)
    assert key["expires_at"] == "2031-05-06T05:08:09Z"


def test_create_without_limit_or_reset_sends_nulls(fake, provider):
    provider.create(name="purser-a2", limit_micros=None, limit_reset=Period.NONE.value, expires_at=None)
    [post] = fake.calls_to("POST", KEYS)
    assert post.body == {"name": "purser-a2", "limit": None, "limit_reset": None, "include_byok_in_limit": False}


def test_disable_enable_set_limit_and_delete_change_the_key_at_openrouter(fake, provider):
    ref = provider.create(name="purser-a3", limit_micros=5_000_000, limit_reset="monthly", expires_at=None).ref
    provider.disable(ref)
    assert fake.keys[ref]["disabled"] is True
    provider.enable(ref)
    assert fake.keys[ref]["disabled"] is False
    provider.set_limit(ref, 7_250_000, "daily")
    assert (fake.keys[ref]["limit"], fake.keys[ref]["limit_reset"]) == (7.25, "daily")
    provider.set_limit(ref, None, "none")
    assert (fake.keys[ref]["limit"], fake.keys[ref]["limit_reset"]) == (None, None)
    provider.delete(ref)
    assert ref not in fake.keys
    assert [(c.method, c.body) for c in fake.calls if c.path == f"{KEYS}/{ref}"] == [
        ("PATCH", {"disabled": True}),
        ("PATCH", {"disabled": False}),
        ("PATCH", {"limit": 7.25, "limit_reset": "daily"}),
        ("PATCH", {"limit": None, "limit_reset": None}),
        ("DELETE", None),
    ]


def test_deleting_a_key_openrouter_no_longer_has_is_fine(fake, provider):
    gone = "0" * 64
    provider.delete(gone)
    assert fake.requests == [("DELETE", f"{KEYS}/{gone}")]


def test_disabling_a_key_openrouter_does_not_know_is_a_permanent_error(fake, provider):
    with pytest.raises(PermanentProviderError, match="404"):
        provider.disable("0" * 64)


# OpenRouter picks the page size, so the listing ends at the first empty page, whatever the sizes before.
@pytest.mark.parametrize("count, offsets", [(99, ["0", "99"]), (200, ["0", "100", "200"]), (250, ["0", "100", "200", "250"])])
def test_usage_reads_every_key_page_by_page_disabled_ones_too(fake, provider, count, offsets):
    made = {fake.add_key(f"k{i}", usage=i / 100, disabled=i % 7 == 0): i for i in range(count)}
    usage = {u.ref: u.usage_micros for u in provider.usage()}
    assert usage == {ref: i * 10_000 for ref, i in made.items()}
    listing = fake.calls_to("GET", KEYS)
    assert [c.args.get("offset") for c in listing] == offsets
    assert {c.args.get("include_disabled") for c in listing} == {"true"}


def test_a_retried_create_deletes_an_earlier_attempts_key_even_past_the_first_page(fake, provider):
    for i in range(150):
        fake.add_key(f"someone-else-{i}")
    orphan = fake.add_key("purser-act1")
    created = provider.create(name="purser-act1", limit_micros=None, limit_reset=None, expires_at=None, retrying=True)
    assert orphan not in fake.keys
    assert [k["hash"] for k in fake.named("purser-act1")] == [created.ref]
    assert len(fake.keys) == 151


def test_rate_limit_is_transient_and_carries_retry_after(fake, provider):
    fake.fail("POST", 429, retry_after=1)
    with pytest.raises(TransientProviderError) as caught:
        provider.create(name="purser-a4", limit_micros=None, limit_reset=None, expires_at=None)
    assert caught.value.retry_after == 1.0 and "429" in str(caught.value)
    assert fake.keys == {}


def test_server_error_is_transient_without_retry_after(fake, provider):
    fake.fail("GET", 500)
    with pytest.raises(TransientProviderError) as caught:
        provider.usage()
    assert caught.value.retry_after is None and "500" in str(caught.value)


def test_unreachable_openrouter_is_transient():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    p = OpenRouterProvider("sk-or-v1-anything", f"http://127.0.0.1:{port}/api/v1", timeout=2)
    with pytest.raises(TransientProviderError, match="Could not reach OpenRouter"):
        p.usage()


def test_refused_management_key_is_permanent_and_names_the_setting_not_the_key(fake):
    wrong = "sk-or-v1-revoked-management-key"
    p = OpenRouterProvider(wrong, fake.url + "/api/v1")
    with pytest.raises(PermanentProviderError) as caught:
        p.create(name="purser-a5", limit_micros=None, limit_reset=None, expires_at=None)
    message = str(caught.value)
    assert "401" in message and "OPENROUTER_MANAGEMENT_KEY" in message
    assert wrong not in message and "sk-or-v1" not in message
    assert fake.keys == {}


@pytest.mark.parametrize("status", [401, 403])
def test_an_error_that_echoes_the_management_key_is_shown_without_it(fake, provider, status):
    fake.fail("*", status, message=f"Key {fake.management_key} may not manage keys")
    with pytest.raises(PermanentProviderError) as caught:
        provider.usage()
    assert "OPENROUTER_MANAGEMENT_KEY" in str(caught.value)
    assert fake.management_key not in str(caught.value)


def test_an_error_that_echoes_a_key_secret_is_shown_without_it(fake, provider):
    secret = provider.create(name="purser-a6", limit_micros=None, limit_reset=None, expires_at=None).secret
    fake.fail("PATCH", 400, message=f"{secret} cannot be changed now")
    with pytest.raises(PermanentProviderError) as caught:
        provider.disable(sha256(secret))
    assert "400" in str(caught.value) and secret not in str(caught.value)


def test_management_key_never_shows_in_the_providers_repr(fake, provider):
    assert fake.url in repr(provider)
    assert fake.management_key not in repr(provider) and fake.management_key not in str(provider)


def test_missing_management_key_tells_the_operator_what_to_set():
    with pytest.raises(PermanentProviderError, match="OPENROUTER_MANAGEMENT_KEY is not set"):
        OpenRouterProvider("")


# -- reading a key, and keys in an OpenRouter workspace ----------------------------------


def test_get_key_reads_usage_limit_and_state_and_none_once_gone(fake, provider):
    ref = provider.create(name="purser-g1", limit_micros=12_500_000, limit_reset="monthly", expires_at=None).ref
    fake.add_usage(ref, 1.234567)
    provider.disable(ref)
    assert provider.get_key(ref) == KeyState(ref=ref, usage_micros=1_234_567, limit_micros=12_500_000, disabled=True)
    provider.delete(ref)
    assert provider.get_key(ref) is None


def test_set_limit_answers_the_key_as_openrouter_holds_it(fake, provider):
    ref = provider.create(name="purser-g2", limit_micros=None, limit_reset=None, expires_at=None).ref
    fake.add_usage(ref, 0.5)
    assert provider.set_limit(ref, 7_250_000, "daily") == KeyState(ref=ref, usage_micros=500_000, limit_micros=7_250_000, disabled=False)
    assert provider.set_limit(ref, None, None).limit_micros is None


def test_keys_in_an_openrouter_workspace_are_made_and_listed_there(fake, provider):
    elsewhere = fake.add_workspace("search-team")
    made = provider.create(name="purser-w1", limit_micros=None, limit_reset=None, expires_at=None, workspace_id=elsewhere, retrying=True)
    assert [u.ref for u in provider.usage(workspace_id=elsewhere)] == [made.ref]
    assert provider.usage() == []  # the default workspace's keys only
    asked = [c.args.get("workspace_id") for c in fake.calls_to("GET", KEYS)]
    assert asked[0] == elsewhere and asked[-1] is None and set(asked) == {elsewhere, None}  # the orphan search and usage there; then the default workspace
    [post] = fake.calls_to("POST", KEYS)
    assert post.body["workspace_id"] == elsewhere and fake.keys[made.ref]["workspace_id"] == elsewhere


def test_the_local_provider_takes_the_same_arguments_and_keeps_no_state():
    local = LocalProvider()
    created = local.create(name="x", limit_micros=None, limit_reset=None, expires_at=None, workspace_id=None, retrying=True)
    assert created.ref is None and created.secret
    assert local.get_key("anything") is None and local.set_limit(None, 1, "daily") is None and local.usage(workspace_id="w") == []


# -- workspaces, budgets, guardrails, models (against a stub: the shared fake does not serve them) --


@pytest.fixture(scope="module")
def org_server():
    stub = Stub()
    served = serve_in_thread(stub)
    stub.url = served.url
    yield stub
    served.stop()


@pytest.fixture
def org(org_server):
    org_server.reset()
    p = OpenRouterProvider("sk-or-v1-org-management-key", org_server.url + "/api/v1")
    yield p, org_server
    p.close()


def workspace(n: int, slug: str) -> dict:
    return {"id": f"ws-{n}", "name": slug.title(), "slug": slug, "default_guardrail_id": f"gr-{n}"}


def test_find_workspace_pages_through_the_listing_by_slug(org):
    p, stub = org
    stub.on("GET", "/workspaces", paged([workspace(i, f"team-{i}") for i in range(150)]))
    assert p.find_workspace("team-120")["id"] == "ws-120"
    assert [(c.args["offset"], c.args["limit"]) for c in stub.seen] == [("0", "100"), ("100", "100")]
    stub.seen.clear()
    assert p.find_workspace("nobody") is None
    assert len(stub.seen) == 2  # the short page is the last


def test_find_workspace_stops_with_an_error_where_the_server_ignores_offset(org):
    p, stub = org
    stub.on("GET", "/workspaces", reply(200, {"data": [workspace(i, f"team-{i}") for i in range(100)], "total_count": 100}))
    with pytest.raises(PermanentProviderError, match="OPENROUTER_API_URL"):
        p.find_workspace("nobody")


def test_get_and_create_workspace(org):
    p, stub = org
    stub.on("GET", "/workspaces/ws-1", reply(200, {"data": workspace(1, "research")}))
    stub.on("POST", "/workspaces", reply(201, {"data": workspace(2, "research-2")}))
    assert p.get_workspace("ws-1")["slug"] == "research"
    assert p.get_workspace("ws-9") is None  # the stub's JSON 404, as OpenRouter's
    assert p.create_workspace("Research 2", "research-2")["id"] == "ws-2"
    assert stub.seen[-1].body == {"name": "Research 2", "slug": "research-2"}


@pytest.mark.parametrize("interval", ["daily", "weekly", "monthly", "lifetime"])
def test_workspace_budgets_are_put_in_exact_usd_and_deleted(org, interval):
    p, stub = org
    budget = {"id": "b-1", "workspace_id": "ws-1", "limit_usd": 12.345678, "reset_interval": None if interval == "lifetime" else interval}
    stub.on("PUT", f"/workspaces/ws-1/budgets/{interval}", reply(200, {"data": budget}))
    stub.on("DELETE", f"/workspaces/ws-1/budgets/{interval}", reply(200, {"deleted": True}))
    assert p.put_workspace_budget("ws-1", interval, 12_345_678) == budget
    assert stub.seen[-1].body == {"limit_usd": 12.345678}
    p.delete_workspace_budget("ws-1", interval)
    assert stub.calls()[-1] == ("DELETE", f"/workspaces/ws-1/budgets/{interval}")


@pytest.mark.parametrize("interval, limit", [("yearly", 1_000_000), ("none", 1_000_000), ("monthly", 0), ("monthly", -5)])
def test_a_budget_openrouter_would_refuse_is_refused_before_asking(org, interval, limit):
    p, stub = org
    with pytest.raises(PermanentProviderError):
        p.put_workspace_budget("ws-1", interval, limit)
    assert stub.seen == []


def test_create_guardrail_leaves_out_what_is_not_restricted_and_refuses_an_empty_list(org):
    p, stub = org
    made = {"id": "gr-1", "name": "g", "workspace_id": "ws-1", "include_byok_in_budgets": False, "created_at": "2027-01-01T00:00:00Z"}
    stub.on("POST", "/guardrails", reply(201, {"data": made}))
    assert p.create_guardrail("g", "ws-1", ["openai/gpt-4o"], None, True) == made
    assert stub.seen[-1].body == {"name": "g", "workspace_id": "ws-1", "allowed_models": ["openai/gpt-4o"], "enforce_zdr": True}
    p.create_guardrail("g", None, None, ["anthropic"], None)
    assert stub.seen[-1].body == {"name": "g", "allowed_providers": ["anthropic"]}
    with pytest.raises(PermanentProviderError, match="allowed_models"):
        p.create_guardrail("g", "ws-1", [], None, None)  # null would allow every model: the opposite


def test_update_guardrail_sends_the_fields_given_and_null_lifts_a_list(org):
    p, stub = org
    stub.on("PATCH", "/guardrails/gr-1", reply(200, {"data": {"id": "gr-1", "name": "g"}}))
    assert p.update_guardrail("gr-1", allowed_models=("a/b", "c/d"), allowed_providers=None)["id"] == "gr-1"
    assert stub.seen[-1].body == {"allowed_models": ["a/b", "c/d"], "allowed_providers": None}
    p.update_guardrail("gr-1", limit_micros=2_500_000, reset_interval="monthly")
    assert stub.seen[-1].body == {"limit_usd": 2.5, "reset_interval": "monthly"}
    with pytest.raises(PermanentProviderError, match="ignored_providers"):
        p.update_guardrail("gr-1", ignored_providers=[])


def test_guardrail_key_assignments(org):
    p, stub = org
    stub.on("POST", "/guardrails/gr-1/assignments/keys", reply(200, {"assigned_count": 2}))
    stub.on("POST", "/guardrails/gr-1/assignments/keys/remove", reply(200, {"unassigned_count": 1}))
    assert p.assign_guardrail_keys("gr-1", ["h1", "h2"]) == {"assigned_count": 2}
    assert stub.seen[-1].body == {"key_hashes": ["h1", "h2"]}
    assert p.unassign_guardrail_keys("gr-1", ["h1"]) == {"unassigned_count": 1}
    assert stub.seen[-1].body == {"key_hashes": ["h1"]}
    stub.seen.clear()
    assert p.assign_guardrail_keys("gr-1", []) == {"assigned_count": 0} and stub.seen == []  # OpenRouter takes one at least


def test_list_guardrails_of_a_workspace_page_by_page(org):
    p, stub = org
    stub.on("GET", "/guardrails", paged([{"id": f"gr-{i}", "name": f"g{i}"} for i in range(120)]))
    assert [g["id"] for g in p.list_guardrails("ws-1")] == [f"gr-{i}" for i in range(120)]
    assert {c.args["workspace_id"] for c in stub.seen} == {"ws-1"}


def test_models_is_openrouters_list_and_an_unreadable_one_is_transient(org):
    p, stub = org
    stub.on("GET", "/models", reply(200, {"data": [{"id": "openai/gpt-4o"}, {"id": "anthropic/claude"}], "total_count": 2, "links": {"next": None}}))
    assert [m["id"] for m in p.models()] == ["openai/gpt-4o", "anthropic/claude"]
    assert stub.seen[-1].args == {}  # without offset or limit, the whole list
    stub.on("GET", "/models", reply(200, text="<rss/>", content_type="application/rss+xml"))
    with pytest.raises(TransientProviderError, match="could not read"):
        p.models()


def test_organisation_errors_read_as_the_key_calls_do(org):
    p, stub = org
    stub.on("POST", "/workspaces", reply(403, {"error": {"code": 403, "message": "Only management keys can perform this operation"}}))
    with pytest.raises(PermanentProviderError, match="OPENROUTER_MANAGEMENT_KEY"):
        p.create_workspace("x", "x")
    stub.on("GET", "/workspaces/ws-1", reply(404, text="<h1>Not Found</h1>", content_type="text/html"))
    with pytest.raises(PermanentProviderError, match="OPENROUTER_API_URL"):
        p.get_workspace("ws-1")
