"""A fake OpenRouter over real HTTP that keeps state as OpenRouter does and checks every request against its schemas.

It serves, under ``/api/v1``, what Purser uses of OpenRouter's management API — keys,
workspaces, workspace budgets, guardrails and their key assignments — plus ``GET /models`` and
``POST /chat/completions``, so a test can spend through a key and see limits, guardrails and
budgets hold. The rules it keeps are in openrouter_state.py (keys, workspaces, budgets) and
openrouter_guardrails.py (guardrails, spending); the schemas it checks are transcribed from
OpenRouter's OpenAPI document into openrouter_schemas.json (openrouter_schema.py reads them).

- A request that does not fit its schema is answered 400 ``{"error": {"code": 400, "message":
  <what was wrong>}}`` and recorded in ``fake.invalid``: ``assert fake.invalid == []`` after a
  flow proves Purser sent only what the document allows. Fields the document does not name
  are valid (it never says additionalProperties: false) and are recorded in
  ``fake.unknown_fields``. Every answer the fake gives is checked against the document's
  response schema; a mismatch (a bug of the fake) is recorded in ``fake.bad_answers``.
- A missing key, workspace, guardrail or budget is 404 ``{"error": {"code": 404, "message":
  "Resource not found"}}``; a path OpenRouter does not serve is 404 too, but with an HTML page
  (``fake.wrong_path_404``), as a web server answers a route it does not have, so a caller
  can tell "gone" from "wrong URL". A known path with a method it does not take is 405.
- Workspace budgets are an Enterprise feature: ``FakeOpenRouter(enterprise=False)``, the
  default (most accounts, and the safe assumption for Purser), answers the budget endpoints
  with ``fake.budget_refusal`` (403 "Workspace budgets are available on the Enterprise plan";
  the document lists no answer for this case, the workspaces guide says only "Enterprise
  plan"). ``enterprise=True`` (or setting ``fake.enterprise``) keeps and enforces them.

Tests script failures (429 with Retry-After, 500, 401), seed keys and usage, set costs, and
inspect what the fake holds and every call it received.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from werkzeug.wrappers import Request, Response

from tests.fakes.openrouter_catalog import to_micros
from tests.fakes.openrouter_guardrails import GuardrailState
from tests.fakes.openrouter_schema import Invalid, Schemas, Unknown
from tests.fakes.openrouter_state import DEFAULT_WORKSPACE, Refusal

__all__ = ["DEFAULT_WORKSPACE", "Call", "FakeOpenRouter"]

API = "/api/v1"
WRONG_PATH_404 = (
    "text/html; charset=utf-8",
    "<!DOCTYPE html><html><head><title>404: This page could not be found.</title></head>"
    "<body><h1>404</h1><h2>This page could not be found.</h2></body></html>",
)

Handler = Callable[["FakeOpenRouter", dict, dict, Any], "tuple[int, dict] | Response"]
#: path template (the document's) -> method -> handler(fake, path params, coerced query, body)
ROUTES: dict[str, dict[str, Handler]] = {
    "/keys": {"GET": lambda f, p, q, b: f.list_keys(q), "POST": lambda f, p, q, b: f._create(b)},
    "/keys/{hash}": {
        "GET": lambda f, p, q, b: f.get_key(p["hash"]),
        "PATCH": lambda f, p, q, b: f.update_key(p["hash"], b),
        "DELETE": lambda f, p, q, b: f.delete_key(p["hash"]),
    },
    "/workspaces": {"GET": lambda f, p, q, b: f.list_workspaces(q), "POST": lambda f, p, q, b: f.create_workspace(b)},
    "/workspaces/{id}": {
        "GET": lambda f, p, q, b: f.get_workspace(p["id"]),
        "PATCH": lambda f, p, q, b: f.update_workspace(p["id"], b),
        "DELETE": lambda f, p, q, b: f.delete_workspace(p["id"]),
    },
    "/workspaces/{id}/budgets": {"GET": lambda f, p, q, b: f.list_budgets(p["id"])},
    "/workspaces/{id}/budgets/{interval}": {
        "GET": lambda f, p, q, b: f.get_budget(p["id"], p["interval"]),
        "PUT": lambda f, p, q, b: f.put_budget(p["id"], p["interval"], b),
        "DELETE": lambda f, p, q, b: f.delete_budget(p["id"], p["interval"]),
    },
    "/guardrails": {"GET": lambda f, p, q, b: f.list_guardrails(q), "POST": lambda f, p, q, b: f.create_guardrail(b)},
    "/guardrails/{id}": {
        "GET": lambda f, p, q, b: f.get_guardrail(p["id"]),
        "PATCH": lambda f, p, q, b: f.update_guardrail(p["id"], b),
        "DELETE": lambda f, p, q, b: f.delete_guardrail(p["id"]),
    },
    "/guardrails/{id}/assignments/keys": {
        "GET": lambda f, p, q, b: f.list_assignments(p["id"], q),
        "POST": lambda f, p, q, b: f.assign_keys(p["id"], b),
    },
    "/guardrails/{id}/assignments/keys/remove": {"POST": lambda f, p, q, b: f.unassign_keys(p["id"], b)},
    "/models": {"GET": lambda f, p, q, b: f.list_models(q)},
    "/chat/completions": {"POST": lambda f, p, q, b: f.chat(f._spender, b)},
}
PATTERNS = [(re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", t) + "$"), t) for t in ROUTES]


@functools.cache
def schemas() -> Schemas:
    return Schemas()  # once a process: compiling the validators is the slow part


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    args: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


class FakeOpenRouter(GuardrailState):
    def __init__(self, management_key: str = "sk-or-mgmt-test", *, enterprise: bool = False) -> None:
        self.management_key = management_key
        self.url = ""  # where it is served (the fixture sets it)
        self._enterprise = enterprise
        self._lock = threading.RLock()  # one request, or one scripting call, at a time
        self._schemas = schemas()
        self._spender: dict | None = None  # the key a /chat/completions call spends through
        self._init_records()
        self._init_state(enterprise)

    def _init_records(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (method, path) of every call
        self.calls: list[Call] = []  # the same calls with their query, body and time
        self.invalid: list[Invalid] = []  # requests refused for not fitting the document
        self.unknown_fields: list[Unknown] = []  # fields the document does not name (accepted)
        self.bad_answers: list[str] = []  # answers of the fake that do not fit the document
        self.wrong_path_404 = WRONG_PATH_404  # (content type, body) for a path OpenRouter does not serve
        self._failures: list[tuple[str, int, float | None, int, str, str | None]] = []

    # -- scripting -------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything: keys, workspaces (but the default), guardrails, spend, calls, failures; clock, catalog and plan as made."""
        with self._lock:
            self._init_records()
            self._init_state(self._enterprise)

    def fail(self, method: str = "*", status: int = 500, retry_after: float | None = None, times: int = 1, message: str = "scripted failure", *, path: str | None = None) -> None:
        """Answer the next ``times`` calls of ``method`` (or "*"), to ``path`` if given, with this error."""
        with self._lock:
            self._failures.append((method, status, retry_after, times, message, path))

    def live(self) -> list[dict]:
        return [k for k in self.keys.values() if not k["disabled"]]

    def named(self, name: str) -> list[dict]:
        return [k for k in self.keys.values() if k["name"] == name]

    def add_key(self, name: str, *, usage: float = 0.0, disabled: bool = False, limit: float | None = None, **fields: Any) -> str:
        """A key made elsewhere (the dashboard, another tool): the hash of the new key.

        ``usage`` is spend from before the fake's ledger (it counts in ``usage``, in no window);
        ``fields`` are POST /keys fields (workspace_id, limit_reset, expires_at, ...).
        """
        with self._lock:
            key = self._new_key({"name": name, "limit": limit, **fields})
            key["_seeded"], key["disabled"] = to_micros(usage), disabled
            self._refresh(key)
            return key["hash"]

    def add_usage(self, key_hash: str, usd: float) -> None:
        """Spend through the key now, past every limit (what happened elsewhere, as the usage sync sees it)."""
        with self._lock:
            self._charge(self.keys[key_hash], to_micros(usd))

    def spent(self, *, key_hash: str | None = None, workspace_id: str | None = None, interval: str | None = None) -> float:
        """USD spent (the ledger), by a key or in a workspace, in the current daily/weekly/monthly window or ever."""
        with self._lock:
            return self._spent(key=key_hash, workspace=workspace_id, interval=interval) / 1_000_000

    def add_workspace(self, slug: str, name: str | None = None) -> str:
        with self._lock:
            return self._answered(self.create_workspace({"name": name or slug, "slug": slug}))["data"]["id"]

    def add_guardrail(self, name: str, *keys: str, **fields: Any) -> str:
        """A guardrail (POST /guardrails fields), assigned to ``keys``: its id."""
        with self._lock:
            gid = self._answered(self.create_guardrail({"name": name, **fields}))["data"]["id"]
            if keys:
                self._answered(self.assign_keys(gid, {"key_hashes": list(keys)}))
            return gid

    def calls_to(self, method: str, path: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (path is None or c.path == path)]

    @staticmethod
    def _answered(result: tuple[int, dict]) -> dict:
        return result[1]

    # -- the API ---------------------------------------------------------------------

    def __call__(self, environ, start_response):
        request = Request(environ)
        body = request.get_json(silent=True)
        with self._lock:
            self.requests.append((request.method, request.path))
            self.calls.append(Call(request.method, request.path, dict(request.args), body))
            response = self._handle(request, body)
        return response(environ, start_response)

    def _error(self, status: int, message: str, retry_after: float | None = None) -> Response:
        headers = {"Retry-After": _seconds(retry_after)} if retry_after is not None else {}
        return Response(json.dumps(_error_body(status, message)), status=status, headers=headers, mimetype="application/json")

    def _scripted(self, request: Request) -> Response | None:
        for i, (method, status, retry_after, times, message, path) in enumerate(self._failures):
            if method in (request.method, "*") and (path is None or path.rstrip("/") == request.path.rstrip("/")):
                if times <= 1:
                    self._failures.pop(i)
                else:
                    self._failures[i] = (method, status, retry_after, times - 1, message, path)
                return self._error(status, message, retry_after)
        return None

    def _handle(self, request: Request, body: Any) -> Response:
        scripted = self._scripted(request)
        if scripted is not None:
            return scripted
        found = _route(request.path)
        if found is None:
            content_type, page = self.wrong_path_404
            return Response(page, status=404, content_type=content_type)
        match, template = found
        handler = ROUTES[template].get(request.method)
        if handler is None:
            return Response("Method Not Allowed", status=405, headers={"Allow": ", ".join(ROUTES[template])}, mimetype="text/plain")
        refused = self._authorize(request, template)
        if refused is not None:
            return refused
        op = self._schemas[f"{request.method} {template}"]
        params = match.groupdict()
        checked = op.check(params, {k: request.args[k] for k in request.args}, body, bool(request.get_data(cache=True)))
        self.unknown_fields += [Unknown(request.method, request.path, name) for name in checked.unknown]
        if checked.problem:
            self.invalid.append(Invalid(request.method, request.path, checked.problem))
            return self._error(400, checked.problem)
        return self._answer(op.name, lambda: handler(self, params, checked.query, body))

    def _authorize(self, request: Request, template: str) -> Response | None:
        authorization = request.headers.get("Authorization")
        self._spender = None
        if template == "/models":
            return None  # the model list is public
        if template == "/chat/completions":
            try:
                self._spender = self._key_by_secret(authorization)
            except Refusal as refusal:
                return self._error(refusal.status, refusal.message)
            return None
        if authorization == f"Bearer {self.management_key}":
            return None
        if authorization and authorization.startswith("Bearer ") and any(s == authorization[7:] for s in self.secrets.values()):
            return self._error(403, "Only management keys can perform this operation")
        return self._error(401, "No auth credentials found")

    def _answer(self, op_name: str, handle: Callable[[], "tuple[int, dict] | Response"]) -> Response:
        try:
            answered = handle()
        except Refusal as refusal:
            answered = (refusal.status, _error_body(refusal.status, refusal.message))
        if isinstance(answered, Response):
            return answered
        status, payload = answered
        problem = self._schemas[op_name].check_answer(status, payload)
        if problem:
            self.bad_answers.append(f"{op_name}: {problem}")
        return Response(json.dumps(payload), status=status, mimetype="application/json")

    def _create(self, body: Any) -> Response:
        # POST /keys goes through here: load tests (tests/reliability/load_fakes.py) wrap it
        return self._answer("POST /keys", lambda: self.create_key(body))

    def list_models(self, query: dict) -> tuple[int, dict]:
        models = self.catalog
        if "offset" in query or "limit" in query:  # both omitted: the whole list, as the document says
            offset = query.get("offset") or 0
            models = models[offset : offset + (query.get("limit") or len(models))]
        return 200, {"data": models, "total_count": len(self.catalog), "links": {"next": None}}


def _route(path: str) -> tuple[re.Match, str] | None:
    path = path.rstrip("/")
    if not path.startswith(API + "/"):
        return None
    for pattern, template in PATTERNS:
        match = pattern.match(path.removeprefix(API))
        if match:
            return match, template
    return None


def _error_body(status: int, message: str) -> dict:
    return {"error": {"code": status, "message": message}}


def _seconds(value: float) -> str:
    # Retry-After is whole seconds on the wire
    return str(int(value)) if float(value).is_integer() else str(value)
