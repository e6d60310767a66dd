"""The dramatiq broker: Redis when there is a Redis URL, else an in-process stub with worker threads."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.brokers.stub import StubBroker

log = logging.getLogger(__name__)

#: retries back off from 1 s to 5 min; a provider's Retry-After overrides the step
RETRY_OPTIONS = {"max_retries": 10, "min_backoff": 1_000, "max_backoff": 300_000}


def make_broker(redis_url: str | None) -> dramatiq.Broker:
    if redis_url:
        from dramatiq.brokers.redis import RedisBroker

        # Bounded waits: a Slack command must still be answered when Redis is unreachable
        # (its work then waits in the outbox for the sweeper).
        return RedisBroker(url=redis_url, socket_connect_timeout=1, socket_timeout=5, health_check_interval=15)
    return StubBroker()


def start_embedded_worker(broker: dramatiq.Broker, threads: int = 4) -> dramatiq.Worker:
    """Workers as threads of this process: the one-machine, all-in-one setup."""
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    return worker
