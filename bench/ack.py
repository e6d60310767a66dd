"""Slash-command acks on the production web stack: `/ai-key new` against a signed `/ai-key help`.

gunicorn with gthread workers (the command line `purser web` runs, bound to loopback)
serves `purser.wiring:create_app()` with a fresh PostgreSQL database (migrated, dropped at the
end), a Redis db of its own (flushed) that the relay enqueues to, and the fake Slack Web
API served in this process. Every `/ai-key new` names a new key and comes from a
developer of a production workspace, so each one opens a pending request, appends to the
audit chain and enqueues `request_opened`. `/ai-key help` is signed the same way and goes
through the same signature check, Bolt and command routing, but touches no store: the
trivial signed endpoint.

(a) Closed loop: 50 clients, each sending its next request as soon as the last is
    answered; the figure is requests/s, ours over the trivial one's.
(b) Open loop: requests at fixed intervals (200/s for 30 s) whatever the answers; the
    latency of each runs from its scheduled send to its whole response, and one not
    answered within Slack's 3 s is given up and counted as late. `/ai-key new` also runs
    at half of what it sustained in (a), to show its latency with headroom left.

Each request comes on a connection of its own, as from a reverse proxy or a platform's
router in front of gunicorn (nginx's default); --keep-alive reuses them instead, and then
each connection stays with the worker that accepted it. The load comes from one selector
loop over raw sockets in this process, which costs a few per cent of a core (printed),
so the server, not the client, is what saturates.
docs/benchmarks.md says what is measured and keeps the last figures.

    .venv/bin/python bench/ack.py [--workers 2] [--threads 8] [--clients 50] [--rate 200] [--seconds 30]
"""

from __future__ import annotations

import itertools
import os
import selectors
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ ships with the source, not the package

from sqlalchemy import func, select  # noqa: E402

from bench.common import (  # noqa: E402
    ROOT, TOKEN, alternating, arguments, at_least, at_most, connect, cpu_of, fake_slack, flushed_redis, fresh_database, free_port, gunicorn, load_text,
    machine_facts, met, parse, parse_response, per_worker, percentile, postgres_pids, production_workspace, server_pids, used_since, verdict, web_env,
)
from sandbox.signing import sign  # noqa: E402
from sandbox.slack_api import SlackAPI, response_url  # noqa: E402
from store.db import Database  # noqa: E402
from store.models import Request  # noqa: E402
from store.types import RequestState  # noqa: E402

DEFAULT_REDIS = "redis://127.0.0.1:6379/14"  # a db of its own (tests and the other benches use 11, 12, 13, 15): it is flushed
TEAM = "T0BENCH"
SECRET = "bench-signing-secret"
COMMANDS_QUEUE = "dramatiq:commands.msgs"  # where dramatiq's RedisBroker keeps the commands handed to workers
TARGET_RATIO = 0.5
TARGET_P99 = 0.100
ACK_DEADLINE = 3.0  # Slack shows the user an error when a command's ack takes longer


# --- CPU used by the server side, from /proc ---------------------------------------------------


@dataclass
class CpuMeter:
    master: int
    database: str
    start: dict[str, dict[str, float]] = field(default_factory=dict)

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {"server": cpu_of(server_pids(self.master)), "postgres": cpu_of(postgres_pids(self.database))}

    def begin(self) -> None:
        self.start = self.snapshot()

    def end(self) -> dict[str, object]:
        now = self.snapshot()
        used = {side: used_since(self.start[side], now[side]) for side in now}
        return {"server": sum(used["server"].values()), "postgres": sum(used["postgres"].values()), "workers": per_worker(used["server"], self.master)}


# --- the signed requests -----------------------------------------------------------------------


class Commands:
    """Slash commands as Slack sends them: form-encoded, signed, each with a trigger id of its own."""

    def __init__(self, port: int, users: list[str], keep_alive: bool, slack_url: str) -> None:
        self.slack_url = slack_url  # answers that come later go to the fake Slack in this process
        connection = "keep-alive" if keep_alive else "close"
        self.head = f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: {connection}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        self.users = users
        self.seq = itertools.count(1)

    def request(self, user: str, text: str) -> bytes:
        n = next(self.seq)
        form = {
            "token": "unused", "team_id": TEAM, "team_domain": "bench", "channel_id": "C0GENERAL", "channel_name": "general",
            "user_id": user, "user_name": user.lower(), "command": "/ai-key", "text": text, "api_app_id": "A0PURSER",
            "response_url": response_url(self.slack_url, "C0GENERAL", user, n), "trigger_id": f"{n}.trigger",
        }  # fmt: skip
        body = urlencode(form).encode()
        ts = str(int(time.time()))
        head = f"{self.head}Content-Length: {len(body)}\r\nX-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {sign(SECRET, ts, body)}\r\n\r\n"
        return head.encode() + body

    def new(self) -> Iterator[bytes]:
        """`/ai-key new` with a key name never used before, from each developer in turn."""
        for n in itertools.count():
            yield self.request(self.users[n % len(self.users)], f"new bench-{next(self.seq)}")

    def help(self) -> Iterator[bytes]:
        for n in itertools.count():
            yield self.request(self.users[n % len(self.users)], "help")


