"""The models a provider offers, for `/ai-models`: a worker answers it, since OpenRouter's list needs the network.

A provider with a ``models()`` (OpenRouter: ``GET /models``) gives its own; one without (the
local provider) is listed from Purser's price table. A list read from a provider is kept a
few minutes per worker process: it changes a few times a day, and each `/ai-models` would
otherwise wait on a megabyte from OpenRouter.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from store.catalog import price_file_models
from store.errors import DomainError
from workers.providers.base import ProviderError
from workers.runtime import Runtime

KEPT_FOR = 300.0  # seconds


def model_catalog(rt: Runtime, *, clock: Callable[[], float] = time.monotonic) -> Callable[[str], list[dict[str, Any]]]:
    """``catalog(provider_name)`` → that provider's models (``bot.commands.registry.Answers`` takes it)."""
    kept: dict[str, tuple[float, list[dict[str, Any]]]] = {}
    lock = threading.Lock()

    def catalog(provider_name: str) -> list[dict[str, Any]]:
        listing = getattr(rt.provider(provider_name), "models", None)
        if listing is None:
            return price_file_models()
        now = clock()
        with lock:
            hit = kept.get(provider_name)
        if hit is not None and now - hit[0] < KEPT_FOR:
            return hit[1]
        try:
            found = list(listing())
        except ProviderError as exc:  # its words are safe to show: a provider error never holds a secret
            raise DomainError(f"Purser could not read {provider_name}'s list of models ({exc}). Try again in a minute.") from None
        with lock:
            kept[provider_name] = (now, found)
        return found

    return catalog
