"""Purser as production runs it, on this machine, with every part a test can break.

- `web`: gunicorn serving ``purser.wiring:create_app()`` (gthread, 2 processes);
- `worker` ×2: ``python -m dramatiq workers.actors --processes 1 --threads 4`` each, in
  its own process group so a SIGKILL takes the whole of it;
- a redis-server of our own on a free port (so it can be stopped and started again —
  the machine's shared Redis is never touched);
- a PostgreSQL database of our own on the shared server, reached by web and workers
  through a TcpProxy (cutting it plays a PostgreSQL restart; the server itself is never
  restarted); the test process reads the store directly;
- the fake Slack Web API and the fake OpenRouter, served in the test process;
- the sweeper: the clock process (`purser clock`) as in production, or — for the short
  runs — the test sending ``sweep_outbox(older_than)`` every few seconds itself.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from sandbox.serve import Served, serve_in_thread
from sandbox.signing import sign
from store.db import Database
from store.migrate import upgrade
from store.secrets import Cipher
from tests.fakes.tcp_proxy import TcpProxy
from tests.reliability.load_fakes import FlakyOpenRouter, RecordingSlackAPI
from tests.services import PG_URL, require
from tests.slack_requests import SlackSender

BOT_TOKEN = "xoxb-load-token"
SIGNING_SECRET = "load-signing-secret"
TEAM = "local"
WORKERS = ("wa", "wb")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
        except Exception:
            found = None
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"{what} not within {timeout:.0f} s")


@dataclass
class KeptAliveSender(SlackSender):
    """SlackSender over one pooled HTTP client: a new client per request costs more CPU than the request."""

    def __post_init__(self) -> None:
        self.client = httpx.Client(timeout=15, limits=httpx.Limits(max_connections=32, max_keepalive_connections=32))

    def post(self, body: bytes, content_type: str = "application/x-www-form-urlencoded", *, timestamp: str | None = None, signature: str | None = None) -> httpx.Response:
        ts = timestamp or str(int(time.time()))
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature or sign(self.secret, ts, body)}
        return self.client.post(self.url, content=body, headers=headers)


class Process:
    """A child in its own process group, its output appended to a log file."""

    def __init__(self, label: str, argv: list[str], env: dict[str, str], workdir: Path) -> None:
        self.label, self.argv, self.env, self.workdir = label, argv, env, workdir
        self.log_path = workdir / f"{label}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("a") as log:
            log.write(f"--- start {self.starts} at {time.strftime('%H:%M:%S')}\n")
            log.flush()
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)  # the group we started: this process and its children
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL to the whole group: no shutdown, no acks, no goodbye."""
        if self.proc is not None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def terminate(self) -> None:
        if self.proc is not None:
            self._signal_group(signal.SIGTERM)

    def stop(self, timeout: float = 10) -> None:
        if self.proc is None:
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_since_start(self) -> str:
        return self.log_path.read_text(errors="replace").rsplit(f"--- start {self.starts} ", 1)[-1]

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


class RedisServer:
    """A redis-server of our own, without persistence: stopping it loses whatever it held, as a crash would."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir)]
        self.process = Process("redis", argv, dict(os.environ), workdir)

    def start(self) -> None:
        self.process.start()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        wait_until(client.ping, 10, "redis-server answering")
        client.close()

    def stop(self) -> None:
        self.process.stop()


class OwnDatabase:
    """A database of our own on the shared PostgreSQL, migrated to head, dropped at the end."""

    def __init__(self) -> None:
        require(PG_URL, "PostgreSQL")
        self.name = f"purser_load_{uuid.uuid4().hex[:10]}"
        self._admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = make_url(PG_URL).set(database=self.name).render_as_string(hide_password=False)
        upgrade(self.url)

    def through(self, port: int) -> str:
        return make_url(self.url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)

    def drop(self) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


class Sweeper(threading.Thread):
    """Plays the clock's sweep job, faster: ``sweep_outbox(older_than)`` to the workers every ``every`` seconds."""

    def __init__(self, redis_url: str, every: float, older_than: float) -> None:
        super().__init__(name="sweeper", daemon=True)
        from dramatiq.brokers.redis import RedisBroker

        self.broker = RedisBroker(url=redis_url, socket_connect_timeout=1, socket_timeout=2)
        self.every, self.older_than = every, older_than
        self._halt = threading.Event()

    def run(self) -> None:
        from dramatiq import Message

        while not self._halt.wait(self.every):
            try:
                self.broker.enqueue(Message(queue_name="maintenance", actor_name="sweep_outbox", args=(self.older_than,), kwargs={}, options={}))
            except Exception:  # Redis away: the next tick tries again, as the clock's would
                pass

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.broker.close()


@dataclass(frozen=True)
class Tuning:
    """What differs between the short runs (`make test`) and the long ones (`make soak`)."""

    lease_seconds: float | None  # PURSER_ACTION_LEASE_SECONDS; None keeps the production 60 s
    sweep_every: float | None  # the test sweeps every this many seconds; None runs `purser clock` instead
    sweep_older_than: float = 30


SHORT = Tuning(lease_seconds=5, sweep_every=2.0, sweep_older_than=5)
LONG = Tuning(lease_seconds=None, sweep_every=None)


