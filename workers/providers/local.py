"""The local provider: Purser mints the keys; gateways ask /v1/authz and report usage back."""

from __future__ import annotations

from datetime import datetime

from store.secrets import mint_local_secret
from workers.providers.base import CreatedKey, KeyUsage


class LocalProvider:
    """Nothing lives outside Purser: disabling, limits and deletion are the store's state alone."""

    name = "local"

    def create(self, *, name: str, limit_micros: int | None, limit_reset: str | None, expires_at: datetime | None) -> CreatedKey:
        return CreatedKey(secret=mint_local_secret(), ref=None)

    def disable(self, ref: str | None) -> None:
        return None

    def enable(self, ref: str | None) -> None:
        return None

    def set_limit(self, ref: str | None, limit_micros: int | None, limit_reset: str | None) -> None:
        return None

    def delete(self, ref: str | None) -> None:
        return None

    def usage(self) -> list[KeyUsage]:
        return []  # usage arrives through `purser usage record` and the ingest endpoint
