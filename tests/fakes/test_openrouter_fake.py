"""The fake OpenRouter itself: it refuses what OpenRouter's schemas refuse, and keeps keys, guardrails and budgets as OpenRouter does."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import datetime, timezone

import httpx
import pytest

from sandbox.serve import serve_in_thread
from tests.fakes.openrouter import DEFAULT_WORKSPACE, FakeOpenRouter
from tests.fakes.openrouter_schema import SCHEMAS


@pytest.fixture(scope="module")
def served():
    fake = FakeOpenRouter()
    server = serve_in_thread(fake)
    fake.url = server.url
    yield fake
    server.stop()


@pytest.fixture
def fake(served):
    served.reset()
    yield served
    assert served.bad_answers == []  # whatever the test did, the fake answered in OpenRouter's shapes


@pytest.fixture
def api(fake):
    with httpx.Client(base_url=fake.url + "/api/v1", headers={"Authorization": f"Bearer {fake.management_key}"}, timeout=10) as client:
        yield client


def spend(api, fake, key_hash: str, model: str = "purser/penny") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    return api.post("/chat/completions", json=body, headers={"Authorization": f"Bearer {fake.secrets[key_hash]}"})


def spend_until_refused(api, fake, key_hash: str) -> httpx.Response:
    for _ in range(1000):
        answer = spend(api, fake, key_hash)
        if answer.status_code != 200:
            return answer
    raise AssertionError("never refused")


def new_key(api, **body) -> str:
    answer = api.post("/keys", json={"name": "k", **body})
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]["hash"]


# -- the schemas -----------------------------------------------------------------------


def test_the_schemas_name_their_source():
    source = json.loads(SCHEMAS.read_text())["source"]
    assert source == {"repository": "OpenRouterTeam/docs", "path": "openapi/openapi.yaml", "commit": "c26125a5fa92cb52ac67f0c75b717229567db716"}


@pytest.mark.parametrize(
    "method, path, body, where",
    [
        ("POST", "/keys", {"name": 5}, "body.name"),
        ("POST", "/keys", {"limit": 1}, "body: 'name' is a required property"),
        ("POST", "/keys", {"name": "k", "limit_reset": "yearly"}, "body.limit_reset"),
        ("PATCH", f"/keys/{'0' * 64}", {"disabled": "yes"}, "body.disabled"),
        ("GET", "/keys?offset=first", None, "query.offset"),
        ("GET", "/keys?include_disabled=yes", None, "query.include_disabled"),
        ("GET", "/keys?workspace_id=not-a-uuid", None, "query.workspace_id"),
        ("POST", "/workspaces", {"name": "Team", "slug": "Not A Slug"}, "body.slug"),
        ("PUT", f"/workspaces/{DEFAULT_WORKSPACE}/budgets/yearly", {"limit_usd": 5}, "path.interval"),
        ("POST", "/guardrails", {"name": "g", "reset_interval": "hourly"}, "body.reset_interval"),
        ("POST", f"/guardrails/{'1' * 8}-1111-4111-8111-{'1' * 12}/assignments/keys", {"key_hashes": []}, "body.key_hashes"),
    ],
)
def test_a_request_outside_its_schema_is_refused_400_and_recorded(fake, api, method, path, body, where):
    answer = api.request(method, path, json=body)
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert answer.json()["error"]["code"] == 400 and message.startswith(where.split(":")[0]) and where in message
    [invalid] = fake.invalid
    assert (invalid.method, invalid.problem) == (method, message)
    assert len(fake.keys) == 0 and len(fake.workspaces) == 1


def test_fields_the_document_does_not_name_are_accepted_and_noted(fake, api):
    key_hash = new_key(api, colour="blue")
    api.get("/keys", params={"limit": 5})
    assert key_hash in fake.keys and fake.invalid == []
    assert [(u.method, u.field) for u in fake.unknown_fields] == [("POST", "body.colour"), ("GET", "query.limit")]


def test_a_whole_valid_flow_records_nothing_invalid(fake, api):
    ws = api.post("/workspaces", json={"name": "Search team", "slug": "search-team"}).json()["data"]
    key_hash = new_key(api, workspace_id=ws["id"], limit=5, limit_reset="monthly", expires_at="2031-01-01T00:00:00Z", include_byok_in_limit=False)
    assert api.patch(f"/keys/{key_hash}", json={"limit": 6.5, "limit_reset": None, "disabled": False}).status_code == 200
    g = api.post("/guardrails", json={"name": "cheap", "workspace_id": ws["id"], "limit_usd": 2, "reset_interval": "daily"}).json()["data"]
    assert api.post(f"/guardrails/{g['id']}/assignments/keys", json={"key_hashes": [key_hash]}).json() == {"assigned_count": 1}
    assert spend(api, fake, key_hash).json()["usage"]["cost"] == 0.01
    listed = api.get("/keys", params={"workspace_id": ws["id"], "include_disabled": "true", "offset": 0}).json()["data"]
    assert [(k["hash"], k["usage"], k["limit_remaining"], k["workspace_id"]) for k in listed] == [(key_hash, 0.01, 6.49, ws["id"])]
    assert api.get(f"/guardrails/{g['id']}/assignments/keys").json()["total_count"] == 1
    assert api.post(f"/guardrails/{g['id']}/assignments/keys/remove", json={"key_hashes": [key_hash]}).json() == {"unassigned_count": 1}
    assert [m["id"] for m in api.get("/models").json()["data"]] == ["openai/gpt-4o-mini", "anthropic/claude-3.5-haiku", "purser/penny"]
    assert api.delete(f"/guardrails/{g['id']}").json() == {"deleted": True}
    assert api.delete(f"/keys/{key_hash}").json() == {"deleted": True}
    assert api.delete(f"/workspaces/{ws['slug']}").json() == {"deleted": True}
    assert fake.invalid == [] and fake.unknown_fields == [] and fake.bad_answers == []


# -- answers for what is missing --------------------------------------------------------


def test_a_missing_resource_is_a_json_404_and_a_wrong_path_is_not(fake, api):
    for path in (f"/keys/{'0' * 64}", "/workspaces/nowhere", f"/guardrails/{DEFAULT_WORKSPACE}"):
        gone = api.get(path)
        assert (gone.status_code, gone.json()) == (404, {"error": {"code": 404, "message": "Resource not found"}})
    assert api.delete(f"/keys/{'0' * 64}").json()["error"]["message"] == "Resource not found"
    wrong = api.get("/keyz")
    assert wrong.status_code == 404 and wrong.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        wrong.json()
    assert httpx.get(fake.url + "/v1/keys").status_code == 404  # outside /api/v1 too
    assert api.put("/keys").status_code == 405
    assert fake.invalid == []


# -- spending through a key ---------------------------------------------------------------


def test_fifty_threads_spending_cents_through_a_one_dollar_key_spend_exactly_one_dollar(fake, api):
    key_hash = fake.add_key("busy", limit=1.0)
    statuses: Counter[int] = Counter()
    start = threading.Barrier(50)

    def spender():
        with httpx.Client(base_url=fake.url + "/api/v1", timeout=30) as own:
            start.wait()
            for _ in range(3):
                statuses[spend(own, fake, key_hash).status_code] += 1

    threads = [threading.Thread(target=spender) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == {200: 100, 402: 50}
    key = api.get(f"/keys/{key_hash}").json()["data"]
    assert (key["usage"], key["limit_remaining"], fake.spent(key_hash=key_hash)) == (1.0, 0.0, 1.0)
    assert spend(api, fake, key_hash).json() == {"error": {"code": 402, "message": "Key limit exceeded"}}


def test_costs_come_from_the_catalog_or_from_the_test(fake, api):
    key_hash = fake.add_key("priced")
    mini = spend(api, fake, key_hash, "openai/gpt-4o-mini").json()["usage"]
    assert 0 < mini["cost"] < 0.0001 and mini["total_tokens"] == mini["prompt_tokens"] + mini["completion_tokens"]
    fake.cost_of["openai/gpt-4o-mini"] = 0.25
    assert spend(api, fake, key_hash, "openai/gpt-4o-mini").json()["usage"]["cost"] == 0.25
    assert spend(api, fake, key_hash, "nobody/nothing").status_code == 400


@pytest.mark.parametrize(
    "change, status",
    [
        (lambda key: key.update(disabled=True), 401),  # the document: 401 for a disabled key
        (lambda key: key.update(expires_at="2020-01-01T00:00:00Z"), 401),
    ],
)
def test_a_disabled_or_expired_key_cannot_spend(fake, api, change, status):
    key_hash = fake.add_key("stopped")
    change(fake.keys[key_hash])
    assert spend(api, fake, key_hash).status_code == status and fake.spent() == 0


def test_a_key_secret_cannot_manage_keys_and_no_secret_cannot_spend(fake, api):
    key_hash = fake.add_key("plain")
    as_key = api.get("/keys", headers={"Authorization": f"Bearer {fake.secrets[key_hash]}"})
    assert as_key.status_code == 403
    anonymous = httpx.post(fake.url + "/api/v1/chat/completions", json={"model": "purser/penny", "messages": []})
    assert anonymous.status_code == 401


def test_usage_windows_and_a_daily_limit_reset_at_midnight_utc(fake, api):
    key_hash = new_key(api, limit=0.02, limit_reset="daily")
    fake.clock = lambda: datetime(2030, 3, 6, 23, 0, tzinfo=timezone.utc)  # a Wednesday
    assert spend_until_refused(api, fake, key_hash).status_code == 402
    fake.clock = lambda: datetime(2030, 3, 7, 0, 30, tzinfo=timezone.utc)
    key = api.get(f"/keys/{key_hash}").json()["data"]
    assert (key["usage"], key["usage_daily"], key["usage_weekly"], key["limit_remaining"]) == (0.02, 0.0, 0.02, 0.02)
    assert spend(api, fake, key_hash).status_code == 200


# -- listing ----------------------------------------------------------------------------


def test_keys_list_by_workspace_the_default_one_unless_told(fake, api):
    other = fake.add_workspace("other")
    here = [fake.add_key(f"d{i}", disabled=i == 0) for i in range(3)]
    there = [fake.add_key(f"o{i}", workspace_id=other) for i in range(150)]

    def listed(**params):
        return [k["hash"] for k in api.get("/keys", params=params).json()["data"]]

    assert listed() == here[1:]
    assert listed(include_disabled="true") == here
    assert listed(workspace_id=DEFAULT_WORKSPACE, include_disabled="false") == here[1:]
    assert listed(workspace_id=other) + listed(workspace_id=other, offset=100) == there
    assert len(listed(workspace_id=other)) == 100


def test_workspaces_have_unique_slugs_and_go_only_without_active_keys(fake, api):
    made = api.post("/workspaces", json={"name": "A", "slug": "team-a"})
    assert made.status_code == 201
    assert api.post("/workspaces", json={"name": "B", "slug": "team-a"}).status_code == 400
    assert api.patch("/workspaces/team-a", json={"slug": "default"}).status_code == 400
    key_hash = new_key(api, workspace_id=made.json()["data"]["id"])
    assert api.delete("/workspaces/team-a").status_code == 400
    api.patch(f"/keys/{key_hash}", json={"disabled": True})
    assert api.delete("/workspaces/team-a").status_code == 200 and key_hash not in fake.keys
    assert api.delete(f"/workspaces/{DEFAULT_WORKSPACE}").status_code == 403
    assert api.get("/workspaces").json()["total_count"] == 1


# -- guardrails -------------------------------------------------------------------------


def test_a_guardrail_budget_holds_for_each_key_alone(fake, api):
    first, second = fake.add_key("one"), fake.add_key("two")
    fake.add_guardrail("a dollar each", first, second, limit_usd=1.0, reset_interval="monthly")
    for key_hash in (first, second):
        refused = spend_until_refused(api, fake, key_hash)
        assert refused.status_code == 403 and "a dollar each" in refused.json()["error"]["message"]
    assert (fake.spent(key_hash=first), fake.spent(key_hash=second), fake.spent()) == (1.0, 1.0, 2.0)


def test_a_guardrail_allows_only_its_models_and_providers(fake, api):
    key_hash, other = fake.add_key("narrow"), fake.add_key("wide")
    g = fake.add_guardrail("penny only", key_hash, allowed_models=["purser/penny"])
    assert spend(api, fake, key_hash, "openai/gpt-4o-mini").status_code == 403
    assert spend(api, fake, key_hash).status_code == 200
    assert spend(api, fake, other, "openai/gpt-4o-mini").status_code == 200  # not assigned: not bound
    api.patch(f"/guardrails/{g}", json={"allowed_models": None, "allowed_providers": ["anthropic"]})
    assert spend(api, fake, key_hash, "anthropic/claude-3.5-haiku").status_code == 200
    assert spend(api, fake, key_hash, "purser/penny").status_code == 403


def test_zero_data_retention_refuses_models_without_it(fake, api):
    key_hash = fake.add_key("private")
    fake.non_zdr.add("openai/gpt-4o-mini")
    g = fake.add_guardrail("zdr", key_hash, enforce_zdr=True)
    assert api.get(f"/guardrails/{g}").json()["data"]["enforce_zdr_openai"] is True
    assert spend(api, fake, key_hash, "openai/gpt-4o-mini").status_code == 403
    assert spend(api, fake, key_hash, "anthropic/claude-3.5-haiku").status_code == 200


def test_assigning_a_key_moves_it_from_its_other_guardrail(fake, api):
    key_hash = fake.add_key("mover")
    first, second = fake.add_guardrail("first", key_hash), fake.add_guardrail("second")
    api.post(f"/guardrails/{second}/assignments/keys", json={"key_hashes": [key_hash]})
    assert api.get(f"/guardrails/{first}/assignments/keys").json() == {"data": [], "total_count": 0}
    [held] = api.get(f"/guardrails/{second}/assignments/keys").json()["data"]
    assert (held["key_hash"], held["key_name"]) == (key_hash, "mover")
    assert api.post(f"/guardrails/{second}/assignments/keys", json={"key_hashes": ["f" * 64]}).status_code == 400


def test_a_workspace_default_guardrail_binds_every_key_once_configured(fake, api):
    ws = api.get(f"/workspaces/{DEFAULT_WORKSPACE}").json()["data"]
    key_hash = fake.add_key("anyone")
    assert api.get(f"/guardrails/{ws['default_guardrail_id']}").status_code == 404
    made = api.patch(f"/guardrails/{ws['default_guardrail_id']}", json={"allowed_providers": ["purser"]})
    assert made.json()["data"]["name"] == f"Workspace {DEFAULT_WORKSPACE} Default"
    assert spend(api, fake, key_hash, "openai/gpt-4o-mini").status_code == 403
    assert api.patch(f"/guardrails/{ws['default_guardrail_id']}", json={"name": "mine"}).status_code == 400


# -- workspace budgets ------------------------------------------------------------------


def test_workspace_budgets_are_refused_without_the_enterprise_plan(fake, api):
    for method, path in [("PUT", "/budgets/monthly"), ("GET", "/budgets"), ("GET", "/budgets/daily"), ("DELETE", "/budgets/daily")]:
        answer = api.request(method, f"/workspaces/{DEFAULT_WORKSPACE}{path}", json={"limit_usd": 5} if method == "PUT" else None)
        assert answer.status_code == 403 and "Enterprise" in answer.json()["error"]["message"]
    assert fake.budgets == {} and fake.invalid == []


def test_workspace_budgets_on_enterprise_cap_the_whole_workspace(fake, api):
    fake.enterprise = True
    ws = fake.add_workspace("capped")
    first, second = fake.add_key("one", workspace_id=ws), fake.add_key("two", workspace_id=ws)
    outside = fake.add_key("elsewhere")
    put = api.put(f"/workspaces/{ws}/budgets/monthly", json={"limit_usd": 1})
    assert put.json()["data"]["reset_interval"] == "monthly" and put.json()["include_byok_in_budgets"] is False
    assert api.put("/workspaces/capped/budgets/weekly", json={"limit_usd": 1}).status_code == 400  # must be below monthly
    assert api.put("/workspaces/capped/budgets/lifetime", json={"limit_usd": 0}).status_code == 400
    for _ in range(60):
        spend(api, fake, first)
    refused = spend_until_refused(api, fake, second)
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "Workspace monthly budget of $1.00 exceeded. Contact your org admin."
    assert (fake.spent(workspace_id=ws), fake.spent(key_hash=first), fake.spent(key_hash=second)) == (1.0, 0.6, 0.4)
    assert spend(api, fake, outside).status_code == 200
    listed = api.get(f"/workspaces/{ws}/budgets").json()
    assert [b["reset_interval"] for b in listed["data"]] == ["monthly"]
    assert api.delete(f"/workspaces/{ws}/budgets/monthly").json() == {"deleted": True}
    assert api.delete(f"/workspaces/{ws}/budgets/monthly").json() == {"deleted": True}  # idempotent
    assert spend(api, fake, second).status_code == 200