@dataclass(frozen=True)
class Endpoint:
    name: str
    requests: Callable[[], Iterator[bytes]]
    marker: bytes | None  # what a right answer's body holds; None: an empty ack (handed to a worker)

    def ok(self, status: int, body: bytes) -> bool:
        return status == 200 and (not body.strip() if self.marker is None else self.marker in body)


# --- the load: HTTP/1.1 connections driven by one selector loop ----------------------


class Conn:
    """One client's connection: kept open between requests, or opened for each (as a proxy in front of gunicorn does)."""

    def __init__(self, port: int, sel: selectors.BaseSelector, keep_alive: bool) -> None:
        self.port, self.sel, self.keep_alive = port, sel, keep_alive
        self.sock: socket.socket | None = None
        self.request, self.t0, self.buf = b"", 0.0, b""
        self.retried = False
        if keep_alive:
            self.open()

    def open(self) -> None:
        self.sock = connect(self.port, self.sel, self)

    def close(self) -> None:
        if self.sock is not None:
            self.sel.unregister(self.sock)
            self.sock.close()
            self.sock = None

    def send(self, request: bytes, t0: float) -> None:
        self.request, self.t0, self.buf, self.retried = request, t0, b"", False
        if self.sock is None:
            self.open()
        self.sock.sendall(request)

    def receive(self) -> tuple[int, bytes] | None:
        try:
            data = self.sock.recv(65536)
        except ConnectionError:
            data = b""
        if not data:
            if self.buf or self.retried or not self.keep_alive:
                raise ConnectionError(f"the server closed a connection before answering: {self.buf[:200]!r}")
            # A kept-alive connection the server had closed meanwhile: send again on a new one.
            self.close()
            self.send(self.request, self.t0)
            self.retried = True
            return None
        self.buf += data
        parsed = parse_response(self.buf)
        if parsed is None:
            return None
        status, body, closes, _ = parsed
        if closes or not self.keep_alive:
            self.close()
        return status, body


@dataclass
class Run:
    endpoint: str
    seconds: float
    latencies: list[float] = field(default_factory=list)  # closed loop: the answers within the round
    answered: int = 0
    wrong: int = 0
    late: int = 0  # open loop: given up at Slack's deadline
    sent: int = 0
    client_cpu: float = 0.0
    cpu: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        """A percentile over every request; one given up at the deadline counts as infinitely slow."""
        return percentile(self.latencies + [float("inf")] * self.late, q)


def closed_loop(port: int, endpoint: Endpoint, clients: int, seconds: float, keep_alive: bool, meter: CpuMeter | None = None) -> Run:
    sel = selectors.DefaultSelector()
    requests = endpoint.requests()
    run = Run(endpoint.name, seconds)
    conns = [Conn(port, sel, keep_alive) for _ in range(clients)]
    if meter:
        meter.begin()
    cpu0, start = time.process_time(), time.perf_counter()
    end = start + seconds
    for c in conns:
        c.send(next(requests), time.perf_counter())
    run.sent = len(conns)
    busy = len(conns)
    while busy:
        events = sel.select(timeout=30)
        if not events:
            raise SystemExit(f"{busy} requests unanswered for 30 s")
        for key, _ in events:
            c = key.data
            answer = c.receive()
            if answer is None:
                continue
            now = time.perf_counter()
            run.answered += 1
            run.wrong += not endpoint.ok(*answer)
            if now <= end:
                run.latencies.append(now - c.t0)
                c.send(next(requests), now)
                run.sent += 1
            else:
                c.close()  # done: an idle kept-alive connection the server closes must not wake the loop
                busy -= 1
    run.client_cpu = time.process_time() - cpu0
    if meter:
        run.cpu = meter.end()
    for c in conns:
        c.close()
    return run


