"""The clock as it runs: `purser clock` processes electing one leader over real Redis or PostgreSQL.

Each clock is a real process; what it did is read back from its log ("<name> took the
clock lock", "<name> ran job <job>") and, with Redis, from the dramatiq queue itself.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest
import redis
from dramatiq import Message

from tests.services import REDIS_URL, require
from workers.leader import LOCK_NAME, RedisLeaderLock

pytestmark = pytest.mark.real_clock  # the clock processes log the machine's time, which the test compares with its own

#: Redis databases for the clock's lock and queue, away from the other Redis tests; each test claims a free one
CLOCK_REDIS_DBS = range(14, 7, -1)
CLAIM = "purser-test:claimed"
TTL = 2.0
RENEW_EVERY = TTL / 3  # the clock renews (or tries to take) the lock this often
JOBS = {"sweep_outbox": 0.5, "sync_usage": 1, "evaluate_thresholds": 1, "roll_over_periods": 1, "expire_requests": 1, "wipe_reveals": 1}

LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ workers\.clock (clock-\d+) (.*)$")


class ClockProcess:
    """One `purser clock`, its log kept in a file."""

    def __init__(self, env: dict[str, str], workdir: Path, label: str) -> None:
        self.log_path = workdir / f"{label}.log"
        with self.log_path.open("w") as log:
            # The working directory is empty so no stray .env changes the settings.
            self.proc = subprocess.Popen([sys.executable, "-m", "purser", "clock"], env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=log)
        self.name = f"clock-{self.proc.pid}"

    def events(self) -> list[tuple[float, str]]:
        found = []
        for line in self.log_path.read_text().splitlines():
            m = LINE.match(line)
            if m and m[2] == self.name:
                # The log stamps local time, as time.time() does.
                found.append((datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp(), m[3]))
        return found

    def took_at(self) -> float | None:
        return next((t for t, what in self.events() if what == "took the clock lock"), None)

    def runs(self, job: str | None = None) -> list[float]:
        return [t for t, what in self.events() if what.startswith("ran job ") and (job is None or what == f"ran job {job}")]

    def jobs_run(self) -> Counter:
        return Counter(what.removeprefix("ran job ") for _, what in self.events() if what.startswith("ran job "))

    def stop(self) -> None:
        self.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> float:
        """SIGKILL: no release, no goodbye; returns when it was sent."""
        self.proc.send_signal(signal.SIGKILL)
        killed_at = time.time()
        self.proc.wait(timeout=10)
        return killed_at


@pytest.fixture
def clock_redis():
    """A Redis database of this test's own: test runs side by side on one machine must not share a lock."""
    require(REDIS_URL, "Redis")
    for db in CLOCK_REDIS_DBS:
        url = urlunparse(urlparse(REDIS_URL)._replace(path=f"/{db}"))
        client = redis.Redis.from_url(url)
        if client.set(CLAIM, os.getpid(), nx=True, ex=120):
            break
        client.close()
    else:
        pytest.fail(f"every Redis database in {list(CLOCK_REDIS_DBS)} is claimed by another test run")
    stale = [key for key in client.scan_iter() if key != CLAIM.encode()]
    if stale:
        client.delete(*stale)
    yield url, client
    client.flushdb()  # the claim goes with it
    client.close()


@pytest.fixture
def start_clocks(tmp_path):
    """Start `purser clock` processes with the given settings; every one is stopped at the end."""
    started: list[ClockProcess] = []

    def start(count: int, jobs: dict[str, float] = JOBS, **settings: str) -> list[ClockProcess]:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL") and not k.startswith("PURSER_CLOCK_")}
        env.update(settings)
        env["PURSER_CLOCK_LOCK_TTL"] = str(TTL)
        env.update({f"PURSER_CLOCK_{job.upper()}": str(seconds) for job, seconds in jobs.items()})
        clocks = [ClockProcess(env, tmp_path, f"clock{len(started) + i}") for i in range(count)]
        started.extend(clocks)
        return clocks

    yield start
    for clock in started:
        clock.terminate()  # all at once: each takes a moment to shut down
    for clock in started:
        clock.stop()


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path) -> str:
    path = tmp_path / "purser.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


