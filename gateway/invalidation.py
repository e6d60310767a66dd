"""Cache invalidation through Redis pub/sub: commits publish the workspaces they changed; web processes listen."""

from __future__ import annotations

import json
import logging
import threading
import time

log = logging.getLogger(__name__)

CHANNEL = "purser:authz:changed"


def install_publisher(db, redis_url: str | None) -> None:
    """After every commit that changes keys, projects, members or workspace settings, say which workspaces."""
    if not redis_url:
        return
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)

    def publish(workspace_ids: set[int]) -> None:
        client.publish(CHANNEL, json.dumps(sorted(workspace_ids)))

    db.on_authz_changes(publish)


class Subscriber(threading.Thread):
    """Drops cache entries as changes are announced; while disconnected the cache keeps its short TTL."""

    def __init__(self, redis_url: str, cache) -> None:
        super().__init__(name="authz-invalidation", daemon=True)
        self.redis_url = redis_url
        self.cache = cache
        self._stop = threading.Event()

    def run(self) -> None:
        import redis

        while not self._stop.is_set():
            try:
                client = redis.Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=5)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                # Anything announced while we were away is unknown: start clean.
                self.cache.clear()
                self.cache.invalidation_live = True
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        self.cache.invalidate(json.loads(message["data"]))
            except Exception as exc:
                if self.cache.invalidation_live:
                    log.warning("authz invalidation lost (%s); caching for at most 1 s until Redis is back", type(exc).__name__)
                self.cache.invalidation_live = False
                time.sleep(1)

    def stop(self) -> None:
        self._stop.set()
