"""One line per event, never a secret."""

from __future__ import annotations

import logging

#: HTTP libraries, quiet at any LOG_LEVEL: at DEBUG they log request lines, headers and the
#: reasons a header was refused, and httpcore's "Illegal header value b'Bearer …'" carries
#: the whole management key. Purser logs what its calls did itself.
HTTP_LOGGERS = ("httpx", "httpcore", "urllib3", "hpack", "h2", "h11")


def setup_logging(level: str = "INFO") -> None:
    level = level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # APScheduler announces every run of every job at INFO (the clock ticks every few seconds);
    # the clock logs what its jobs did itself.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
