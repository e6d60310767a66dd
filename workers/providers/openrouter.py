"""OpenRouter's key-management API (`/api/v1/keys`, a bearer management key).

Keys are real OpenRouter keys with a USD ``limit``; pausing disables them; usage is the
keys' cumulative ``usage``, which the sync turns into usage events.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import httpx

from store.money import MICROS_PER_DOLLAR
from store.types import utcnow
from workers.providers.base import CreatedKey, KeyUsage, PermanentProviderError, TransientProviderError

log = logging.getLogger(__name__)

PAGE = 100  # OpenRouter lists at most 100 keys a page
#: what an OpenRouter secret looks like, so one echoed in an error message never reaches a person
SECRET = re.compile(r"sk-or-[A-Za-z0-9_-]+")


def usd(micros: int | None) -> float | None:
    # OpenRouter speaks USD numbers; micro-dollars convert exactly through Decimal.
    return None if micros is None else float(Decimal(micros) / MICROS_PER_DOLLAR)


def micros(value: Any) -> int:
    return int((Decimal(str(value or 0)) * MICROS_PER_DOLLAR).to_integral_value())


class OpenRouterProvider:
    name = "openrouter"

    def __init__(self, management_key: str, base_url: str = "https://openrouter.ai/api/v1", *, timeout: float = 10.0) -> None:
        if not management_key:
            raise PermanentProviderError("OPENROUTER_MANAGEMENT_KEY is not set: the operator has to configure it before OpenRouter keys can be made.")
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {management_key}", "Content-Type": "application/json"},
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"<OpenRouterProvider {self._client.base_url}>"  # never the management key

    def close(self) -> None:
        self._client.close()

    # -- the interface -------------------------------------------------------------

    def create(self, *, name: str, limit_micros: int | None, limit_reset: str | None, expires_at: datetime | None) -> CreatedKey:
        # A crash between OpenRouter's answer and our commit leaves a key we never stored
        # (and whose secret is lost). It carries this action's name: delete it and start afresh.
        for orphan in self.find_by_name(name):
            log.warning("deleting orphaned OpenRouter key %s left by an interrupted attempt", orphan)
            self.delete(orphan)
        body: dict[str, Any] = {
            "name": name,
            "limit": usd(limit_micros),
            "limit_reset": limit_reset if limit_reset in ("daily", "weekly", "monthly") else None,
            "include_byok_in_limit": False,
        }
        if expires_at is not None:
            body["expires_at"] = expires_at.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
        data = self._call("POST", "keys", json=body)
        return CreatedKey(secret=data["key"], ref=data["data"]["hash"])

    def disable(self, ref: str | None) -> None:
        self._call("PATCH", f"keys/{ref}", json={"disabled": True})

    def enable(self, ref: str | None) -> None:
        self._call("PATCH", f"keys/{ref}", json={"disabled": False})

    def set_limit(self, ref: str | None, limit_micros: int | None, limit_reset: str | None) -> None:
        self._call("PATCH", f"keys/{ref}", json={"limit": usd(limit_micros), "limit_reset": limit_reset if limit_reset in ("daily", "weekly", "monthly") else None})

    def delete(self, ref: str | None) -> None:
        self._call("DELETE", f"keys/{ref}", missing_ok=True)

    def usage(self) -> list[KeyUsage]:
        return [KeyUsage(ref=k["hash"], usage_micros=micros(k.get("usage"))) for k in self.list_keys()]

    # -- helpers -------------------------------------------------------------------

    def list_keys(self) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self._call("GET", "keys", params={"offset": offset, "include_disabled": "true"}).get("data") or []
            keys.extend(page)
            if len(page) < PAGE:
                return keys
            offset += len(page)

    def find_by_name(self, name: str) -> list[str]:
        return [k["hash"] for k in self.list_keys() if k.get("name") == name]

    def _call(self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise TransientProviderError("OpenRouter did not answer in time.") from None
        except httpx.TransportError as exc:
            raise TransientProviderError(f"Could not reach OpenRouter ({type(exc).__name__}).") from None
        status = response.status_code
        if status < 300:
            return response.json() if response.content else {}
        if status == 404 and missing_ok:
            return {}
        message = _error_message(response, self._client.headers["Authorization"].removeprefix("Bearer "))
        if status == 429 or status >= 500:
            raise TransientProviderError(f"OpenRouter answered {status}: {message}", retry_after=_retry_after(response))
        if status in (401, 403):
            raise PermanentProviderError(
                f"OpenRouter refused Purser's management key ({status}: {message}). The operator should check OPENROUTER_MANAGEMENT_KEY."
            )
        raise PermanentProviderError(f"OpenRouter refused the request ({status}: {message}).")


def _error_message(response: httpx.Response, management_key: str) -> str:
    # The message goes into the action's error, the audit log and the requester's DM.
    try:
        message = str(response.json()["error"]["message"])
    except Exception:
        message = response.reason_phrase or "no details"
    return SECRET.sub("sk-or-…", message.replace(management_key, "[management key]"))[:300]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime

            return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
        except (TypeError, ValueError):
            return None
