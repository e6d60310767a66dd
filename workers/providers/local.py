"""The local provider: Purser mints the keys; gateways ask /v1/authz and report usage back."""

from __future__ import annotations

from datetime import datetime

from store.secrets import mint_local_secret
from workers.providers.base import CreatedKey, KeyState, KeyUsage


class LocalProvider:
    """Nothing lives outside Purser: disabling, limits and deletion are the store's state alone."""

    name = "local"
    #: enabling and disabling change nothing here: a local key's standing is the store's alone
    keeps_state = False

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
        # Nothing is made outside Purser, so an interrupted attempt leaves nothing to find.
        return CreatedKey(secret=mint_local_secret(), ref=None)

    def get_key(self, ref: str | None) -> KeyState | None:
        return None  # the store is the only record of a local key

    def disable(self, ref: str | None) -> None:
        return None

    def enable(self, ref: str | None) -> None:
        return None

    def set_limit(self, ref: str | None, limit_micros: int | None, limit_reset: str | None) -> KeyState | None:
        return None

    def delete(self, ref: str | None) -> None:
        return None

    def usage(self, workspace_id: str | None = None) -> list[KeyUsage]:
        return []  # usage arrives through `purser usage record` and the ingest endpoint
