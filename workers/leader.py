"""Exactly one active clock across replicas: a lock that is renewed, and taken over when its holder dies.

With Redis: ``SET key token NX PX ttl`` to take it, a compare-and-extend script to renew
it; a holder that dies stops renewing and the lock lapses within ``ttl``. Without Redis
on PostgreSQL: a session advisory lock, released by the server the moment the holder's
connection drops. With neither (one process on SQLite): this process is the leader.
"""

from __future__ import annotations

import logging
import time
import uuid

log = logging.getLogger(__name__)

LOCK_NAME = "purser:clock:leader"

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLeaderLock:
    def __init__(self, redis_url: str, ttl_seconds: float = 30.0, name: str = LOCK_NAME) -> None:
        import redis

        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5)
        self._name = name
        self._token = uuid.uuid4().hex
        self._ttl = ttl_seconds
        self._ttl_ms = int(ttl_seconds * 1000)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._valid_until = 0.0

    @property
    def held(self) -> bool:
        # Trusted only while Redis must still be keeping it: a process paused past the ttl
        # (a long GC, SIGSTOP, a hung call) wakes up no longer leading, even before it ticks.
        return time.monotonic() < self._valid_until

    def tick(self) -> bool:
        """Take or renew the lock; returns whether this process leads now."""
        sent = time.monotonic()  # Redis starts the ttl later than this, never earlier
        try:
            renewed = self._valid_until > 0 and self._renew(keys=[self._name], args=[self._token, self._ttl_ms])
            ok = bool(renewed or self._redis.set(self._name, self._token, nx=True, px=self._ttl_ms))
        except Exception as exc:  # Redis away: do not lead on a lock we cannot see
            log.warning("clock lock unavailable (%s); standing by", type(exc).__name__)
            ok = False
        self._valid_until = sent + self._ttl if ok else 0.0
        return self.held

    def release(self) -> None:
        self._valid_until = 0.0
        try:
            self._release(keys=[self._name], args=[self._token])
        except Exception:
            pass


class PostgresLeaderLock:
    KEY = 0x70757273  # "purs"

    def __init__(self, database_url: str) -> None:
        from store.db import normalise_url

        self._url = normalise_url(database_url).replace("postgresql+psycopg://", "postgresql://")
        self._conn = None
        self.held = False

    def tick(self) -> bool:
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._url, autocommit=True)
                self.held = False
            if self.held:
                self._conn.execute("SELECT 1")  # still connected means still held
            else:
                self.held = bool(self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.KEY,)).fetchone()[0])
        except Exception as exc:
            log.warning("clock lock unavailable (%s); standing by", type(exc).__name__)
            self.held = False
            self._conn = None
        return self.held

    def release(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self.held = False


class LocalLeaderLock:
    held = True

    def tick(self) -> bool:
        return True

    def release(self) -> None:
        return None


def make_lock(redis_url: str | None, database_url: str, ttl_seconds: float = 30.0):
    if redis_url:
        return RedisLeaderLock(redis_url, ttl_seconds)
    if database_url.startswith(("postgres", "postgresql")):
        return PostgresLeaderLock(database_url)
    return LocalLeaderLock()
