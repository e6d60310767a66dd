"""The one small interface every key provider implements, and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class ProviderError(Exception):
    """Base of provider failures. ``str()`` is safe to show a person: it never holds a secret."""


class TransientProviderError(ProviderError):
    """Worth retrying: rate limits, 5xx, timeouts. ``retry_after`` in seconds when the provider said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentProviderError(ProviderError):
    """Retrying will not help (bad credentials, refused request); the requester is told why.

    ``status``: the HTTP status the provider answered with, where it answered (a caller
    tells "your plan has no such feature" from "no such thing" by it).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CreatedKey:
    secret: str
    ref: str | None  # how the provider names the key (OpenRouter: its hash); None for local keys


@dataclass(frozen=True)
class KeyUsage:
    ref: str
    usage_micros: int  # cumulative, as the provider counts it


@dataclass(frozen=True)
class KeyState:
    """A key as the provider holds it now."""

    ref: str
    usage_micros: int  # cumulative, as the provider counts it
    limit_micros: int | None  # None: no spending limit at the provider
    disabled: bool


class KeyProvider(Protocol):
    name: str

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
        """Create a key. ``name`` is unique per action so a retry (``retrying``) can find an orphan an earlier attempt left."""

    def get_key(self, ref: str | None) -> KeyState | None:
        """The key as the provider holds it; None when the provider has no such key."""

    def disable(self, ref: str | None) -> None: ...

    def enable(self, ref: str | None) -> None: ...

    def set_limit(self, ref: str | None, limit_micros: int | None, limit_reset: str | None) -> KeyState | None:
        """Change the key's limit; the key as the provider answered with it (None where the provider keeps no state)."""

    def delete(self, ref: str | None) -> None: ...

    def usage(self, workspace_id: str | None = None) -> list[KeyUsage]:
        """Cumulative usage of every key the provider knows (of one of its workspaces, where it has them)."""
