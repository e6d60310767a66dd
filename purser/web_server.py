"""gunicorn as `purser web` runs it: its command line, and the hook its config file gives each worker.

gunicorn reads this module as its config file (``--config python:purser.web_server``)
and takes from it only the names of its settings: here ``post_worker_init``.
docs/benchmarks.md, "Authorization", has the measurements behind the hook.
"""

from __future__ import annotations

import gc
import sys

APP = "purser.wiring:create_app()"
CONFIG = f"python:{__name__}"
#: How long a thread may keep the GIL while another asks for it; CPython's default is 5 ms.
SWITCH_INTERVAL = 0.001


def command(workers: int, threads: int, bind: str) -> list[str]:
    """The argv that serves ``APP`` under gunicorn, gthread workers; the benchmarks start it the same way."""
    return [
        sys.executable, "-m", "gunicorn", "--config", CONFIG, "--worker-class", "gthread",
        "--workers", str(workers), "--threads", str(threads), "--bind", bind, APP,
    ]  # fmt: skip


def post_worker_init(worker=None) -> None:
    """Once a worker has built the app, keep its ~200,000 objects out of the cyclic collector.

    Everything the app loads (Bolt, SQLAlchemy, slack_sdk, the store's models) lives as
    long as the worker, yet a full (generation 2) collection walks all of it: 60–130 ms
    during which no thread of the worker runs, every few tens of seconds under load —
    the slowest /v1/authz answers. Frozen, those objects are never walked again (they are
    still freed by reference counting); the collector walks only what is made later,
    which is little. Garbage is collected first, so none of it is kept for good.
    """
    gc.collect()
    gc.freeze()
    switch_threads_promptly()


def switch_threads_promptly() -> None:
    """Let a thread that has work wait at most ``SWITCH_INTERVAL`` for the GIL, rather than 5 ms.

    A web process's threads share one GIL. The key cache refreshes busy keys on a thread of
    its own, a dozen a second per worker at 1,000 checks/s, each 2.5–3 ms of CPU in the ORM:
    a check arriving meanwhile waits for the GIL until the refresh blocks on the database or
    the interval runs out: with 5 ms, for up to the whole burst. A shorter interval costs a
    few more switches when threads contend, nothing when they do not. `purser run`
    (waitress, threads too) sets it as well. docs/benchmarks.md, "Authorization", says what
    was and was not shown by measurement.
    """
    sys.setswitchinterval(SWITCH_INTERVAL)