def wait_for(check, clocks: list[ClockProcess], what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        for clock in clocks:
            if clock.proc.poll() is not None and clock.proc.returncode != -signal.SIGKILL:
                raise AssertionError(f"{clock.name} exited ({clock.proc.returncode}):\n{clock.log_path.read_text()[-3000:]}")
        time.sleep(0.05)
    logs = "\n".join(f"--- {c.name}\n{c.log_path.read_text()[-2000:]}" for c in clocks)
    raise AssertionError(f"no {what} within {timeout}s\n{logs}")


def leader_of(clocks: list[ClockProcess]) -> ClockProcess:
    # Generous: on a busy machine a clock can take many seconds just to import.
    return wait_for(lambda: next((c for c in clocks if c.took_at() is not None), None), clocks, "leader", timeout=40)


@pytest.mark.redis
def test_two_clocks_started_together_enqueue_each_job_once_per_interval(clock_redis, sqlite_url, start_clocks):
    url, client = clock_redis
    clocks = start_clocks(2, REDIS_URL=url, DATABASE_URL=sqlite_url)
    leader = leader_of(clocks)
    [standby] = [c for c in clocks if c is not leader]
    wait_for(lambda: sum(len(c.runs("sweep_outbox")) for c in clocks) >= 6, clocks, "six sweeps")
    standby.kill()  # first, or it would take over the lock the leader releases on its way out
    leader.stop()

    assert standby.took_at() is None
    assert standby.runs() == [], f"{standby.name} enqueued while {leader.name} led"
    for job, every in JOBS.items():
        both = sorted(t for c in clocks for t in c.runs(job))
        assert len(both) >= 2, f"{job} ran {len(both)} time(s)"
        one_schedule = (both[-1] - both[0]) / every + 1
        # Two enqueuers would make twice as many; a busy machine only moves a run, never adds one.
        assert len(both) < 1.5 * one_schedule, f"{job} ran {len(both)} times in {one_schedule:.1f} intervals: {both}"

    queued = Counter(Message.decode(raw).actor_name for raw in client.hvals("dramatiq:maintenance.msgs"))
    assert queued == leader.jobs_run()
    assert client.llen("dramatiq:maintenance") == sum(queued.values())


@pytest.mark.redis
def test_killed_redis_leader_is_replaced_within_the_lock_lifetime(clock_redis, sqlite_url, start_clocks):
    url, client = clock_redis
    clocks = start_clocks(2, REDIS_URL=url, DATABASE_URL=sqlite_url)
    leader = leader_of(clocks)
    [standby] = [c for c in clocks if c is not leader]
    wait_for(lambda: leader.runs("sweep_outbox"), clocks, "the leader's sweep")

    killed_at = leader.kill()
    assert client.get(LOCK_NAME) is not None, "a killed leader cannot have released its lock"
    took_at = wait_for(standby.took_at, clocks, "takeover", timeout=TTL + 5)
    # The lock lapses at most TTL after the last renewal; the standby tries every RENEW_EVERY.
    assert took_at - killed_at <= TTL + RENEW_EVERY + 0.5, f"took over {took_at - killed_at:.2f}s after the kill"

    wait_for(lambda: len(standby.runs("sweep_outbox")) >= 2, clocks, "the new leader's sweeps")
    assert min(standby.runs()) >= took_at, "the standby enqueued before it held the lock"
    assert max(leader.runs()) <= killed_at


@pytest.mark.redis
def test_leader_paused_past_the_lock_lifetime_enqueues_nothing_when_it_wakes(clock_redis, sqlite_url, start_clocks):
    url, _ = clock_redis
    clocks = start_clocks(2, jobs=dict.fromkeys(JOBS, 1.0), REDIS_URL=url, DATABASE_URL=sqlite_url)
    leader = leader_of(clocks)
    [standby] = [c for c in clocks if c is not leader]
    seen = len(wait_for(lambda: leader.runs("sweep_outbox"), clocks, "the leader's sweep"))
    # Pause it half-way between two rounds of jobs, so none is caught half-sent.
    last = wait_for(lambda: leader.runs("sweep_outbox")[seen:], clocks, "another sweep", timeout=5)[0]
    time.sleep(max(0.0, last + 0.5 - time.time()))
    leader.proc.send_signal(signal.SIGSTOP)
    paused_at = time.time()
    try:
        took_at = wait_for(standby.took_at, clocks, "takeover", timeout=TTL + 5)
        # Every job fell due while it slept: it wakes with all of them to run at once.
        wait_for(lambda: [t for t in standby.runs("sweep_outbox") if t > took_at], clocks, "the new leader's sweep")
    finally:
        leader.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: any(what == "lost the clock lock" for _, what in leader.events()), clocks, "the old leader standing down")

    assert [t for t in leader.runs() if t > paused_at] == [], "the old leader enqueued on a lock that had lapsed"
    assert min(standby.runs()) >= took_at > paused_at


