"""Key providers by name: ``local`` (the default) and ``openrouter``."""

from __future__ import annotations

from workers.providers.base import KeyProvider


def build_provider(name: str, *, openrouter_key: str = "", openrouter_url: str = "https://openrouter.ai/api/v1") -> KeyProvider:
    if name == "local":
        from workers.providers.local import LocalProvider

        return LocalProvider()
    if name == "openrouter":
        from workers.providers.openrouter import OpenRouterProvider

        return OpenRouterProvider(openrouter_key, openrouter_url)
    raise ValueError(f"unknown key provider {name!r}: use local or openrouter")


def local_only(name: str) -> KeyProvider:
    """The providers a runtime has with no OpenRouter management key given."""
    return build_provider(name)
