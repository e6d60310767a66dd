"""OpenRouter's key-management API (`/api/v1/keys`, a bearer management key).

Keys are real OpenRouter keys with a USD ``limit``; pausing disables them; usage is the
keys' cumulative ``usage``, which the sync turns into usage events. The HTTP client and
the reading of answers are in ``openrouter_http``; workspaces, budgets, guardrails and
models in ``openrouter_org``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from workers.providers.base import CreatedKey, KeyState, KeyUsage, ProviderError, TransientProviderError
from workers.providers.openrouter_http import DEFAULT_URL, OpenRouterHTTP, amount_micros, data_of, micros, unreadable, usd
from workers.providers.openrouter_org import OrganisationCalls

__all__ = ["OpenRouterProvider", "micros", "usd"]

log = logging.getLogger(__name__)

RESETS = ("daily", "weekly", "monthly")


class OpenRouterProvider(OrganisationCalls):
    name = "openrouter"

    def __init__(self, management_key: str, base_url: str = DEFAULT_URL, *, timeout: float = 10.0) -> None:
        # Strips the key and refuses one that cannot be a header (PermanentProviderError naming the setting).
        self._http = OpenRouterHTTP(management_key, base_url, timeout)

    def __repr__(self) -> str:
        return f"<OpenRouterProvider {self._http.base_url}>"  # never the management key

    def close(self) -> None:
        self._http.close()

    # -- the interface -------------------------------------------------------------

    def create(
        self,
        *,
        name: str,
        limit_micros: int | None,
        limit_reset: str | None,
        expires_at: datetime | None,
        workspace_id: str | None = None,
        retrying: bool = False,
    ) -> CreatedKey:
        if retrying:
            # A crash between OpenRouter's answer and our commit leaves a key we never stored
            # (and whose secret is lost). It carries this action's name: delete it and start
            # afresh. A first attempt cannot have left one, so it spares the listing.
            for orphan in self.find_by_name(name, workspace_id):
                log.warning("deleting orphaned OpenRouter key %s left by an interrupted attempt", orphan)
                self.delete(orphan)
        body: dict[str, Any] = {
            "name": name,
            "limit": usd(limit_micros),
            "limit_reset": limit_reset if limit_reset in RESETS else None,
            "include_byok_in_limit": False,
        }
        if expires_at is not None:
            body["expires_at"] = expires_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        if workspace_id is not None:
            body["workspace_id"] = workspace_id
        answer = self._http.call("POST", "keys", json=body)
        ref = answer.get("data", {}).get("hash") if isinstance(answer, dict) and isinstance(answer.get("data"), dict) else None
        secret = answer.get("key") if isinstance(answer, dict) else None
        if isinstance(secret, str) and secret and isinstance(ref, str) and ref:
            return CreatedKey(secret=secret, ref=ref)
        # A key may now exist whose secret we do not have. The retry (``retrying``) sweeps it
        # by name; where the hash came back, it goes now.
        if isinstance(ref, str) and ref:
            try:
                self.delete(ref)
            except ProviderError:
                log.warning("could not delete OpenRouter key %s made without a readable answer; the retry will", ref)
        raise TransientProviderError(
            "OpenRouter made the key but its answer lacked the key's secret or hash, so the key cannot be handed over; "
            "Purser deletes what was made and tries again."
        )

    def get_key(self, ref: str | None) -> KeyState | None:
        if ref is None:
            return None
        answer = self._http.call("GET", f"keys/{ref}", missing_ok=True)
        return None if answer is None else _state(answer, "a key")

    def disable(self, ref: str | None) -> None:
        self._http.call("PATCH", f"keys/{ref}", json={"disabled": True})

    def enable(self, ref: str | None) -> None:
        self._http.call("PATCH", f"keys/{ref}", json={"disabled": False})

    def set_limit(self, ref: str | None, limit_micros: int | None, limit_reset: str | None) -> KeyState | None:
        answer = self._http.call("PATCH", f"keys/{ref}", json={"limit": usd(limit_micros), "limit_reset": limit_reset if limit_reset in RESETS else None})
        return _state(answer, "a changed key")

    def delete(self, ref: str | None) -> None:
        if ref is None:
            return  # nothing was ever made at OpenRouter under this key
        self._http.call("DELETE", f"keys/{ref}", missing_ok=True)

    def usage(self, workspace_id: str | None = None) -> list[KeyUsage]:
        return [KeyUsage(ref=k["hash"], usage_micros=amount_micros(k.get("usage") or 0, "a key's usage")) for k in self.list_keys(workspace_id)]

    def key_states(self, workspace_id: str | None = None) -> list[KeyState]:
        """Every key of the workspace (the default one for None) as its usage, limit and state."""
        return [_state({"data": k}, "a listed key") for k in self.list_keys(workspace_id)]

    # -- helpers -------------------------------------------------------------------

    def list_keys(self, workspace_id: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"include_disabled": "true"}
        if workspace_id is not None:
            params["workspace_id"] = workspace_id
        # OpenRouter sets the page size itself (100 today), so only an empty page ends the listing.
        return list(self._http.pages("keys", params, what="keys", ident="hash"))

    def find_by_name(self, name: str, workspace_id: str | None = None) -> list[str]:
        return [k["hash"] for k in self.list_keys(workspace_id) if k.get("name") == name]


def _state(answer: Any, what: str) -> KeyState:
    key = data_of(answer, what)
    ref, limit, disabled = key.get("hash"), key.get("limit"), key.get("disabled")
    if not isinstance(ref, str) or not isinstance(disabled, bool):
        raise unreadable(what)
    return KeyState(
        ref=ref,
        usage_micros=amount_micros(key.get("usage") or 0, what),
        limit_micros=None if limit is None else amount_micros(limit, what),
        disabled=disabled,
    )
