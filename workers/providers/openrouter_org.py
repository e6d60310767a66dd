"""OpenRouter's organisation calls: workspaces, their budgets, guardrails and the model list.

Plain methods the OpenRouter provider takes on (``OpenRouterProvider`` inherits them). Each
returns OpenRouter's parsed objects (dicts) or raises a ProviderError; money goes in as
integer micro-dollars and leaves as OpenRouter's USD numbers.
"""

from __future__ import annotations

from typing import Any

from workers.providers.base import PermanentProviderError
from workers.providers.openrouter_http import OpenRouterHTTP, data_of, field, unreadable, usd

#: WorkspaceBudgetInterval in OpenRouter's API document; "lifetime" never resets
BUDGET_INTERVALS = ("daily", "weekly", "monthly", "lifetime")
#: the guardrail fields that are lists: OpenRouter takes one with at least one item, or null
GUARDRAIL_LISTS = ("allowed_models", "allowed_providers", "ignored_models", "ignored_providers")
PAGE = 100  # the most /workspaces and /guardrails give a page


class OrganisationCalls:
    _http: OpenRouterHTTP

    # -- workspaces --------------------------------------------------------------------

    def list_workspaces(self) -> list[dict[str, Any]]:
        """Every workspace of the organisation, 100 a page (the listing's guards: OpenRouterHTTP.pages)."""
        listed = list(self._workspaces())
        if not all(isinstance(w.get("slug"), str) and isinstance(w.get("name"), str) for w in listed):
            raise unreadable("a list of workspaces")
        return listed

    def find_workspace(self, slug: str) -> dict[str, Any] | None:
        """The workspace with this slug, or None."""
        for workspace in self._workspaces():
            if workspace.get("slug") == slug:
                return workspace
        return None

    def _workspaces(self):
        return self._http.pages("workspaces", {}, what="workspaces", ident="id", limit=PAGE)

    def get_workspace(self, id: str) -> dict[str, Any] | None:
        answer = self._http.call("GET", f"workspaces/{id}", missing_ok=True)
        return None if answer is None else _object(answer, "a workspace")

    def create_workspace(self, name: str, slug: str) -> dict[str, Any]:
        return _object(self._http.call("POST", "workspaces", json={"name": name, "slug": slug}), "a new workspace")

    # -- workspace budgets -------------------------------------------------------------

    def put_workspace_budget(self, workspace_id: str, interval: str, limit_micros: int) -> dict[str, Any]:
        _interval(interval)
        if isinstance(limit_micros, bool) or not isinstance(limit_micros, int) or limit_micros <= 0:
            # OpenRouter takes only a limit above zero; "no budget" is delete_workspace_budget.
            raise PermanentProviderError(f"An OpenRouter workspace budget must be above $0 (asked: {limit_micros!r} micro-dollars); remove the budget instead to lift it.")
        answer = self._http.call("PUT", f"workspaces/{workspace_id}/budgets/{interval}", json={"limit_usd": usd(limit_micros)})
        return _object(answer, "a workspace budget")

    def workspace_budgets(self, workspace_id: str) -> list[dict[str, Any]]:
        """The workspace's budgets, one per interval at most (``reset_interval`` null: lifetime).

        An organisation without workspace budgets (not on the Enterprise plan) answers 4xx:
        a PermanentProviderError carrying that status, for the caller to read as "none".
        """
        listed = field(self._http.call("GET", f"workspaces/{workspace_id}/budgets"), "data", "a workspace's budgets")
        if not isinstance(listed, list) or not all(isinstance(b, dict) and b.get("reset_interval") in (*BUDGET_INTERVALS[:3], None) for b in listed):
            raise unreadable("a workspace's budgets")
        return listed

    def delete_workspace_budget(self, workspace_id: str, interval: str) -> None:
        _interval(interval)
        # OpenRouter answers "deleted" for a budget that did not exist; its 404 (no such workspace) is as good.
        self._http.call("DELETE", f"workspaces/{workspace_id}/budgets/{interval}", missing_ok=True)

    # -- guardrails ----------------------------------------------------------------------

    def create_guardrail(
        self,
        name: str,
        workspace_id: str | None,
        allowed_models: list[str] | None,
        allowed_providers: list[str] | None,
        enforce_zdr: bool | None,
    ) -> dict[str, Any]:
        """A guardrail; a None list or flag is left out (no restriction), an empty list is refused."""
        fields = {"workspace_id": workspace_id, "allowed_models": allowed_models, "allowed_providers": allowed_providers, "enforce_zdr": enforce_zdr}
        body = {"name": name} | {k: v for k, v in _checked(fields).items() if v is not None}
        return _object(self._http.call("POST", "guardrails", json=body), "a new guardrail")

    def update_guardrail(self, id: str, **fields: Any) -> dict[str, Any]:
        """Change the fields given, by OpenRouter's names (it replaces lists whole; a None list lifts that restriction).

        Money stays micro-dollars here too: ``limit_micros`` goes as OpenRouter's ``limit_usd``.
        """
        if "limit_micros" in fields:
            fields = {k: v for k, v in fields.items() if k != "limit_micros"} | {"limit_usd": usd(fields["limit_micros"])}
        return _object(self._http.call("PATCH", f"guardrails/{id}", json=_checked(fields)), "a changed guardrail")

    def assign_guardrail_keys(self, id: str, key_hashes: list[str]) -> dict[str, Any]:
        if not key_hashes:
            return {"assigned_count": 0}  # OpenRouter takes at least one hash
        return _answer(self._http.call("POST", f"guardrails/{id}/assignments/keys", json={"key_hashes": list(key_hashes)}), "assigned_count", "a guardrail assignment")

    def unassign_guardrail_keys(self, id: str, key_hashes: list[str]) -> dict[str, Any]:
        if not key_hashes:
            return {"unassigned_count": 0}
        answer = self._http.call("POST", f"guardrails/{id}/assignments/keys/remove", json={"key_hashes": list(key_hashes)})
        return _answer(answer, "unassigned_count", "a guardrail unassignment")

    def guardrail_key_hashes(self, id: str) -> list[str]:
        """The hashes of the keys this guardrail is assigned to, 100 a page."""
        assigned = list(self._http.pages(f"guardrails/{id}/assignments/keys", {}, what="guardrail key assignments", ident="id", limit=PAGE))
        if not all(isinstance(a.get("key_hash"), str) for a in assigned):
            raise unreadable("a list of guardrail key assignments")
        return [a["key_hash"] for a in assigned]

    def list_guardrails(self, workspace_id: str | None = None) -> list[dict[str, Any]]:
        params = {} if workspace_id is None else {"workspace_id": workspace_id}
        return list(self._http.pages("guardrails", params, what="guardrails", ident="id", limit=PAGE))

    # -- models --------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        """Every text model OpenRouter offers (asked without offset or limit, /models gives the whole list)."""
        listed = field(self._http.call("GET", "models"), "data", "the model list")
        if not isinstance(listed, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in listed):
            raise unreadable("the model list")
        return listed


def _interval(interval: str) -> None:
    if interval not in BUDGET_INTERVALS:
        raise PermanentProviderError(f"{interval!r} is not an OpenRouter budget interval: use one of {', '.join(BUDGET_INTERVALS)}.")


def _checked(fields: dict[str, Any]) -> dict[str, Any]:
    for name in GUARDRAIL_LISTS:
        value = fields.get(name)
        if value is not None and (not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value)):
            # An empty list cannot be sent, and null would lift the restriction: the opposite of "none allowed".
            raise PermanentProviderError(f"A guardrail's {name} must name at least one, or be left out for no restriction.")
        if value is not None:
            fields = fields | {name: list(value)}
    return fields


def _object(answer: Any, what: str) -> dict[str, Any]:
    found = data_of(answer, what)
    if not isinstance(found.get("id"), str):
        raise unreadable(what)
    return found


def _answer(answer: Any, count: str, what: str) -> dict[str, Any]:
    if not isinstance(field(answer, count, what), int):
        raise unreadable(what)
    return answer
