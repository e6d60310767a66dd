"""Guardrails, their key assignments, and spending through a key (POST /chat/completions), in the fake OpenRouter.

The rules, from OpenRouter's guardrails guide and API document:

- A key holds at most one guardrail: assigning a key that has another one MOVES it (the
  document: "assigning replaces any existing assignment"). A key may only be assigned to a
  guardrail of its own workspace (the fake's choice; the document does not say).
- A guardrail enforces nothing until it is assigned, except a workspace's default guardrail
  (id ``workspace.default_guardrail_id``), which applies to every key of the workspace once a
  PATCH has materialized it; before that, GET answers 404. Its name is not editable (400).
- ``limit_usd`` is enforced PER KEY: each key's own spend within ``reset_interval`` (none:
  for ever; spend from before the assignment counts too) may not pass it; keys under one guardrail do not share it. The key's own limit
  applies too ("the lower limit wins").
- ``allowed_models`` / ``allowed_providers`` refuse other models; ``ignored_models`` /
  ``ignored_providers`` refuse those listed. The provider is the part of the model id before
  "/" (a simplification: OpenRouter's provider ids name hosts, not model authors).
- ``enforce_zdr`` (deprecated) fills any ``enforce_zdr_<group>`` not sent; a model listed in
  ``fake.non_zdr`` is refused where its group's ZDR is enforced.
- Content filters are recorded, not run.

Refusals when spending (OpenRouter's codes, errors-and-debugging and the guides):
401 no/unknown key, expired key, disabled key; 400 unknown model; 403 a guardrail's model,
provider or ZDR rule, a guardrail's budget, a workspace budget; 402 the key's own limit.
A charge is checked and recorded under the fake's lock, so concurrent calls never pass a limit
(the real service checks before routing and may overshoot by the calls already in flight).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime
from typing import Any

from tests.fakes.openrouter_catalog import cost_micros, find, to_micros, tokens
from tests.fakes.openrouter_state import DEFAULT_WORKSPACE, FAKE_USER, NOT_FOUND, OpenRouterState, Refusal, iso, page

ZDR_GROUPS = {"anthropic": "anthropic", "openai": "openai", "google": "google", "x-ai": "xai"}  # model author -> group
GUARDRAIL_FIELDS = (
    "name", "description", "limit_usd", "reset_interval", "allowed_models", "allowed_providers", "ignored_models",
    "ignored_providers", "enforce_zdr", "enforce_zdr_anthropic", "enforce_zdr_google", "enforce_zdr_openai",
    "enforce_zdr_other", "enforce_zdr_xai", "content_filters", "content_filter_builtins", "enable_free_model_publication",
    "enable_free_model_training", "enable_paid_model_training", "include_byok_in_budgets",
)  # fmt: skip


class GuardrailState(OpenRouterState):
    def _init_state(self, enterprise: bool) -> None:
        super()._init_state(enterprise)
        self.guardrails: dict[str, dict] = {}  # id -> guardrail

    # -- guardrails -----------------------------------------------------------------

    def _new_guardrail(self, body: dict, workspace_id: str, guardrail_id: str | None = None) -> dict:
        g = {"id": guardrail_id or str(uuid.uuid4()), "workspace_id": workspace_id, **dict.fromkeys(GUARDRAIL_FIELDS)}
        g.update(include_byok_in_budgets=False, created_at=iso(self._now()), updated_at=None, _n=next(self._n))
        self.guardrails[g["id"]] = g
        return g

    def _set_guardrail(self, g: dict, body: dict) -> None:
        if body.get("limit_usd") is not None and body["limit_usd"] < 0:
            raise Refusal(400, "limit_usd must not be negative")
        g.update({k: body[k] for k in GUARDRAIL_FIELDS if k in body})
        if "enforce_zdr" in body:  # the deprecated switch fills the groups the request left out
            for group in ("anthropic", "openai", "google", "xai", "other"):
                if f"enforce_zdr_{group}" not in body:
                    g[f"enforce_zdr_{group}"] = body["enforce_zdr"]

    def _guardrail(self, guardrail_id: str) -> dict:
        g = self.guardrails.get(guardrail_id)
        if g is None:
            raise Refusal(404, NOT_FOUND)
        return g

    def _default_of(self, guardrail_id: str) -> dict | None:
        return next((w for w in self.workspaces.values() if w["default_guardrail_id"] == guardrail_id), None)

    def list_guardrails(self, query: dict) -> tuple[int, dict]:
        workspace = self._workspace(query.get("workspace_id") or DEFAULT_WORKSPACE)["id"]
        found = sorted((g for g in self.guardrails.values() if g["workspace_id"] == workspace), key=lambda g: g["_n"])
        return 200, {"data": [self._shown(g) for g in page(found, query)], "total_count": len(found)}

    def create_guardrail(self, body: dict) -> tuple[int, dict]:
        ws = self._workspace_for_new(body.get("workspace_id"))
        g = self._new_guardrail(body, ws["id"])
        try:
            self._set_guardrail(g, body)
        except Refusal:
            del self.guardrails[g["id"]]
            raise
        return 201, {"data": self._shown(g)}

    def get_guardrail(self, guardrail_id: str) -> tuple[int, dict]:
        return 200, {"data": self._shown(self._guardrail(guardrail_id))}

    def update_guardrail(self, guardrail_id: str, body: dict) -> tuple[int, dict]:
        ws = self._default_of(guardrail_id)
        if ws is not None:
            default_name = f"Workspace {ws['id']} Default"
            if body.get("name", default_name) != default_name:
                raise Refusal(400, "The name of a workspace default guardrail is derived from its workspace and cannot be changed")
            if guardrail_id not in self.guardrails:  # the first PATCH materializes it
                self._new_guardrail({}, ws["id"], guardrail_id)["name"] = default_name
        g = self._guardrail(guardrail_id)
        self._set_guardrail(g, body)
        g["updated_at"] = iso(self._now())
        return 200, {"data": self._shown(g)}

    def delete_guardrail(self, guardrail_id: str) -> tuple[int, dict]:
        self._guardrail(guardrail_id)
        self._forget_guardrail(guardrail_id)
        return 200, {"deleted": True}

    def _forget_guardrail(self, guardrail_id: str) -> None:
        del self.guardrails[guardrail_id]
        for key in self.keys.values():
            if key["_guardrail"] and key["_guardrail"]["guardrail_id"] == guardrail_id:
                key["_guardrail"] = None

    def _forget_workspace(self, workspace_id: str) -> None:
        for g in [g for g in self.guardrails.values() if g["workspace_id"] == workspace_id]:
            self._forget_guardrail(g["id"])
        super()._forget_workspace(workspace_id)

    # -- key assignments ------------------------------------------------------------

    def list_assignments(self, guardrail_id: str, query: dict) -> tuple[int, dict]:
        self._guardrail(guardrail_id)
        held = sorted((k for k in self.keys.values() if k["_guardrail"] and k["_guardrail"]["guardrail_id"] == guardrail_id), key=lambda k: k["_guardrail"]["_n"])
        shown = [{**self._shown(k["_guardrail"]), "key_name": k["name"], "key_label": k["label"]} for k in held]
        return 200, {"data": page(shown, query), "total_count": len(shown)}

    def assign_keys(self, guardrail_id: str, body: dict) -> tuple[int, dict]:
        g = self._guardrail(guardrail_id)
        hashes = list(dict.fromkeys(body["key_hashes"]))
        unknown = [h for h in hashes if h not in self.keys]
        if unknown:
            raise Refusal(400, f"Unknown API key hashes: {', '.join(unknown)}")
        elsewhere = [h for h in hashes if self.keys[h]["workspace_id"] != g["workspace_id"]]
        if elsewhere:
            raise Refusal(400, f"API keys not in the guardrail's workspace: {', '.join(elsewhere)}")
        for h in hashes:  # a key holds one guardrail: this replaces any other
            self.keys[h]["_guardrail"] = {
                "id": str(uuid.uuid4()), "key_hash": h, "guardrail_id": guardrail_id,
                "assigned_by": FAKE_USER, "created_at": iso(self._now()), "_n": next(self._n),
            }  # fmt: skip
        return 200, {"assigned_count": len(hashes)}

    def unassign_keys(self, guardrail_id: str, body: dict) -> tuple[int, dict]:
        self._guardrail(guardrail_id)
        count = 0
        for h in dict.fromkeys(body["key_hashes"]):
            key = self.keys.get(h)
            if key and key["_guardrail"] and key["_guardrail"]["guardrail_id"] == guardrail_id:
                key["_guardrail"], count = None, count + 1
        return 200, {"unassigned_count": count}

    def guardrails_of(self, key: dict) -> list[dict]:
        """The guardrails a key's calls answer to: its own, and its workspace's default once configured."""
        found = []
        if key["_guardrail"]:
            found.append(self.guardrails[key["_guardrail"]["guardrail_id"]])
        default = self.guardrails.get(self.workspaces[key["workspace_id"]]["default_guardrail_id"])
        if default is not None and default not in found:
            found.append(default)
        return found

    # -- spending -------------------------------------------------------------------

    def _key_by_secret(self, authorization: str | None) -> dict:
        if not authorization or not authorization.startswith("Bearer "):
            raise Refusal(401, "No auth credentials found")
        secret = authorization.removeprefix("Bearer ")
        key = self.keys.get(hashlib.sha256(secret.encode()).hexdigest())
        if key is None or not secrets.compare_digest(self.secrets.get(key["hash"], ""), secret):
            raise Refusal(401, "User not found.")
        if key["expires_at"] and datetime.fromisoformat(key["expires_at"].replace("Z", "+00:00")) <= self._now():
            raise Refusal(401, "API key has expired")
        if key["disabled"]:
            raise Refusal(401, "API key is disabled")
        return key

    def _price(self, model: str, body: dict) -> tuple[int, int, int]:
        """(cost in micro-dollars, prompt tokens, completion tokens) of one call."""
        entry = find(self.catalog, model)
        if entry is None and model not in self.cost_of:
            raise Refusal(400, f"{model} is not a valid model ID")
        prompt, completion = tokens(body)
        if model in self.cost_of:
            return to_micros(self.cost_of[model]), prompt, completion
        return cost_micros(entry, prompt, completion), prompt, completion

    def _check_rules(self, g: dict, model: str) -> None:
        entry = find(self.catalog, model)
        names = {model, *(entry and [entry["id"], entry.get("canonical_slug")] or [])}
        provider = model.split("/", 1)[0]
        why = None
        if g["allowed_models"] is not None and not names & set(g["allowed_models"]):
            why = f"model {model} is not in its allowed models"
        elif g["allowed_providers"] is not None and provider not in g["allowed_providers"]:
            why = f"provider {provider} is not in its allowed providers"
        elif names & set(g["ignored_models"] or ()) or provider in (g["ignored_providers"] or ()):
            why = f"model {model} is ignored"
        elif g.get(f"enforce_zdr_{ZDR_GROUPS.get(provider, 'other')}") and names & self.non_zdr:
            why = f"model {model} has no zero-data-retention endpoint"
        if why:
            raise Refusal(403, f"Request blocked by guardrail {g['name']}: {why}")

    def chat(self, key: dict, body: dict) -> tuple[int, dict]:
        """Spend through ``key`` (its secret checked by _key_by_secret): refused, or charged and answered."""
        model = body.get("model")
        if not model:
            raise Refusal(400, "model is required (the fake has no account default model)")
        micros, prompt, completion = self._price(model, body)
        guardrails = self.guardrails_of(key)
        for g in guardrails:
            self._check_rules(g, model)
        if key["limit"] is not None:
            used = self._spent(key=key["hash"], interval=key["limit_reset"]) + (0 if key["limit_reset"] else key["_seeded"])
            if used + micros > to_micros(key["limit"]):
                raise Refusal(402, "Key limit exceeded")
        for g in guardrails:  # each guardrail's budget holds for this key alone
            if g["limit_usd"] is not None and self._spent(key=key["hash"], interval=g["reset_interval"]) + micros > to_micros(g["limit_usd"]):
                raise Refusal(403, f"Request blocked by guardrail {g['name']}: its budget of ${g['limit_usd']:g} is exhausted")
        over = self._over_budget(key["workspace_id"], micros)
        if over:
            raise Refusal(403, over)
        self._charge(key, micros)
        return 200, _completion(model, prompt, completion, micros, self._now())


def _completion(model: str, prompt: int, completion: int, micros: int, now: datetime) -> dict[str, Any]:
    return {
        "id": f"gen-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(now.timestamp()),
        "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok " * completion}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion, "cost": micros / 1_000_000, "is_byok": False},
    }
