"""Key providers by name: ``local`` (the default) and ``openrouter``."""

from __future__ import annotations

from functools import lru_cache

from workers.providers.base import KeyProvider


@lru_cache
def get_provider(name: str) -> KeyProvider:
    if name == "local":
        from workers.providers.local import LocalProvider

        return LocalProvider()
    if name == "openrouter":
        from purser.settings import get_settings
        from workers.providers.openrouter import OpenRouterProvider

        settings = get_settings()
        key = settings.openrouter_management_key.get_secret_value() if settings.openrouter_management_key else ""
        return OpenRouterProvider(key, settings.openrouter_api_url)
    raise ValueError(f"unknown key provider {name!r}: use local or openrouter")
