"""The production-shaped stack for the load and fault scenarios: one per module and size, started once.

Its processes log to a directory of their own, kept when a test in the module failed
(the failure names it) and removed otherwise.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.reliability.load_stack import LONG, SHORT, Stack
from tests.services import IN_CI


def _stack(request, tuning, label: str):
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: the load scenarios stop and start a Redis of their own"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    failed_before = request.session.testsfailed
    stack = Stack(Path(tempfile.mkdtemp(prefix=f"purser-load-{label}-")), tuning)
    try:
        stack.start()
    except Exception:
        logs = stack.logs()
        stack.stop()
        raise AssertionError(f"the stack did not start (logs in {stack.workdir}):\n{logs}")
    yield stack
    stack.stop()
    if request.session.testsfailed == failed_before:
        shutil.rmtree(stack.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def short_stack(request):
    yield from _stack(request, SHORT, "short")


@pytest.fixture(scope="module")
def long_stack(request):
    yield from _stack(request, LONG, "long")
