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
    """Retrying will not help (bad credentials, refused request); the requester is told why."""


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
    ref: str
    usage_micros: int
    limit_micros: int | None
    disabled: bool


class KeyProvider(Protocol):
    name: str

    def create(self, *, name: str, limit_micros: int | None, limit_reset: str | None, expires_at: datetime | None) -> CreatedKey:
        """Create a key. ``name`` is unique per action so a retry can find an orphan."""

    def disable(self, ref: str | None) -> None: ...

    def enable(self, ref: str | None) -> None: ...

    def set_limit(self, ref: str | None, limit_micros: int | None, limit_reset: str | None) -> None: ...

    def delete(self, ref: str | None) -> None: ...

    def usage(self) -> list[KeyUsage]:
        """Cumulative usage of every key the provider knows."""
