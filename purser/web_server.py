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