def open_loop(port: int, endpoint: Endpoint, rate: float, seconds: float, pool: int, keep_alive: bool, meter: CpuMeter | None = None) -> Run:
    """Sends at fixed intervals whatever the answers.

    With every connection busy a request waits, and its wait counts. One not answered
    within Slack's deadline is given up, as Slack gives up on it: a waiting one is never
    sent, a sent one's connection is dropped (the server still does the work).
    """
    # select(2), not epoll: epoll waits whole milliseconds, rounded up, and the open loop
    # would send late by up to a millisecond, lateness counted as the server's (bench/load.py).
    sel = selectors.SelectSelector()
    requests = endpoint.requests()
    run = Run(endpoint.name, seconds)
    idle = deque(Conn(port, sel, keep_alive) for _ in range(pool))
    flying: set[Conn] = set()
    n = int(rate * seconds)
    if meter:
        meter.begin()
    cpu0 = time.process_time()
    start = time.perf_counter() + 0.05
    due = [start + i / rate for i in range(n)]
    waiting: deque[float] = deque()
    i = 0
    while i < n or waiting or flying:
        now = time.perf_counter()
        while i < n and due[i] <= now:
            waiting.append(due[i])
            i += 1
        while waiting and waiting[0] + ACK_DEADLINE <= now:
            waiting.popleft()
            run.late += 1
        for c in [c for c in flying if c.t0 + ACK_DEADLINE <= now]:
            c.close()
            if keep_alive:
                c.open()
            flying.discard(c)
            idle.append(c)
            run.late += 1
        while waiting and idle:
            # The oldest idle connection goes first, so none sits idle past the server's keep-alive.
            c = idle.popleft()
            c.send(next(requests), waiting.popleft())
            flying.add(c)
        wake = 0.01 if waiting or flying else 1.0  # look at the deadlines often while anything is owed
        if i < n:
            wake = min(wake, due[i] - time.perf_counter())
        for key, _ in sel.select(timeout=max(0.0, wake)):
            c = key.data
            if c not in flying:  # the server closed an idle kept-alive connection
                c.close()
                c.open()
                continue
            answer = c.receive()
            if answer is None:
                continue
            flying.discard(c)
            idle.append(c)
            run.answered += 1
            run.wrong += not endpoint.ok(*answer)
            latency = time.perf_counter() - c.t0
            if latency > ACK_DEADLINE:  # came between two looks at the deadlines
                run.late += 1
            else:
                run.latencies.append(latency)
    run.sent = n
    run.client_cpu = time.process_time() - cpu0
    if meter:
        run.cpu = meter.end()
    for c in idle:
        c.close()
    return run


# --- state, built through the store's operations -----------------------------------------------


def developers_of_a_workspace(db: Database, developers: int) -> list[str]:
    users = [f"U{i:08d}" for i in range(1, developers + 1)]
    production_workspace(db, "ack", ["U0ADMIN00"], users, team_id=TEAM)
    return users


def drain(args, url: str, db: Database, api: SlackAPI, slack_url: str) -> bool:
    """The other half of a handed-off command: worker threads in this process carry out the queue for a while."""
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    from bot.commands.registry import Answers
    from bot.slack_client import Slack
    from workers import actors
    from workers.registry import use_broker
    from workers.runtime import Runtime, configure

    broker = use_broker(RedisBroker(url=args.redis_url))
    worker_db = Database(url)
    worker_db.on_new_actions(actors.enqueue)
    configure(Runtime(db=worker_db, slack=Slack(worker_db, TOKEN, slack_url + "/api/"), commands=Answers(worker_db)))
    before = pending_requests(db)
    worker = dramatiq.Worker(broker, worker_threads=args.threads, worker_timeout=100)
    began = time.perf_counter()
    worker.start()
    time.sleep(args.drain)
    worker.stop(timeout=30_000)
    took = time.perf_counter() - began
    answers = [body for bodies in list(api.responses.values()) for body in bodies]
    opened = pending_requests(db) - before
    good = sum("request #" in (b.get("text") or "") for b in answers)
    print(f"\nworkers: {args.threads} threads in one process for {took:.1f} s carried out {len(answers):,} commands ({len(answers) / took:.1f}/s), "
          f"{good:,} answered with a request number; {opened:,} pending requests opened")  # fmt: skip
    worker_db.dispose()
    broker.close()
    configure(None)
    return good == len(answers) == opened


