"""The production-shaped stack for the load and fault scenarios: one per module and size, started once."""

from __future__ import annotations

import shutil

import pytest

from tests.reliability.load_stack import LONG, SHORT, Stack
from tests.services import IN_CI


def _stack(tmp_path_factory, tuning, label: str):
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: the load scenarios stop and start a Redis of their own"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    stack = Stack(tmp_path_factory.mktemp(label), tuning)
    try:
        stack.start()
    except Exception:
        logs = stack.logs()
        stack.stop()
        raise AssertionError(f"the stack did not start:\n{logs}")
    return stack


@pytest.fixture(scope="module")
def short_stack(tmp_path_factory):
    stack = _stack(tmp_path_factory, SHORT, "load-short")
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def long_stack(tmp_path_factory):
    stack = _stack(tmp_path_factory, LONG, "load-long")
    yield stack
    stack.stop()
