"""The workers' tests share a fake OpenRouter (tests.fixtures_workers) and, here, a provider talking to it."""

from __future__ import annotations

import pytest

from workers.broker import RETRY_OPTIONS
from workers.providers.openrouter import OpenRouterProvider


@pytest.fixture
def fake(openrouter, monkeypatch):
    openrouter.reset()  # also forgets the calls of earlier tests
    # Retries back off from 1 s to 5 min in production; here from 20 ms, so ten of them fit in a test.
    monkeypatch.setitem(RETRY_OPTIONS, "min_backoff", 20)
    monkeypatch.setitem(RETRY_OPTIONS, "max_backoff", 200)
    return openrouter


@pytest.fixture
def provider(fake):
    p = OpenRouterProvider(fake.management_key, fake.url + "/api/v1")
    yield p
    p.close()
