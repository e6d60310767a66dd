"""What the fake OpenRouter holds — keys, workspaces, workspace budgets, the spend ledger — and their rules.

Every method here runs under the fake's lock (the HTTP layer, openrouter.py, takes it), and
answers ``(status, body)`` or raises :class:`Refusal`. Money is kept in integer micro-dollars
so a limit is compared exactly; it is shown in USD numbers, as OpenRouter shows it.

Keys live in a workspace; a key made without ``workspace_id`` goes to the default workspace
(``DEFAULT_WORKSPACE``), and ``GET /keys`` without ``workspace_id`` lists that workspace only,
as the document says. Usage windows (daily, weekly from Monday, monthly) are sums of the ledger
since the window's start, UTC, by ``self.clock`` — a test may set the clock to cross a reset.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from tests.fakes.openrouter_catalog import default_catalog, to_micros

PAGE = 100  # GET /keys answers 100 keys a page
DEFAULT_WORKSPACE = "0df9e665-d932-5740-b2c7-b52af166bc11"  # the document's example workspace id
FAKE_USER = "user_2fakeOpenRouterOwner0000000"  # who made what the management key made
NOT_FOUND = "Resource not found"  # the document's 404 message, for every missing resource
#: budget intervals from the narrowest to the broadest: limits must grow strictly along it
BUDGET_INTERVALS = ("daily", "weekly", "monthly", "lifetime")
KEY_PATCHABLE = ("name", "disabled", "limit", "limit_reset", "include_byok_in_limit")
WORKSPACE_FIELDS = (
    "name", "slug", "description", "default_text_model", "default_image_model", "default_provider_sort",
    "is_observability_io_logging_enabled", "is_observability_broadcast_enabled", "is_data_discount_logging_enabled",
    "io_logging_sampling_rate", "io_logging_api_key_ids",
)  # fmt: skip
GUARDRAIL_NAMESPACE = uuid.UUID("6f2d5e0a-8c1b-4e7a-9d3f-1a2b3c4d5e6f")  # default guardrail ids derive from it


class Refusal(Exception):
    """An answer other than success: ``{"error": {"code": status, "message": message}}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Spend:
    """One charge: what a key spent, in which workspace, when."""

    at: datetime
    key: str
    workspace: str
    micros: int


def usd(micros: int) -> float:
    return round(micros / 1_000_000, 6)


def iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def window_start(interval: str | None, now: datetime) -> datetime | None:
    """Where a reset interval's current window began (midnight UTC; weeks from Monday); None: no reset."""
    day = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"daily": day, "weekly": day - timedelta(days=day.weekday()), "monthly": day.replace(day=1)}.get(interval or "")


def page(items: list, query: dict, default: int = 50) -> list:
    offset = query.get("offset") or 0
    return items[offset : offset + (query.get("limit") or default)]


