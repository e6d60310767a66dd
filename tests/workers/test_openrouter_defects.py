"""OpenRouter's defects, each proven: a 404 that is not OpenRouter's, a management key pasted with its newline,
answers Purser cannot read, listings that never end, creation's needless listing, and spend lost on revocation.

Odd answers come from ``Stub``, a tiny server each test scripts (the shared fake answers
only as OpenRouter does); the flows through the workers use the shared fake.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

import pytest
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from sandbox.serve import serve_in_thread
from store import keys
from store.models import Action, ApiKey, UsageEvent
from store.types import ActionStatus, utcnow
from tests import factories as f
from workers import maintenance
from workers.providers.base import PermanentProviderError, TransientProviderError
from workers.providers.openrouter import OpenRouterProvider

KEYS = "/api/v1/keys"
HTML_404 = "<!doctype html><title>404 Not Found</title><h1>Not Found</h1>"


# -- a server that answers what the test says ------------------------------------------


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # without /api/v1
    args: dict[str, str]
    body: Any


Answer = tuple[int, str, str]  # status, body, content type


def reply(status: int = 200, body: Any = None, *, text: str | None = None, content_type: str = "application/json") -> Callable[[Request], Answer]:
    payload = text if text is not None else json.dumps(body if body is not None else {})
    return lambda _request: (status, payload, content_type)


class Stub:
    """OpenRouter's address as a test scripts it: (method, path) to an answer; anything else OpenRouter's JSON 404."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Callable[[Request], Answer]] = {}
        self.seen: list[Seen] = []
        self.url = ""

    def reset(self) -> None:
        self.routes.clear()
        self.seen.clear()

    def on(self, method: str, path: str, answer: Callable[[Request], Answer]) -> None:
        self.routes[(method, path)] = answer

    def calls(self) -> list[tuple[str, str]]:
        return [(c.method, c.path) for c in self.seen]

    def __call__(self, environ, start_response):
        request = Request(environ)
        path = request.path.removeprefix("/api/v1")
        self.seen.append(Seen(request.method, path, dict(request.args), request.get_json(silent=True)))
        route = self.routes.get((request.method, path))
        if route is None:
            status, body, kind = 404, json.dumps({"error": {"code": 404, "message": "Not Found"}}), "application/json"
        else:
            status, body, kind = route(request)
        return Response(body, status=status, content_type=kind)(environ, start_response)


@pytest.fixture(scope="session")
def stub_server():
    stub = Stub()
    served = serve_in_thread(stub)
    stub.url = served.url
    yield stub
    served.stop()


@pytest.fixture
def stub(stub_server):
    stub_server.reset()
    return stub_server


@pytest.fixture
def at_stub(stub):
    p = OpenRouterProvider("sk-or-v1-stub-management-key", stub.url + "/api/v1", timeout=5)
    yield p
    p.close()


def paged(items: list[dict[str, Any]], size: int = 100) -> Callable[[Request], Answer]:
    """A listing served as OpenRouter pages it: ``size`` items from ``offset``."""
    return lambda r: (200, json.dumps({"data": items[int(r.args.get("offset", 0)) :][:size]}), "application/json")


