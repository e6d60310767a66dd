"""Where the real PostgreSQL and Redis are, and what to do when one is missing.

Locally a missing service skips the tests that need it; with CI=true it fails them.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def answering(url: str) -> bool:
    parsed = urlparse(url.replace("+psycopg", ""))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), timeout=2):
            return True
    except OSError:
        return False


def require(url: str, what: str) -> None:
    if answering(url):
        return
    message = f"{what} is not answering at {urlparse(url).hostname}:{urlparse(url).port}"
    if IN_CI:
        pytest.fail(f"{message}; CI needs it (.ci/run starts it)", pytrace=False)
    pytest.skip(message)
