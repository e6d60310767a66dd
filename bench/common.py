"""What the benchmarks under bench/ share: their set-up, the CPU they read from /proc, and their report's arithmetic.

Each benchmark makes a fresh PostgreSQL database (migrated, dropped at the end), builds its
state through the store's operations, and some start the production web stack (gunicorn
as `purser web` runs it) against the fake Slack Web API served in the benchmark process.
They measure side by side, in rounds whose order alternates. docs/benchmarks.md says what
each measures.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import platform
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from purser.web_server import command  # noqa: E402
from sandbox.serve import serve_in_thread  # noqa: E402
from sandbox.slack_api import SlackAPI  # noqa: E402
from store import keys, members, workspaces  # noqa: E402
from store.db import Database, normalise_url  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Action, ApiKey  # noqa: E402
from store.outbox import complete  # noqa: E402
from store.permissions import Actor  # noqa: E402
from store.secrets import mint_local_secret  # noqa: E402
from store.types import ActionStatus, Role  # noqa: E402

DEFAULT_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
OPERATOR = Actor.operator("bench")
TOKEN = "xoxb-bench"  # the bot token, which the fake Slack accepts

T = TypeVar("T")


# --- the command line ----------------------------------------------------------------------------


def arguments(doc: str, *, redis_url: str | None = None, web: bool = False, databases: str = "its own database") -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc``, with --database-url, --redis-url (given its default) and, for
    a benchmark of the web server, its --workers and --threads."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_DB, help=f"a PostgreSQL server; the benchmark makes and drops {databases} there")
    if redis_url is not None:
        parser.add_argument("--redis-url", default=redis_url, help="a Redis db number of its own: it is flushed")
    if web:
        parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
        parser.add_argument("--threads", type=int, default=8, help="threads per worker")
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if make_url(normalise_url(args.database_url)).get_backend_name() != "postgresql":
        parser.error("the benchmark measures PostgreSQL; give a postgresql:// URL")
    return args


# --- a fresh database, Redis, the fake Slack ------------------------------------------------------


@contextmanager
def fresh_database(server_url: str, prefix: str = "purser_bench", template: str | None = None) -> Iterator[tuple[str, str]]:
    """A new database, migrated (or copied from the one the URL ``template`` names), dropped afterwards: (its URL, its name)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    server = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{make_url(template).database}"' if template else "")))
    try:
        url = make_url(normalise_url(server_url)).set(database=name).render_as_string(hide_password=False)
        if template is None:
            upgrade(url)
        yield url, name
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@contextmanager
def flushed_redis(url: str) -> Iterator[redis.Redis]:
    """A client of the Redis db at ``url``, flushed before and after."""
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@contextmanager
def fake_slack() -> Iterator[tuple[SlackAPI, str]]:
    """The fake Slack Web API served in this process: (it, its base URL; the Web API is under /api/)."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # its access log: a line per call otherwise
    api = SlackAPI(token=TOKEN)
    served = serve_in_thread(api)
    try:
        yield api, served.url
    finally:
        served.stop()


# --- state, built through the store's operations -----------------------------------------------


def production_workspace(db: Database, slug: str, admins: Iterable[str], developers: Iterable[str] = (), team_id: str | None = None) -> int:
    """A production workspace with these Slack users as its admins and developers; its id."""
    team = {} if team_id is None else {"team_id": team_id}
    ws = db.run(workspaces.create_workspace, OPERATOR, slug=slug, environment="production", **team).id
    db.run(lambda s: [members.add_member(s, OPERATOR, ws, role=Role.ADMIN, slack_user_id=u) for u in admins])
    developers = list(developers)
    if developers:
        db.run(lambda s: [members.add_member(s, OPERATOR, ws, role=Role.DEVELOPER, slack_user_id=u) for u in developers])
    return ws


def provision_approved(s: Session, ws_id: int) -> list[tuple[ApiKey, str]]:
    """What the worker does for each approved key request of a workspace, in one transaction rather than one each: (key, secret)."""
    pending = s.scalars(
        select(Action.id).where(Action.workspace_id == ws_id, Action.kind == "provision_key", Action.status == ActionStatus.PENDING).order_by(Action.id)
    ).all()
    made = []
    for action_id in pending:
        secret = mint_local_secret()
        made.append((keys.provision_key(s, action_id, secret=secret, provider="local", provider_ref=None).key, secret))
        complete(s, action_id)
    return made


# --- the production web server ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def web_env(database_url: str, redis_url: str, signing_secret: str, **more: str) -> dict[str, str]:
    """The environment `purser web` gets: this one's, without its Slack, Purser and logging settings, and the benchmark's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PURSER_", "LOG_"))}
    env.update(
        DATABASE_URL=database_url, REDIS_URL=redis_url, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=signing_secret,
        PURSER_SECRET_KEY=Fernet.generate_key().decode(), **more,
    )  # fmt: skip
    return env