def key_item(n: int | str, name: str = "other", usage: float = 0.0) -> dict[str, Any]:
    return {"hash": f"h{n}", "name": name, "usage": usage, "limit": None, "disabled": False}


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s result or exception, or a failure when it is still running after ``seconds`` (a listing that never ends)."""
    outcome: dict[str, Any] = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# -- 1. a 404 counts as "gone" only when OpenRouter says so ----------------------------


@pytest.mark.parametrize(
    "answer",
    [
        reply(404, text=HTML_404, content_type="text/html"),
        reply(404, text="Not Found", content_type="text/plain"),
        reply(404, {"message": "no route"}),
        reply(404, {"error": "not found"}),
    ],
    ids=["html", "plain-text", "json-without-error", "error-not-an-object"],
)
def test_deleting_where_some_other_server_answers_404_is_refused_and_names_the_url_setting(stub, at_stub, answer):
    stub.on("DELETE", "/keys/h1", answer)
    with pytest.raises(PermanentProviderError, match="OPENROUTER_API_URL") as caught:
        at_stub.delete("h1")
    assert "404" in str(caught.value)


def test_openrouters_own_404_still_means_the_key_is_gone(stub, at_stub):
    stub.on("DELETE", "/keys/h1", reply(404, {"error": {"code": 404, "message": "Key not found"}}))
    at_stub.delete("h1")
    assert at_stub.get_key("h1") is None


def test_revoking_against_a_wrong_openrouter_url_fails_the_action_instead_of_reporting_it_done(db, stub_workers, fake, stub):
    ws = f.workspace(db, "orx", "development", provider="openrouter")
    dev = f.member(db, ws)
    db.run(keys.request_key, dev, ws, name="search-bot")
    stub_workers.settle()
    [key] = _keys(db)
    # The operator points OPENROUTER_API_URL somewhere that is not OpenRouter's API.
    stub.on("GET", f"/keys/{key.provider_ref}", reply(404, text=HTML_404, content_type="text/html"))
    stub.on("DELETE", f"/keys/{key.provider_ref}", reply(404, text=HTML_404, content_type="text/html"))
    stub_workers.rt.providers["openrouter"] = OpenRouterProvider(fake.management_key, stub.url + "/api/v1")
    db.run(keys.revoke_key, f.OPERATOR, key.id)
    stub_workers.settle()
    [revoke] = _actions(db, "revoke_key")
    assert revoke.status is ActionStatus.FAILED and "OPENROUTER_API_URL" in revoke.error
    assert key.provider_ref in fake.keys  # still live, and the operator is told


# -- 2. a management key with a trailing newline: tests/test_openrouter_startup.py --------


# -- 3. answers Purser cannot read -------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        reply(200, text="<html>maintenance</html>", content_type="text/html"),
        reply(200, [key_item(1)]),
        reply(200, {"keys": [key_item(1)]}),
        reply(200, {"data": [{"name": "no hash", "usage": 1}]}),
        paged([key_item(1) | {"usage": "lots"}]),
    ],
    ids=["not-json", "a-list", "no-data", "item-without-hash", "usage-not-a-number"],
)
def test_an_unreadable_listing_is_a_transient_error_that_says_so(stub, at_stub, answer):
    stub.on("GET", "/keys", answer)
    with pytest.raises(TransientProviderError, match="could not read"):
        at_stub.usage()


@pytest.mark.parametrize(
    "body",
    [{"data": key_item(1)}, {"key": "sk-or-v1-made", "data": {"name": "purser-a1"}}, {"key": "sk-or-v1-made"}, {"key": None, "data": key_item(1)}],
    ids=["no-key", "no-hash", "no-data", "key-null"],
)
def test_a_creation_answer_without_secret_or_hash_is_transient_and_never_shows_the_secret(stub, at_stub, body):
    stub.on("GET", "/keys", paged([]))
    stub.on("POST", "/keys", reply(201, body))
    stub.on("DELETE", "/keys/h1", reply(200, {"deleted": True}))
    with pytest.raises(TransientProviderError) as caught:
        at_stub.create(name="purser-a1", limit_micros=None, limit_reset=None, expires_at=None)
    assert "sk-or-v1-made" not in str(caught.value)
    if body.get("data", {}).get("hash"):
        assert ("DELETE", "/keys/h1") in stub.calls()  # the key whose secret was lost goes at once


def test_a_creation_answer_that_is_not_json_is_transient(stub, at_stub):
    stub.on("GET", "/keys", paged([]))
    stub.on("POST", "/keys", reply(201, text="Created", content_type="text/plain"))
    with pytest.raises(TransientProviderError, match="not JSON"):
        at_stub.create(name="purser-a1", limit_micros=None, limit_reset=None, expires_at=None)


def test_the_retry_after_an_unreadable_creation_deletes_what_it_made_and_makes_one_key(stub, at_stub):
    made = {"n": 0}

    def create(_request):
        made["n"] += 1
        if made["n"] == 1:
            return 201, json.dumps({"data": {"name": "purser-a1"}}), "application/json"  # made, but neither hash nor secret
        return 201, json.dumps({"key": "sk-or-v1-second", "data": key_item(2, "purser-a1")}), "application/json"

    stub.on("GET", "/keys", paged([]))
    stub.on("POST", "/keys", create)
    with pytest.raises(TransientProviderError):
        at_stub.create(name="purser-a1", limit_micros=None, limit_reset=None, expires_at=None)
    stub.on("GET", "/keys", paged([key_item(1, "purser-a1")]))
    stub.on("DELETE", "/keys/h1", reply(200, {"deleted": True}))
    created = at_stub.create(name="purser-a1", limit_micros=None, limit_reset=None, expires_at=None, retrying=True)
    assert (created.secret, created.ref) == ("sk-or-v1-second", "h2")
    assert stub.calls() == [("POST", "/keys"), ("GET", "/keys"), ("GET", "/keys"), ("DELETE", "/keys/h1"), ("POST", "/keys")]


def test_an_unreadable_key_is_a_transient_error(stub, at_stub):
    stub.on("GET", "/keys/h1", reply(200, {"data": {"hash": "h1"}}))
    with pytest.raises(TransientProviderError, match="could not read"):
        at_stub.get_key("h1")


# -- 4. listings that end, and creation that lists only when it must --------------------


def test_a_server_ignoring_offset_ends_in_an_error_not_a_loop(stub, at_stub):
    stub.on("GET", "/keys", reply(200, {"data": [key_item(i) for i in range(100)]}))
    with pytest.raises(PermanentProviderError, match="OPENROUTER_API_URL") as caught:
        within(10, at_stub.usage)
    assert "offset" in str(caught.value)


def test_a_listing_that_never_ends_stops_after_the_most_pages(stub, at_stub, monkeypatch):
    monkeypatch.setattr("workers.providers.openrouter_http.MAX_PAGES", 5)
    stub.on("GET", "/keys", lambda r: (200, json.dumps({"data": [key_item(f"{r.args['offset']}-{i}") for i in range(100)]}), "application/json"))
    with pytest.raises(PermanentProviderError, match="5 pages"):
        within(10, at_stub.usage)
    assert len(stub.seen) == 5


def test_pages_smaller_than_a_hundred_are_all_read(stub, at_stub):
    every = [key_item(i, usage=i / 100) for i in range(90)]
    stub.on("GET", "/keys", paged(every, size=40))
    usage = within(10, at_stub.usage)
    assert {u.ref: u.usage_micros for u in usage} == {f"h{i}": i * 10_000 for i in range(90)}
    assert [c.args["offset"] for c in stub.seen] == ["0", "40", "80", "90"]


def test_a_listing_that_shifts_while_read_gives_each_key_once(stub, at_stub):
    # A key made between two pages, newest first: the second page starts with the first's last key.
    pages = {"0": [key_item(i) for i in range(100)], "100": [key_item(i) for i in range(99, 150)], "151": []}
    stub.on("GET", "/keys", lambda r: (200, json.dumps({"data": pages[r.args["offset"]]}), "application/json"))
    assert sorted(u.ref for u in within(10, at_stub.usage)) == sorted(f"h{i}" for i in range(150))


def test_a_first_attempt_makes_one_call_and_a_retry_lists_first(fake, provider):
    first = provider.create(name="purser-b1", limit_micros=None, limit_reset=None, expires_at=None)
    assert fake.requests == [("POST", KEYS)]
    fake.requests.clear()
    provider.create(name="purser-b2", limit_micros=None, limit_reset=None, expires_at=None, retrying=True)
    assert fake.requests == [("GET", KEYS), ("GET", KEYS), ("POST", KEYS)]  # the page, the empty page, the key
    assert first.ref in fake.keys and len(fake.keys) == 2


def test_provisioning_lists_keys_only_when_it_retries(db, stub_workers, fake):
    ws = f.workspace(db, "orx", "development", provider="openrouter")
    dev = f.member(db, ws)
    db.run(keys.request_key, dev, ws, name="first-try")
    stub_workers.settle()
    assert [(c.method, c.path) for c in fake.calls if c.path == KEYS]  # (the lease is set on the key itself after) == [("POST", KEYS)]
    fake.reset()
    fake.fail("POST", 429, retry_after=0)
    db.run(keys.request_key, dev, ws, name="second-try")
    stub_workers.settle()
    assert [(c.method, c.path) for c in fake.calls if c.path == KEYS]  # (the lease is set on the key itself after) == [("POST", KEYS), ("GET", KEYS), ("POST", KEYS)]
    assert len(fake.keys) == 1


# -- 5. spend since the last sync is recorded when a key is revoked or retired -----------


def test_spend_after_the_last_sync_is_recorded_when_the_key_is_revoked(db, stub_workers, fake):
    ws = f.workspace(db, "orx", "development", provider="openrouter")
    dev = f.member(db, ws)
    db.run(keys.request_key, dev, ws, name="search-bot")
    stub_workers.settle()
    [key] = _keys(db)
    fake.add_usage(key.provider_ref, 2.0)
    maintenance.sync_usage.fn()
    fake.add_usage(key.provider_ref, 0.75)  # spent after the last sync
    db.run(keys.revoke_key, f.OPERATOR, key.id)
    stub_workers.settle()
    assert key.provider_ref not in fake.keys
    assert _spend(db) == [750_000, 2_000_000]
    maintenance.sync_usage.fn()
    assert _spend(db) == [750_000, 2_000_000]  # nothing counted twice
    [revoke] = _actions(db, "revoke_key")
    assert revoke.status is ActionStatus.DONE


def test_spend_of_a_rotated_key_is_recorded_when_it_is_retired(db, stub_workers, fake):
    ws = f.workspace(db, "orx", "development", provider="openrouter")
    dev = f.member(db, ws)
    db.run(keys.request_key, dev, ws, name="search-bot")
    stub_workers.settle()
    [old] = _keys(db)
    db.run(keys.rotate_key, dev, old.id)
    stub_workers.settle()
    fake.add_usage(old.provider_ref, 1.5)  # used during its grace period, never synced
    [retire] = _actions(db, "retire_key")

    def grace_over(s):
        s.get(Action, retire.id).run_after = utcnow() - maintenance.SWEEP_AFTER - timedelta(seconds=1)

    db.run(grace_over)
    maintenance.sweep_outbox.fn()
    stub_workers.settle()
    assert old.provider_ref not in fake.keys
    assert _spend(db) == [1_500_000]


def test_revoking_a_key_openrouter_no_longer_has_completes(db, stub_workers, fake):
    ws = f.workspace(db, "orx", "development", provider="openrouter")
    dev = f.member(db, ws)
    db.run(keys.request_key, dev, ws, name="search-bot")
    stub_workers.settle()
    [key] = _keys(db)
    del fake.keys[key.provider_ref]  # deleted in OpenRouter's dashboard
    db.run(keys.revoke_key, f.OPERATOR, key.id)
    stub_workers.settle()
    [revoke] = _actions(db, "revoke_key")
    assert revoke.status is ActionStatus.DONE and _spend(db) == []


# -- helpers -------------------------------------------------------------------------------


def _keys(db) -> list[ApiKey]:
    with db.session() as s:
        return list(s.scalars(select(ApiKey).order_by(ApiKey.id)))


def _actions(db, kind: str) -> list[Action]:
    with db.session() as s:
        return list(s.scalars(select(Action).where(Action.kind == kind).order_by(Action.created_at)))


def _spend(db) -> list[int]:
    with db.session() as s:
        return sorted(s.scalars(select(UsageEvent.amount_micros)))

