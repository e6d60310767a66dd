"""One line per event, never a secret."""

from __future__ import annotations

import logging


def setup_logging(level: str = "INFO") -> None:
    level = level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx would log every OpenRouter URL at INFO; request lines carry no secrets, but keep it quiet
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # APScheduler announces every run of every job at INFO (the clock ticks every few seconds);
    # the clock logs what its jobs did itself.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