class OpenRouterState:
    def _init_state(self, enterprise: bool) -> None:
        self.enterprise = enterprise
        self.clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)
        self.keys: dict[str, dict] = {}  # hash -> key, as GET /keys/{hash} shows it (and "_" fields)
        self.secrets: dict[str, str] = {}  # hash -> secret (to check what Purser stored)
        self.workspaces: dict[str, dict] = {}  # id -> workspace
        self.budgets: dict[str, dict[str, dict]] = {}  # workspace id -> interval -> budget
        self.spends: list[Spend] = []  # every charge, in order
        self.catalog: list[dict] = default_catalog()
        self.cost_of: dict[str, float] = {}  # model -> USD a call, over the catalog's pricing
        self.non_zdr: set[str] = set()  # models with no zero-data-retention endpoint
        self.budget_refusal = (403, "Workspace budgets are available on the Enterprise plan")
        self._n = itertools.count(1)
        self._new_workspace({"name": "Default Workspace", "slug": "default"}, DEFAULT_WORKSPACE)

    def _now(self) -> datetime:
        return self.clock()

    # -- the ledger -----------------------------------------------------------------

    def _spent(self, *, key: str | None = None, workspace: str | None = None, interval: str | None = None) -> int:
        since = window_start(interval, self._now())
        return sum(
            s.micros
            for s in self.spends
            if (key is None or s.key == key) and (workspace is None or s.workspace == workspace) and (since is None or s.at >= since)
        )

    def _charge(self, key: dict, micros: int) -> None:
        self.spends.append(Spend(self._now(), key["hash"], key["workspace_id"], micros))
        self._refresh(key)

    def _refresh(self, key: dict) -> None:
        """The key's usage fields from the ledger, as of the clock: windows reset as OpenRouter's do."""
        h = key["hash"]
        key["usage"] = usd(key["_seeded"] + self._spent(key=h))
        for window in ("daily", "weekly", "monthly"):
            key[f"usage_{window}"] = usd(self._spent(key=h, interval=window))
        if key["limit"] is None:
            key["limit_remaining"] = None
        else:
            used = self._spent(key=h, interval=key["limit_reset"]) + (0 if key["limit_reset"] else key["_seeded"])
            key["limit_remaining"] = max(0.0, usd(to_micros(key["limit"]) - used))

    # -- keys -----------------------------------------------------------------------

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
            **dict.fromkeys(("usage", "usage_daily", "usage_weekly", "usage_monthly"), 0.0),
            **dict.fromkeys(("byok_usage", "byok_usage_daily", "byok_usage_weekly", "byok_usage_monthly"), 0.0),  # no BYOK here
            "created_at": iso(self._now()),
            "updated_at": None,
            "expires_at": body.get("expires_at"),
            "creator_user_id": body.get("creator_user_id") or FAKE_USER,
            "workspace_id": body.get("workspace_id") or DEFAULT_WORKSPACE,
            "_n": next(self._n),
            "_seeded": 0,  # usage from before the ledger (add_key's usage=)
            "_guardrail": None,  # the one guardrail assigned to the key, and how
        }
        self.keys[key_hash] = key
        self.secrets[key_hash] = secret
        return key

    def _key(self, key_hash: str) -> dict:
        key = self.keys.get(key_hash)
        if key is None:
            raise Refusal(404, NOT_FOUND)
        return key

    def _public(self, key: dict) -> dict:
        self._refresh(key)
        return {k: v for k, v in key.items() if not k.startswith("_")}

    def create_key(self, body: dict) -> tuple[int, dict]:
        problem = _check_expiry(body.get("expires_at")) or _non_negative(body, "limit")
        if problem:
            raise Refusal(400, problem)
        self._workspace_for_new(body.get("workspace_id"))
        key = self._new_key(body)
        return 201, {"data": self._public(key), "key": self.secrets[key["hash"]]}

    def list_keys(self, query: dict) -> tuple[int, dict]:
        workspace = self._workspace(query.get("workspace_id") or DEFAULT_WORKSPACE)["id"]
        keys = sorted((k for k in self.keys.values() if k["workspace_id"] == workspace), key=lambda k: k["_n"])
        if query.get("include_disabled") != "true":
            keys = [k for k in keys if not k["disabled"]]
        return 200, {"data": [self._public(k) for k in page(keys, {"offset": query.get("offset")}, PAGE)]}

    def get_key(self, key_hash: str) -> tuple[int, dict]:
        return 200, {"data": self._public(self._key(key_hash))}

    def update_key(self, key_hash: str, body: dict) -> tuple[int, dict]:
        key = self._key(key_hash)
        problem = _non_negative(body, "limit")
        if problem:
            raise Refusal(400, problem)
        for name in KEY_PATCHABLE:
            if name in body:
                key[name] = body[name]
        key["updated_at"] = iso(self._now())
        return 200, {"data": self._public(key)}

    def delete_key(self, key_hash: str) -> tuple[int, dict]:
        self._key(key_hash)
        self._forget_key(key_hash)
        return 200, {"deleted": True}

    def _forget_key(self, key_hash: str) -> None:
        # its spend stays in the ledger: a workspace budget still counts what a deleted key spent
        del self.keys[key_hash]
        self.secrets.pop(key_hash, None)

    # -- workspaces -----------------------------------------------------------------

    def _new_workspace(self, body: dict, workspace_id: str | None = None) -> dict:
        wid = workspace_id or str(uuid.uuid4())
        ws = {
            "id": wid,
            "default_guardrail_id": str(uuid.uuid5(GUARDRAIL_NAMESPACE, wid)),
            "description": None,
            "default_text_model": None,
            "default_image_model": None,
            "default_provider_sort": None,
            "is_observability_io_logging_enabled": False,
            "is_observability_broadcast_enabled": False,
            "is_data_discount_logging_enabled": False,
            "io_logging_sampling_rate": 1,
            "io_logging_api_key_ids": None,
            "include_byok_in_budgets": False,
            "created_at": iso(self._now()),
            "updated_at": None,
            "created_by": FAKE_USER,
            "_n": next(self._n),
        }
        ws.update({k: body[k] for k in WORKSPACE_FIELDS if k in body})
        self.workspaces[wid] = ws
        return ws

    def _workspace(self, ref: str) -> dict:
        """By id or by slug, as the path parameter allows."""
        ws = self.workspaces.get(ref) or next((w for w in self.workspaces.values() if w["slug"] == ref), None)
        if ws is None:
            raise Refusal(404, NOT_FOUND)
        return ws

    def _workspace_for_new(self, workspace_id: str | None) -> dict:
        # a body naming a workspace that does not exist is a bad request, not a missing resource
        try:
            return self._workspace(workspace_id or DEFAULT_WORKSPACE)
        except Refusal:
            raise Refusal(400, f"Workspace {workspace_id or DEFAULT_WORKSPACE} not found") from None

    @staticmethod
    def _shown(ws: dict) -> dict:
        return {k: v for k, v in ws.items() if not k.startswith("_")}

    def _check_workspace_body(self, body: dict, ws: dict | None) -> None:
        rate = body.get("io_logging_sampling_rate")
        if rate is not None and not 0.0001 <= rate <= 1:
            raise Refusal(400, "io_logging_sampling_rate must be between 0.0001 and 1")
        if "slug" in body and any(w["slug"] == body["slug"] and w is not ws for w in self.workspaces.values()):
            raise Refusal(400, f"A workspace with slug '{body['slug']}' already exists")

    def list_workspaces(self, query: dict) -> tuple[int, dict]:
        spaces = sorted(self.workspaces.values(), key=lambda w: w["_n"])
        return 200, {"data": [self._shown(w) for w in page(spaces, query)], "total_count": len(spaces)}

    def create_workspace(self, body: dict) -> tuple[int, dict]:
        self._check_workspace_body(body, None)
        return 201, {"data": self._shown(self._new_workspace(body))}

    def get_workspace(self, ref: str) -> tuple[int, dict]:
        return 200, {"data": self._shown(self._workspace(ref))}

    def update_workspace(self, ref: str, body: dict) -> tuple[int, dict]:
        ws = self._workspace(ref)
        self._check_workspace_body(body, ws)
        ws.update({k: body[k] for k in WORKSPACE_FIELDS if k in body})
        ws["updated_at"] = iso(self._now())
        return 200, {"data": self._shown(ws)}

    def delete_workspace(self, ref: str) -> tuple[int, dict]:
        ws = self._workspace(ref)
        if ws["id"] == DEFAULT_WORKSPACE:
            raise Refusal(403, "Deleting the default workspace is not enabled for this account")
        keys = [k for k in self.keys.values() if k["workspace_id"] == ws["id"]]
        if any(not k["disabled"] for k in keys):
            raise Refusal(400, "Workspaces with active API keys cannot be deleted; remove the keys first")
        for key in keys:
            self._forget_key(key["hash"])
        self._forget_workspace(ws["id"])
        return 200, {"deleted": True}

    def _forget_workspace(self, workspace_id: str) -> None:
        # its budgets and guardrails go with it (the guardrail side is in openrouter_guardrails)
        del self.workspaces[workspace_id]
        self.budgets.pop(workspace_id, None)

    # -- workspace budgets (Enterprise) ---------------------------------------------

    def _budgeted(self, ref: str) -> dict:
        if not self.enterprise:
            raise Refusal(*self.budget_refusal)
        return self._workspace(ref)

    def _budget_answer(self, ws: dict, data: Any) -> dict:
        return {"data": data, "include_byok_in_budgets": ws["include_byok_in_budgets"]}

    def list_budgets(self, ref: str) -> tuple[int, dict]:
        ws = self._budgeted(ref)
        held = self.budgets.get(ws["id"], {})
        return 200, self._budget_answer(ws, [held[i] for i in BUDGET_INTERVALS if i in held])

    def get_budget(self, ref: str, interval: str) -> tuple[int, dict]:
        ws = self._budgeted(ref)
        budget = self.budgets.get(ws["id"], {}).get(interval)
        if budget is None:
            raise Refusal(404, NOT_FOUND)
        return 200, self._budget_answer(ws, budget)

    def put_budget(self, ref: str, interval: str, body: dict) -> tuple[int, dict]:
        ws = self._budgeted(ref)
        limit = body["limit_usd"]
        if limit <= 0:
            raise Refusal(400, "limit_usd must be greater than 0")
        held = self.budgets.setdefault(ws["id"], {})
        rank = BUDGET_INTERVALS.index(interval)
        for other, budget in held.items():
            narrow, broad = sorted([(interval, limit), (other, budget["limit_usd"])], key=lambda b: BUDGET_INTERVALS.index(b[0]))
            if other != interval and narrow[1] >= broad[1]:
                raise Refusal(
                    400,
                    "Budget limits must be strictly decreasing as scope narrows: "
                    f"the {broad[0]} limit (${broad[1]:g}) must be greater than the {narrow[0]} limit (${narrow[1]:g}).",
                )
        now = iso(self._now())
        budget = held.get(interval) or {"id": str(uuid.uuid4()), "workspace_id": ws["id"], "created_at": now}
        budget.update({"limit_usd": limit, "reset_interval": None if rank == 3 else interval, "updated_at": now})
        held[interval] = budget
        if "include_byok_in_budgets" in body:  # workspace-wide; left as it is when not sent
            ws["include_byok_in_budgets"] = body["include_byok_in_budgets"]
        return 200, self._budget_answer(ws, budget)

    def delete_budget(self, ref: str, interval: str) -> tuple[int, dict]:
        ws = self._budgeted(ref)
        self.budgets.get(ws["id"], {}).pop(interval, None)  # idempotent, as the guide says
        return 200, {"deleted": True}

    def _over_budget(self, workspace_id: str, micros: int) -> str | None:
        """The broadest workspace budget this charge would pass, as OpenRouter names it."""
        if not self.enterprise:
            return None
        held = self.budgets.get(workspace_id, {})
        for interval in reversed(BUDGET_INTERVALS):
            budget = held.get(interval)
            if budget and self._spent(workspace=workspace_id, interval=budget["reset_interval"]) + micros > to_micros(budget["limit_usd"]):
                return f"Workspace {interval} budget of ${budget['limit_usd']:.2f} exceeded. Contact your org admin."
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


def _non_negative(body: dict, name: str) -> str | None:
    value = body.get(name)
    return f"{name} must not be negative" if value is not None and value < 0 else None