def pending_requests(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Request).where(Request.state == RequestState.PENDING))


# --- the report ---------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"≥{ACK_DEADLINE * 1000:.0f}" if seconds == float("inf") else f"{seconds * 1000:.1f}"


def cpu_line(run: Run) -> str:
    done = max(1, run.answered)
    if run.late:  # the server went on with what Slack gave up on: per answer would mislead
        return f"{'-':>7}{'-':>7}{100 * run.client_cpu / run.seconds:>7.0f}%"
    return f"{ms(run.cpu['server'] / done):>7}{ms(run.cpu['postgres'] / done):>7}{100 * run.client_cpu / run.seconds:>7.0f}%"


CPU_HEAD = f"{'srv ms':>7}{'pg ms':>7}{'client':>8}"


def report(args, facts: dict, closed: dict[str, list[Run]], opened: list[tuple[float, Run]]) -> tuple[bool, list[tuple[str, float]]]:
    """The tables; whether every answer was right, and the targets' margins."""
    connections = "kept-alive connections" if args.keep_alive else "a new connection per request"
    print(f"\nSlack ack on gunicorn, gthread {args.workers} workers × {args.threads} threads, {connections}")
    print(f"machine: {facts['nproc']} cores, {facts['cpu']}; load average at start {facts['load']}")
    print(f"PostgreSQL {facts['pg']}, Redis {facts['redis']}, Python {facts['python']}, gunicorn {facts['gunicorn']}")
    print("srv / pg: CPU ms per answer in gunicorn and in the PostgreSQL backends of the bench database; client: the load generator's")
    print("share of one core; cores: CPU s per s that gunicorn and PostgreSQL got, of the machine's shared cores\n")

    print(f"(a) closed loop, {args.clients} connections, {args.round:g} s a round")
    print(f"{'endpoint':<14}{'rounds, req/s':>16}{'best':>7}{'p50 ms':>8}{'p99 ms':>8}{CPU_HEAD}{'cores':>7}  CPU s per worker")
    best = {}
    for name, runs in closed.items():
        top = max(runs, key=lambda r: r.rate)
        best[name] = top.rate
        rounds = " ".join(f"{r.rate:.0f}" for r in runs)
        split = " / ".join(f"{t:.1f}" for t in top.cpu["workers"])
        cores = (top.cpu["server"] + top.cpu["postgres"]) / top.seconds  # what the server side got of the machine
        print(f"{name:<14}{rounds:>16}{top.rate:7.0f}{ms(top.pct(0.5)):>8}{ms(top.pct(0.99)):>8}{cpu_line(top)}{cores:>7.2f}  {split}")
    ratio = best["/ai-key new"] / best["/ai-key help"]
    print(f"ratio new / help: {ratio:.2f} (target ≥ {TARGET_RATIO}) — {met(ratio >= TARGET_RATIO)}")

    print(f"\n(b) open loop, latency from the scheduled send to the whole answer; given up at Slack's {ACK_DEADLINE:g} s")
    print(f"{'endpoint':<14}{'req/s':>7}{'sched':>7}{'in 3 s':>8}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'max ms':>8}{CPU_HEAD}")
    for rate, run in opened:
        within = 100 * (len(run.latencies) - run.wrong) / max(1, run.sent)
        print(
            f"{run.endpoint:<14}{rate:>7g}{run.sent:>7}{within:>7.1f}%{ms(run.pct(0.5)):>8}{ms(run.pct(0.9)):>8}{ms(run.pct(0.99)):>8}"
            f"{ms(max(run.latencies, default=0)):>8}{cpu_line(run)}"
        )
    [p99] = [run.pct(0.99) for rate, run in opened if run.endpoint == "/ai-key new" and rate == args.rate]
    print(f"p99 of /ai-key new at {args.rate:g}/s: {ms(p99)} ms (target ≤ {ms(TARGET_P99)} ms) — {met(p99 <= TARGET_P99)}")

    wrong = sum(r.wrong for runs in closed.values() for r in runs) + sum(r.wrong for _, r in opened)
    if wrong:
        print(f"\n{wrong} answers were not the right one (status or text)")
    margins = [
        (f"/ai-key new ÷ /ai-key help, closed loop, best round over best: {ratio:.2f} (≥ {TARGET_RATIO})", at_least(ratio, TARGET_RATIO)),
        (f"p99 of /ai-key new at {args.rate:g}/s: {ms(p99)} ms (≤ {ms(TARGET_P99)} ms)", at_most(p99, TARGET_P99)),
    ]
    return wrong == 0, margins


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, redis_url=DEFAULT_REDIS, web=True)
    parser.add_argument("--clients", type=int, default=50, help="connections in the closed loop")
    parser.add_argument("--round", type=float, default=8, help="seconds of each closed-loop round (two rounds per endpoint)")
    parser.add_argument("--rate", type=float, default=200, help="requests/s in the open loop")
    parser.add_argument("--seconds", type=float, default=30, help="seconds of the open loop at --rate, per endpoint")
    parser.add_argument("--pool", type=int, default=64, help="connections the open loop may have in flight")
    parser.add_argument("--keep-alive", action="store_true", help="reuse connections (each then stays with one worker) instead of one per request")
    parser.add_argument("--developers", type=int, default=200, help="developers of the production workspace")
    parser.add_argument("--drain", type=float, default=15, help="seconds for worker threads in this process to carry out queued commands afterwards (0: none)")
    args = parse(parser, argv)
    load = os.getloadavg()
    started = time.perf_counter()
    port = free_port()
    with flushed_redis(args.redis_url) as broker, fake_slack() as (api, slack_url):
        with fresh_database(args.database_url, prefix="purser_ack") as (url, name):
            db = Database(url)
            try:
                facts = machine_facts(db, broker, load)
                users = developers_of_a_workspace(db, args.developers)
                env = web_env(url, args.redis_url, SECRET, SLACK_TEAM_ID=TEAM, SLACK_API_URL=slack_url + "/api/")
                log_path = ROOT / "var" / "bench" / "ack-gunicorn.log"  # kept for a look afterwards
                print(f"load average at start {facts['load']}; gunicorn on 127.0.0.1:{port}, {args.workers} × {args.threads}", flush=True)
                with gunicorn(port, args.workers, args.threads, env, log_path) as proc:
                    meter = CpuMeter(proc.pid, name)
                    commands = Commands(port, users, args.keep_alive, slack_url)
                    new = Endpoint("/ai-key new", commands.new, None)
                    trivial = Endpoint("/ai-key help", commands.help, b"ai-key new")
                    # Both workers booted, pools filled, code paths warm.
                    warm = [closed_loop(port, e, args.clients, 2, args.keep_alive) for e in (trivial, new)]
                    closed: dict[str, list[Run]] = {trivial.name: [], new.name: []}
                    for r, order in alternating(2, (trivial, new)):
                        for e in order:
                            run = closed_loop(port, e, args.clients, args.round, args.keep_alive, meter)
                            closed[e.name].append(run)
                            print(f"  closed {e.name:<13} round {r + 1}: {run.rate:6.0f} req/s, p99 {ms(run.pct(0.99))} ms", flush=True)
                    # Also at half of what the closed loop sustained: the latency with headroom left.
                    # The overload, if any, goes last so its backlog spoils no other figure.
                    half = max(1.0, round(max(r.rate for r in closed[new.name]) / 2))
                    opened: list[tuple[float, Run]] = []
                    for e, rate, seconds in ((trivial, args.rate, args.seconds), (new, half, min(15.0, args.seconds)), (new, args.rate, args.seconds)):
                        run = open_loop(port, e, rate, seconds, args.pool, args.keep_alive, meter)
                        opened.append((rate, run))
                        print(f"  open   {e.name:<13} {rate:g}/s: p50 {ms(run.pct(0.5))} ms, p99 {ms(run.pct(0.99))} ms, {run.late} given up", flush=True)
                    correct, margins = report(args, facts, closed, opened)
                # gunicorn has stopped: every acked `new` left its command in Redis for the workers.
                runs = warm + [r for _, r in opened] + [r for rs in closed.values() for r in rs]
                acked = sum(r.answered - r.wrong for r in runs if r.endpoint == new.name)
                queued = broker.hlen(COMMANDS_QUEUE)
                print(f"Redis: {queued:,} commands waiting for the workers, for {acked:,} acked /ai-key new")
                if queued < acked:
                    print("an acked /ai-key new left no command in Redis")
                    correct = False
                if args.drain:
                    correct = drain(args, url, db, api, slack_url) and correct
            finally:
                db.dispose()
    print(f"(whole run {time.perf_counter() - started:.0f} s; load average at the end {load_text(os.getloadavg())})")
    return 0 if verdict("ack", margins, correct) else 1


if __name__ == "__main__":
    sys.exit(main())