@contextmanager
def gunicorn(port: int, workers: int, threads: int, env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """gunicorn with gthread workers, started as `purser web` starts it but bound to loopback; its output goes to ``log_path``."""
    argv = command(workers, threads, f"127.0.0.1:{port}")  # as `purser web`: the app logs one line per request
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        # A session of its own, so that the master and its workers can be ended together.
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(proc, port, log_path)
        yield proc
    except BaseException:
        print(f"gunicorn's log ends:\n{log_path.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        proc.terminate()  # gunicorn's graceful stop; after an overload its backlog could take a while
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the database is dropped next: no worker may outlive this
        except ProcessLookupError:
            pass
        proc.wait()


def wait_healthy(proc: subprocess.Popen, port: int, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer /healthz in {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


# --- HTTP/1.1 over raw loopback sockets, for a load generator's selector loop --------------------


def connect(port: int, sel: selectors.BaseSelector, data: object) -> socket.socket:
    """A connection to 127.0.0.1:``port`` (no Nagle delay), registered with ``sel`` for reading, with ``data``."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sel.register(sock, selectors.EVENT_READ, data)
    return sock


_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.I)


def parse_response(buf: bytes) -> tuple[int, bytes, bool, int] | None:
    """(status, body, server closes, bytes used) once ``buf`` holds a whole response, else None."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head, start = buf[:head_end], head_end + 4
    status = int(head[9:12])
    closes = b"connection: close" in head.lower()
    m = _LENGTH.search(head)
    if m:
        end = start + int(m.group(1))
        return (status, buf[start:end], closes, end) if len(buf) >= end else None
    body, pos = b"", start  # chunked
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size = int(buf[pos:line_end].split(b";")[0], 16)
        if len(buf) < line_end + 2 + size + 2:
            return None
        if size == 0:
            return status, body, closes, line_end + 4
        body += buf[line_end + 2 : line_end + 2 + size]
        pos = line_end + 2 + size + 2


# --- CPU, from /proc (so the server side is measured only on this machine) ------------------------

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> tuple[str, list[str]] | None:
    """A process's command name and the fields of /proc/PID/stat after it (the name may hold spaces); None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    end = raw.rindex(")")
    return raw[raw.index("(") + 1 : end], raw[end + 2 :].split()


def cpu_of(pids: Iterable[T]) -> dict[T, float]:
    """CPU seconds (user + system) used so far by each of ``pids`` still running."""
    out = {}
    for pid in pids:
        stat = _stat(pid)
        if stat:
            out[pid] = (int(stat[1][11]) + int(stat[1][12])) / TICK
    return out


def used_since(before: dict[T, float], after: dict[T, float]) -> dict[T, float]:
    """CPU seconds each process used between two readings of ``cpu_of``."""
    return {pid: t - before.get(pid, 0.0) for pid, t in after.items()}


def server_pids(master: int) -> list[str]:
    """A server's master process and its children (gunicorn's workers)."""
    pids = [str(master)]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        stat = _stat(pid)
        if stat and stat[1][1] == str(master):
            pids.append(pid)
    return pids


def per_worker(used: dict[str, float], master: int) -> list[float]:
    """From ``used_since`` over ``server_pids``: the CPU seconds each worker used, most first."""
    return sorted((t for pid, t in used.items() if pid != str(master)), reverse=True)


def postgres_pids(database: str) -> list[str]:
    """The backends serving ``database``, found by their process title, which names it."""
    needle = f" {database} ".encode()
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read()
        except OSError:
            continue
        if title.startswith(b"postgres:") and needle in title:
            pids.append(pid)
    return pids


def backend_cpu(db: Database, but_application: str | None = None) -> dict[int, float] | None:
    """CPU seconds so far of each PostgreSQL backend on ``db``'s database (but those of ``but_application``),
    as pg_stat_activity lists them; None when they are not processes of this machine."""
    query, params = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()", {}
    if but_application is not None:
        query, params = query + " AND application_name <> :application", {"application": but_application}
    with db.engine.connect() as conn:
        pids = conn.scalars(text(query), params).all()
    used = {}
    for pid in pids:
        stat = _stat(pid)
        if stat is None:
            continue  # ended since
        if "postgres" not in stat[0]:
            return None  # a process of this machine, not the server's backend
        used[pid] = (int(stat[1][11]) + int(stat[1][12])) / TICK
    return used or None


# --- the machine ----------------------------------------------------------------------------------


def load_text(load: Sequence[float], places: int = 2, sep: str = " ") -> str:
    """Load averages (1, 5 and 15 minutes) as printed."""
    return sep.join(f"{x:.{places}f}" for x in load)


def machine_facts(db: Database, redis_client: redis.Redis, load: Sequence[float], places: int = 2) -> dict:
    """What the figures were taken on: cores, CPU model, load averages, and the versions of what ran."""
    import gunicorn as gunicorn_pkg

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    with db.engine.connect() as conn:
        pg = conn.scalar(text("SHOW server_version"))
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "load": load_text(load, places),
        "pg": pg,
        "redis": redis_client.info("server")["redis_version"],
        "python": platform.python_version(),
        "gunicorn": gunicorn_pkg.__version__,
    }


# --- measuring side by side, and the report -------------------------------------------------------


def alternating(rounds: int, sides: Sequence[T]) -> Iterator[tuple[int, list[T]]]:
    """(round, the sides in the order they run): reversed every other round, so none always meets the quieter moment."""
    for r in range(rounds):
        yield r, list(sides) if r % 2 == 0 else list(sides)[::-1]


def percentile(values: Iterable[float], q: float) -> float:
    """The value at rank ``q`` (0 to 1) of ``values`` in order, the nearest from below; nan when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def met(ok: bool) -> str:
    return "met" if ok else "MISSED"


# --- the one line each benchmark ends with --------------------------------------------------------


def at_least(measured: float, target: float) -> float:
    """A "≥ target" figure as a margin: 1 is exactly on target, above 1 met."""
    return measured / target


def at_most(measured: float, target: float) -> float:
    """A "≤ target" figure as a margin: 1 is exactly on target, above 1 met (a figure of 0 has any margin)."""
    return target / measured if measured > 0 else float("inf")


def verdict(name: str, margins: Sequence[tuple[str, float]], correct: bool = True) -> bool:
    """Each target's margin, then the line `make bench` collects: ``NAME: ratio R (target 1) met|MISSED``.

    R is the tightest margin, so the line is met only when every target is; a run whose
    answers were wrong misses whatever its figures.
    """
    print(f"\n{name}'s targets, as margins (figure over target, turned so that ≥ 1 meets it):")
    for label, margin in margins:
        print(f"  {margin:6.2f}  {label}")
    if not correct:
        print("  some answers were wrong (above): a benchmark that counted wrong does not count")
    tightest = min((m for _, m in margins), default=float("nan"))
    ok = correct and tightest >= 1
    print(f"{name}: ratio {tightest:.2f} (target 1) {met(ok)}", flush=True)
    return ok
