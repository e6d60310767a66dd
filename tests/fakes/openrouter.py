"""A fake of OpenRouter's key-management API over real HTTP, with the published shapes.

`POST /keys`, `GET /keys?offset=&include_disabled=`, `GET/PATCH/DELETE /keys/{hash}`,
errors as ``{error: {code, message}}``. Bodies are checked against the published field
types (a wrong one is a 400, as OpenRouter answers). Tests script failures (429 with
Retry-After, 500, 401), seed keys, raise usage, and inspect what the fake holds and
every call it received.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from werkzeug.wrappers import Request, Response

PAGE = 100
RESETS = (None, "daily", "weekly", "monthly")
PATCHABLE = ("name", "disabled", "limit", "limit_reset", "include_byok_in_limit")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    args: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


class FakeOpenRouter:
    def __init__(self, management_key: str = "sk-or-mgmt-test") -> None:
        self.management_key = management_key
        self.keys: dict[str, dict] = {}  # hash -> Key
        self.secrets: dict[str, str] = {}  # hash -> secret (to check what Purser stored)
        self.requests: list[tuple[str, str]] = []  # (method, path) of every call
        self.calls: list[Call] = []  # the same calls with their query, body and time
        self._failures: list[tuple[str, int, float | None, int, str]] = []
        self._lock = threading.Lock()
        self._n = itertools.count(1)

    # -- scripting -------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            for kept in (self.keys, self.secrets, self.requests, self.calls, self._failures):
                kept.clear()

    def fail(self, method: str = "*", status: int = 500, retry_after: float | None = None, times: int = 1, message: str = "scripted failure") -> None:
        """Answer the next ``times`` calls of ``method`` (or "*") with this error."""
        with self._lock:
            self._failures.append((method, status, retry_after, times, message))

    def live(self) -> list[dict]:
        return [k for k in self.keys.values() if not k["disabled"]]

    def named(self, name: str) -> list[dict]:
        return [k for k in self.keys.values() if k["name"] == name]

    def add_key(self, name: str, *, usage: float = 0.0, disabled: bool = False, limit: float | None = None) -> str:
        """A key made elsewhere (the dashboard, another tool): the hash of the new key."""
        with self._lock:
            key = self._new_key({"name": name, "limit": limit})
            key["usage"], key["disabled"] = usage, disabled
            _remaining(key)
            return key["hash"]

    def add_usage(self, key_hash: str, usd: float) -> None:
        with self._lock:
            key = self.keys[key_hash]
            for window in ("usage", "usage_daily", "usage_weekly", "usage_monthly"):
                key[window] = round(key[window] + usd, 6)
            _remaining(key)

    def calls_to(self, method: str, path: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.method == method and (path is None or c.path == path)]

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
        return Response(json.dumps({"error": {"code": status, "message": message}}), status=status, headers=headers, mimetype="application/json")

    def _handle(self, request: Request, body: Any) -> Response:
        for i, (method, status, retry_after, times, message) in enumerate(self._failures):
            if method in (request.method, "*"):
                if times <= 1:
                    self._failures.pop(i)
                else:
                    self._failures[i] = (method, status, retry_after, times - 1, message)
                return self._error(status, message, retry_after)
        if request.headers.get("Authorization") != f"Bearer {self.management_key}":
            return self._error(401, "No auth credentials found")
        path = request.path.rstrip("/")
        parts = path.split("/")
        if path.endswith("/keys"):
            if request.method == "POST":
                return self._create(body)
            if request.method == "GET":
                return self._list(request)
        if len(parts) >= 2 and parts[-2] == "keys":
            key = self.keys.get(parts[-1])
            if key is None:
                return self._error(404, "Key not found")
            if request.method == "GET":
                return self._json({"data": _public(key)})
            if request.method == "PATCH":
                return self._patch(key, body)
            if request.method == "DELETE":
                del self.keys[parts[-1]]
                return self._json({"deleted": True})
        return self._error(404, "Not found")

    def _create(self, body: Any) -> Response:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            return self._error(400, "name is required")
        problem = _check_fields(body) or _check_expiry(body.get("expires_at"))
        if problem:
            return self._error(400, problem)
        key = self._new_key(body)
        return self._json({"data": _public(key), "key": self.secrets[key["hash"]]}, status=201)

    def _patch(self, key: dict, body: Any) -> Response:
        if not isinstance(body, dict):
            return self._error(400, "body must be a JSON object")
        problem = _check_fields(body)
        if problem:
            return self._error(400, problem)
        for name in PATCHABLE:
            if name in body:
                key[name] = body[name]
        _remaining(key)
        key["updated_at"] = _now()
        return self._json({"data": _public(key)})

    def _new_key(self, body: dict) -> dict:
        secret = "sk-or-v1-" + secrets.token_hex(32)
        key_hash = hashlib.sha256(secret.encode()).hexdigest()
        key = {
            "hash": key_hash,
            "name": body["name"],
            "label": f"sk-or-v1-{secret[9:12]}...{secret[-3:]}",
            "disabled": False,
            "limit": body.get("limit"),
            "limit_remaining": body.get("limit"),
            "limit_reset": body.get("limit_reset"),
            "include_byok_in_limit": bool(body.get("include_byok_in_limit")),
            "usage": 0.0,
            "usage_daily": 0.0,
            "usage_weekly": 0.0,
            "usage_monthly": 0.0,
            "created_at": _now(),
            "updated_at": None,
            "expires_at": body.get("expires_at"),
            "_n": next(self._n),
        }
        self.keys[key_hash] = key
        self.secrets[key_hash] = secret
        return key

    def _list(self, request: Request) -> Response:
        try:
            offset = int(request.args.get("offset", 0))
        except ValueError:
            return self._error(400, "offset must be an integer")
        include_disabled = request.args.get("include_disabled") == "true"
        keys = sorted(self.keys.values(), key=lambda k: k["_n"])
        if not include_disabled:
            keys = [k for k in keys if not k["disabled"]]
        return self._json({"data": [_public(k) for k in keys[offset : offset + PAGE]]})

    @staticmethod
    def _json(body: dict, status: int = 200) -> Response:
        return Response(json.dumps(body), status=status, mimetype="application/json")


def _check_fields(body: dict) -> str | None:
    if "name" in body and (not isinstance(body["name"], str) or not body["name"]):
        return "name must be a non-empty string"
    if "disabled" in body and not isinstance(body["disabled"], bool):
        return "disabled must be a boolean"
    limit = body.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit < 0):
        return "limit must be a non-negative number or null"
    if body.get("limit_reset") not in RESETS:
        return "limit_reset must be daily, weekly, monthly or null"
    if "include_byok_in_limit" in body and not isinstance(body["include_byok_in_limit"], bool):
        return "include_byok_in_limit must be a boolean"
    return None


def _check_expiry(value: Any) -> str | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return "expires_at must be an ISO 8601 date-time"
    if at.utcoffset() is None or at.utcoffset().total_seconds() != 0:
        return "expires_at must be in UTC"
    return None


def _remaining(key: dict) -> None:
    key["limit_remaining"] = None if key["limit"] is None else max(0.0, round(key["limit"] - key["usage"], 6))


def _public(key: dict) -> dict:
    return {k: v for k, v in key.items() if not k.startswith("_")}


def _seconds(value: float) -> str:
    # Retry-After is whole seconds on the wire
    return str(int(value)) if float(value).is_integer() else str(value)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