@pytest.mark.postgres
def test_killed_postgres_leader_is_replaced_at_the_next_tick(pg_url, start_clocks):
    clocks = start_clocks(2, DATABASE_URL=pg_url)  # no Redis: the advisory lock decides
    leader = leader_of(clocks)
    [standby] = [c for c in clocks if c is not leader]
    wait_for(lambda: leader.runs("sweep_outbox"), clocks, "the leader's sweep")
    assert standby.took_at() is None and standby.runs() == []

    killed_at = leader.kill()
    took_at = wait_for(standby.took_at, clocks, "takeover", timeout=TTL + 5)
    # PostgreSQL drops the session's advisory lock with its connection: no TTL to wait out.
    assert took_at - killed_at <= RENEW_EVERY + 0.5, f"took over {took_at - killed_at:.2f}s after the kill"

    wait_for(lambda: len(standby.runs("sweep_outbox")) >= 2, clocks, "the new leader's sweeps")
    assert min(standby.runs()) >= took_at


# The lock itself, in process, against the same Redis.


@pytest.fixture
def lock_url(clock_redis) -> str:
    return clock_redis[0]


@pytest.mark.redis
def test_only_one_of_two_holders_holds_the_redis_lock(lock_url):
    a, b = RedisLeaderLock(lock_url, ttl_seconds=5), RedisLeaderLock(lock_url, ttl_seconds=5)
    assert a.tick() is True
    assert b.tick() is False
    assert a.tick() is True  # renewing keeps it
    assert b.tick() is False
    assert (a.held, b.held) == (True, False)


@pytest.mark.redis
def test_holder_that_stops_renewing_loses_the_redis_lock_after_ttl(lock_url):
    ttl = 0.5
    a, b = RedisLeaderLock(lock_url, ttl_seconds=ttl), RedisLeaderLock(lock_url, ttl_seconds=ttl)
    held_from = time.monotonic()  # Redis starts the ttl after this, so it cannot lapse sooner than ttl from here
    assert a.tick()
    assert not b.tick()
    deadline = held_from + ttl + 1
    while not b.tick():
        assert time.monotonic() < deadline, "the lock never lapsed"
        time.sleep(0.02)
    assert time.monotonic() - held_from >= ttl * 0.9, "the lock lapsed before its ttl"
    assert a.held is False  # it knows it has lapsed before it next ticks
    assert a.tick() is False and a.held is False  # the old holder finds it gone and does not take it back


@pytest.mark.redis
def test_released_redis_lock_goes_to_the_other_holder_at_once(lock_url):
    a, b, c = (RedisLeaderLock(lock_url, ttl_seconds=30) for _ in range(3))
    assert a.tick()
    a.release()
    assert a.held is False
    assert b.tick() is True
    a.release()  # a no longer holds it: releasing must not free b's lock
    assert c.tick() is False
    assert b.tick() is True


@pytest.mark.redis
def test_redis_lock_it_cannot_reach_does_not_lead(lock_url):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens once the socket is closed
    lost = RedisLeaderLock(f"redis://127.0.0.1:{closed_port}/0", ttl_seconds=5)
    assert lost.tick() is False and lost.held is False
    # ...while the same lock on a Redis it reaches is free for another to take.
    assert RedisLeaderLock(lock_url, ttl_seconds=5).tick() is True