class Stack:
    def __init__(self, workdir: Path, tuning: Tuning) -> None:
        self.workdir, self.tuning = workdir, tuning
        self.database = OwnDatabase()
        self.db = Database(self.database.url)  # the test's own view of the store, never through the proxy
        pg = urlparse(PG_URL.replace("+psycopg", ""))
        self.pg_proxy = TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432)
        self.redis = RedisServer(workdir)
        self.redis.start()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per fake call drowns the output
        self.slack = RecordingSlackAPI(BOT_TOKEN)
        self.openrouter = FlakyOpenRouter()
        self._served: list[Served] = [serve_in_thread(self.slack), serve_in_thread(self.openrouter)]
        self.slack_url, self.openrouter_url = self._served[0].url, self._served[1].url
        self.cipher_key = Cipher.generate()
        self.web_port = free_port()
        self.web = Process("web", [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--workers", "2", "--threads", "8", "--timeout", "60", "--graceful-timeout", "5", "--bind", f"127.0.0.1:{self.web_port}", "purser.wiring:create_app()"], self.env(), workdir)
        self.workers = {
            label: Process(label, [sys.executable, "-m", "dramatiq", "purser.worker_process", "--processes", "1", "--threads", "4"], self.env(worker=label), workdir) for label in WORKERS
        }
        self.clock: Process | None = None
        self.sweeper: Sweeper | None = None
        # Commands are answered by the workers through response_url; one lost with a Redis that
        # restarted empty is asked again, as a person who heard nothing would.
        self.sender = KeptAliveSender(f"http://127.0.0.1:{self.web_port}/slack/events", SIGNING_SECRET, TEAM, slack=self.slack, slack_url=self.slack_url, answer_timeout=10)

    def env(self, worker: str | None = None) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("PURSER_", "SLACK_", "OPENROUTER_")) and k not in ("DATABASE_URL", "REDIS_URL")}
        keep.update(
            DATABASE_URL=self.database.through(self.pg_proxy.port),
            REDIS_URL=self.redis.url,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_TEAM_ID=TEAM,
            SLACK_API_URL=self.slack_url + "/api/",
            PURSER_SECRET_KEY=self.cipher_key,
            PURSER_INGEST_TOKEN="load-ingest-token",
            OPENROUTER_MANAGEMENT_KEY=self.openrouter.management_key,
            OPENROUTER_API_URL=f"{self.openrouter_url}/{worker or 'web'}/api/v1",
            PYTHONUNBUFFERED="1",
            LOG_LEVEL="INFO",
        )
        if self.tuning.lease_seconds is not None:
            keep["PURSER_ACTION_LEASE_SECONDS"] = str(self.tuning.lease_seconds)
        return keep

    # -- running ------------------------------------------------------------------

    def start(self) -> "Stack":
        self.web.start()
        for label in WORKERS:
            self.workers[label].start()
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{self.web_port}/healthz", timeout=1).status_code == 200, 60, "gunicorn answering /healthz")
        for label in WORKERS:
            self.wait_worker_ready(label)
        if self.tuning.sweep_every is None:
            clock_env = self.env()
            # Only the sweep matters here; the other jobs would add their own events to the counts.
            for job in ("SYNC_USAGE", "EVALUATE_THRESHOLDS", "ROLL_OVER_PERIODS", "EXPIRE_REQUESTS", "WIPE_REVEALS"):
                clock_env[f"PURSER_CLOCK_{job}"] = "86400"
            self.clock = Process("clock", [sys.executable, "-m", "purser", "clock"], clock_env, self.workdir)
            self.clock.start()
        else:
            self.sweeper = Sweeper(self.redis.url, self.tuning.sweep_every, self.tuning.sweep_older_than)
            self.sweeper.start()
        return self

    def wait_worker_ready(self, label: str, timeout: float = 60) -> None:
        worker = self.workers[label]

        def ready() -> bool:
            if not worker.alive:
                raise AssertionError(f"worker {label} exited:\n{worker.tail()}")
            return "ready for action" in worker.log_since_start()

        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(f"worker {label} not ready within {timeout} s:\n{worker.tail()}")
            time.sleep(0.1)

    def kill_worker(self, label: str) -> None:
        self.workers[label].kill()

    def restart_worker(self, label: str) -> None:
        self.workers[label].start()
        self.wait_worker_ready(label)

    def stop(self) -> None:
        if self.sweeper is not None:
            self.sweeper.stop()
        running = [p for p in (self.clock, self.web, *self.workers.values()) if p is not None]
        for proc in running:
            proc.terminate()  # all at once: each takes a few seconds to wind down
        for proc in running:
            proc.stop()
        self.redis.stop()
        self.pg_proxy.close()
        for served in self._served:
            served.stop()
        self.sender.client.close()
        self.db.dispose()
        self.database.drop()

    def prepare(self) -> "Stack":
        """Whole again for the next scenario, whatever the last one left broken."""
        self.pg_proxy.up()
        if not self.redis.process.alive:
            self.redis.start()
        for label, worker in self.workers.items():
            if not worker.alive:
                self.restart_worker(label)
        self.slack.reset()
        self.openrouter.reset()
        return self

    def explain(self, error_ids: list[str], chars: int = 3000) -> str:
        """The web process's log around each error id a person was shown."""
        log = self.web.log_path.read_text(errors="replace")
        found = [log[max(0, log.find(e)) : log.find(e) + chars] for e in error_ids[:2] if e in log]
        return "\n...\n".join(found) or "(no log line names them)"

    def logs(self) -> str:
        parts = [f"--- {p.label}\n{p.tail(3000)}" for p in (self.web, *self.workers.values(), self.clock) if p is not None]
        return "\n".join(parts)
