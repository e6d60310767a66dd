"""Gateway authorization on the production web stack: /v1/authz against a trivial request, its latency at a fixed rate, and how soon a pause is obeyed.

gunicorn with gthread workers (the command line `purser web` runs, bound to loopback)
serves `purser.wiring:create_app()` with a fresh PostgreSQL database (migrated, dropped at the
end) and a Redis db of its own, so cache invalidation over pub/sub is live as in
production. The checks: 200 live keys in four workspaces (one with an IP allowlist), sent
as nginx's auth_request sends them, about half naming their project, and one in twenty
refused (a spent budget, a revoked or unknown key, a wrong project, an address outside the
allowlist). The trivial request is the same request, headers and all, to a path no route
serves: the router's 404 is the least this stack does for a request.

(a) Closed loop: 50 keep-alive connections (as many on each worker) rotating through the
    checks, in rounds alternating with the 404 (and /healthz once, for reference); the
    figure is the best round's checks/s over the best round's 404s/s, and gunicorn's CPU
    per answer.
(b) Open loop: checks at fixed intervals (1,000/s for 30 s) whatever the answers, latency
    from the scheduled send; then the 404 at the same rate, for what the stack costs by
    itself. Targets: p99 ≤ 3 ms and p99.9 ≤ 10 ms.
(c) A project is paused in this process (by hand, or by usage reaching its budget) while a
    client polls /v1/authz with that project's key every 2 ms over one connection per
    worker; the figure is the time from the commit to the first refusal, and to a refusal
    from every worker: idle, and again with the closed loop saturating the server from a
    process of its own.

The load comes from bench/load.py (Python, one selector loop over raw sockets): nothing to
install. The run ends with one line, `authz: ratio R (target 1) met|MISSED`, R being the
tightest of the four targets' margins.
docs/benchmarks.md says what is measured and keeps the last figures.

    .venv/bin/python bench/authz.py [--workers 2] [--threads 8] [--clients 50] [--rate 1000] [--seconds 30] [--pauses 20]
"""

from __future__ import annotations

import http.client
import itertools
import os
import pickle
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ ships with the source, not the package

from sqlalchemy import event, select  # noqa: E402

from bench.common import (  # noqa: E402
    OPERATOR, ROOT, alternating, arguments, at_least, at_most, flushed_redis, fresh_database, free_port, gunicorn, load_text, machine_facts, met,
    parse, percentile, production_workspace, provision_approved, verdict, web_env,
)
from bench.load import Result, closed_loop, holders, open_loop, workers_of  # noqa: E402
from gateway.invalidation import install_publisher  # noqa: E402
from store import budgets, keys, workspaces  # noqa: E402
from store.db import Database  # noqa: E402
from store.models import Project, Request  # noqa: E402
from store.money import parse_money  # noqa: E402
from store.permissions import Actor  # noqa: E402
from store.decisions import decide_request  # noqa: E402
from store.secrets import Cipher, mint_local_secret, use_cipher  # noqa: E402
from store.types import RequestState  # noqa: E402
from store.ingest import UsageIn, ingest_usage  # noqa: E402

DEFAULT_REDIS = "redis://127.0.0.1:6379/11"  # a db of its own: it is flushed (pub/sub itself spans all dbs)
INGEST_TOKEN = "bench-ingest-token"
TARGET_RATIO = 0.7
TARGET_P99 = 0.003
TARGET_P999 = 0.010
TARGET_PAUSE = 1.0
POLL_EVERY = 0.002
LOG = ROOT / "var" / "bench" / "authz-gunicorn.log"  # left for a look after the run


# --- state, built through the store's operations -----------------------------------------------


@dataclass(frozen=True)
class Check:
    """One /v1/authz request as nginx's auth_request sends it, and the answer it must get."""

    secret: str
    client_ip: str
    project_tag: str | None
    status: int
    key_id: int | None = None

    def headers(self) -> dict[str, str]:
        h = {
            "Authorization": f"Bearer {self.secret}",
            "X-Real-IP": self.client_ip,
            "X-Forwarded-For": self.client_ip,
            "Content-Type": "application/json",
            "User-Agent": "OpenAI/Python 1.54.0",
        }
        if self.project_tag:
            h["X-Purser-Project"] = self.project_tag
        return h

    def raw(self, port: int, path: str = "/v1/authz") -> bytes:
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in self.headers().items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


_users = (f"U{n:08d}" for n in itertools.count(1))
_names = (f"svc-{n}" for n in itertools.count(1))


def workspace(db: Database, slug: str, developers: int) -> tuple[int, Actor, list[Actor]]:
    admin = Actor.slack(next(_users))
    devs = [Actor.slack(next(_users)) for _ in range(developers)]
    ws = production_workspace(db, slug, [admin.slack_user_id], [d.slack_user_id for d in devs])
    return ws, admin, devs


def make_keys(db: Database, ws: int, admin: Actor, wanted: list[tuple[Actor, str | None]]) -> list[tuple[int, str, str | None]]:
    """One live key per (owner, project), asked for by its owner, approved by the admin, provisioned: (id, secret, project)."""
    asked = db.run(lambda s: [keys.request_key(s, owner, ws, name=next(_names), project=p).id for owner, p in wanted])
    db.run(lambda s: [decide_request(s, admin, r, approve=True) for r in asked if s.get(Request, r).state is RequestState.PENDING])
    made = db.run(lambda s: [(key.id, secret, key.project.slug if key.project else None) for key, secret in provision_approved(s, ws)])
    assert len(made) == len(wanted), f"asked for {len(wanted)} keys, got {len(made)}"
    return made


def build_checks(db: Database, n_keys: int, rnd: random.Random) -> tuple[list[Check], dict]:
    """``n_keys`` live keys in four workspaces, then one refusal for every twenty checks."""
    checks: list[Check] = []
    per_ws = n_keys // 4
    spaces = {}
    for w, slug in enumerate(("search", "support", "research", "platform")):
        ws, admin, devs = workspace(db, slug, developers=10)
        projects = [f"{slug}-{p}" for p in ("api", "batch", "eval")]
        for p in projects:
            db.run(budgets.create_project, OPERATOR, ws, p)
        if slug == "search":
            db.run(workspaces.add_allowlist, OPERATOR, ws, "10.20.0.0/16")
        wanted = [(devs[i % len(devs)], None if i % 10 == 9 else projects[i % 3]) for i in range(per_ws)]
        for key_id, secret, project in make_keys(db, ws, admin, wanted):
            ip = f"10.20.{rnd.randrange(256)}.{rnd.randrange(1, 255)}" if slug == "search" else f"10.{w}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
            tag = project if project and rnd.random() < 0.5 else None
            checks.append(Check(secret, ip, tag, 200, key_id))
        spaces[slug] = (ws, admin, devs)

    # The refusals, about one check in twenty: a spent budget (402), revoked and unknown keys
    # (401), a wrong project tag and an address outside the allowlist (403).
    ws, admin, devs = spaces["support"]
    db.run(budgets.create_project, OPERATOR, ws, "support-spent", budget_micros=parse_money("$1"))
    spent = make_keys(db, ws, admin, [(devs[i], "support-spent") for i in range(4)])
    db.run(ingest_usage, [UsageIn(f"spend-{k}", k, parse_money("$0.25"), datetime.now(timezone.utc)) for k, _, _ in spent])
    checks += [Check(secret, "10.1.0.9", None, 402) for _, secret, _ in spent]
    revoked = make_keys(db, ws, admin, [(devs[i], "support-api") for i in range(4, 6)])
    for key_id, _, _ in revoked:
        db.run(keys.revoke_key, admin, key_id, reason="leaked")
    checks += [Check(secret, "10.1.0.9", None, 401) for _, secret, _ in revoked]
    checks += [Check(mint_local_secret(), "10.1.0.9", None, 401) for _ in range(2)]
    search = next(c for c in checks if c.client_ip.startswith("10.20.") and c.status == 200)
    checks.append(Check(search.secret, search.client_ip, "research-api", 403))
    checks.append(Check(search.secret, "10.99.0.1", None, 403))
    rnd.shuffle(checks)
    return checks, spaces


# --- (c) a pause, and the first refusal a polling client sees ----------------------------------


class Poller(threading.Thread):
    """Asks /v1/authz about one key every POLL_EVERY, in turn over one keep-alive connection per worker."""

    def __init__(self, port: int, master: int, check: Check) -> None:
        super().__init__(name="poller", daemon=True)
        self.port, self.check = port, check
        self.workers = workers_of(master)
        self.conns: list[http.client.HTTPConnection] = []
        held: set[str] = set()
        for _ in range(64):  # which worker accepts a connection is up to the workers: open until each has one
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            self._ask(conn, check)  # once answered, the connection is a worker's
            pid = holders(port).get(conn.sock.getsockname()[1])
            if pid in held or pid is None:
                conn.close()
                continue
            held.add(pid)
            self.conns.append(conn)
            if held >= self.workers:
                break
        self.held = len(held)
        self.reconnects = 0
        self.log: list[tuple[float, float, int, int, Check]] = []  # (sent, answered, connection, status, check); append is atomic
        self.stop = threading.Event()

    def _ask(self, conn: http.client.HTTPConnection, check: Check) -> int:
        conn.request("GET", "/v1/authz", headers=check.headers())
        answer = conn.getresponse()
        answer.read()
        return answer.status

    def run(self) -> None:
        for n in itertools.cycle(range(len(self.conns))):
            if self.stop.is_set():
                return
            sent, check = time.perf_counter(), self.check
            try:
                status = self._ask(self.conns[n], check)
            except (http.client.HTTPException, OSError):
                # Closed by the server (a keep-alive timeout while this thread waited for a CPU):
                # the next request opens a new connection, to whichever worker accepts it.
                self.conns[n].close()
                self.reconnects += 1
                continue
            self.log.append((sent, time.perf_counter(), n, status, check))
            time.sleep(max(0.0, POLL_EVERY - (time.perf_counter() - sent)))

    def wait_for(self, refused: bool, since: float, timeout: float = 15.0) -> tuple[float, float]:
        """When the first connection, and then every one (every worker), was answered a refusal (or a 200) after ``since``."""
        wanted = (lambda st: st in (402, 403)) if refused else (lambda st: st == 200)
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            first: dict[int, float] = {}
            for _, t, n, status, check in self.log[::-1]:
                if t <= since:
                    break
                if wanted(status) and check is self.check:
                    first[n] = t
            if len(first) == len(self.conns):
                return min(first.values()), max(first.values())
            time.sleep(0.001)
        raise SystemExit(f"not every poller connection saw {'a refusal' if refused else 'a 200'} within {timeout:.0f} s")

    def latency(self, since: float) -> float:
        """The median time the poller's own checks took since ``since``: what any answer took then."""
        return statistics.median(t - sent for sent, t, *_ in self.log if sent >= since)


@dataclass(frozen=True)
class Target:
    workspace: int
    admin: Actor
    hand: Check  # a key of platform-ops, paused and resumed by an admin
    budget: Check  # a key of platform-budget, paused by its spend reaching the budget


def pause_target(db: Database, spaces: dict) -> Target:
    ws, admin, devs = spaces["platform"]
    db.run(budgets.create_project, OPERATOR, ws, "platform-ops")
    db.run(budgets.create_project, OPERATOR, ws, "platform-budget", budget_micros=parse_money("$1"))
    keys_by_project = {project: (key_id, secret) for key_id, secret, project in make_keys(db, ws, admin, [(devs[0], "platform-ops"), (devs[1], "platform-budget")])}
    (hand_id, hand), (budget_id, budget) = keys_by_project["platform-ops"], keys_by_project["platform-budget"]
    return Target(ws, admin, Check(hand, "10.3.0.1", None, 200, hand_id), Check(budget, "10.3.0.2", None, 200, budget_id))


def pause_delays(db: Database, poller: Poller, target: Target, rounds: int, rnd: random.Random, label: str) -> list[tuple[str, float, float]]:
    """Pause and resume ``rounds`` times, by hand and by usage reaching the budget in turn:
    (how, commit → first refusal, commit → refusal on every poller connection)."""
    committed: list[float] = []

    def note(session) -> None:
        committed.append(time.perf_counter())

    event.listen(db.sessions, "after_commit", note)
    out = []
    try:
        for r in range(rounds):
            by_hand = r % 2 == 0
            poller.check = target.hand if by_hand else target.budget
            poller.wait_for(refused=False, since=time.perf_counter())  # the key is cached as active everywhere
            time.sleep(rnd.uniform(0.05, 0.25))  # at any phase of the polling
            committed.clear()
            if by_hand:
                db.run(budgets.pause_project, target.admin, target.workspace, "platform-ops", "bench pause")
            else:
                db.run(ingest_usage, [UsageIn(f"{label}-{r}", target.budget.key_id, parse_money("$1"), datetime.now(timezone.utc))])
            at = committed[-1]
            first, every = poller.wait_for(refused=True, since=at)
            out.append(("by hand" if by_hand else "budget", first - at, every - at))
            if by_hand:
                db.run(budgets.resume_project, target.admin, target.workspace, "platform-ops")
            else:
                # A dollar more than was spent: the project resumes.
                raised = db.run(lambda s: s.scalar(select(Project.budget_micros).where(Project.workspace_id == target.workspace, Project.slug == "platform-budget"))) + parse_money("$1")
                db.run(budgets.set_project_budget, target.admin, target.workspace, "platform-budget", raised)
    finally:
        event.remove(db.sessions, "after_commit", note)
    return out


# --- the report ---------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__, redis_url=DEFAULT_REDIS, web=True)
    parser.add_argument("--keys", type=int, default=200, help="live keys the checks rotate through (a multiple of 4)")
    parser.add_argument("--clients", type=int, default=50, help="connections in the closed loop (and the load under the loaded pauses)")
    parser.add_argument("--rounds", type=int, default=5, help="closed-loop rounds per endpoint, in alternating order")
    parser.add_argument("--round", type=float, default=4, help="seconds of each closed-loop round")
    parser.add_argument("--rate", type=float, default=1000, help="checks/s in the open loop")
    parser.add_argument("--seconds", type=float, default=30, help="seconds of the open loop")
    parser.add_argument("--pool", type=int, default=32, help="connections the open loop may have in flight")
    parser.add_argument("--pauses", type=int, default=20, help="pauses timed, idle and again under load")
    args = parse(parser, argv)
    load = os.getloadavg()
    started = time.perf_counter()
    rnd = random.Random(7)
    use_cipher(Cipher(Cipher.generate()))
    port = free_port()
    with flushed_redis(args.redis_url) as broker:
        with fresh_database(args.database_url, prefix="purser_authz") as (url, _), tempfile.TemporaryDirectory(prefix="purser-authz-") as tmp:
            db = Database(url)
            install_publisher(db, args.redis_url)  # as every process that commits has it
            try:
                facts = machine_facts(db, broker, load)
                checks, spaces = build_checks(db, args.keys, rnd)
                target = pause_target(db, spaces)
                env = web_env(url, args.redis_url, "bench", PURSER_INGEST_TOKEN=INGEST_TOKEN, PURSER_TRUSTED_PROXIES="127.0.0.1/32,::1/128")
                refused = sum(c.status != 200 for c in checks) / len(checks)
                print(f"state built in {time.perf_counter() - started:.0f} s; load average at start {facts['load']}; gunicorn on 127.0.0.1:{port}, {args.workers} × {args.threads}; {len(checks)} checks, {refused:.1%} refused", flush=True)
                with gunicorn(port, args.workers, args.threads, env, LOG) as proc:
                    correct = verify(port, checks)
                    # The same requests, headers and all, to each path: gunicorn's work per request is the
                    # same, and the difference is what the check itself costs.
                    paths = {"/v1/authz": ("/v1/authz", None), "404": ("/bench-not-a-route", 404), "/healthz": ("/healthz", 200)}
                    requests = {name: [(c.raw(port, path), status or c.status) for c in checks] for name, (path, status) in paths.items()}
                    closed: dict[str, list[Result]] = {name: [] for name in paths}
                    # Every key loaded into both workers' caches: a cold cache is a restart, not the steady state.
                    for name in ("/v1/authz", "404"):
                        warm = closed_loop(port, requests[name], args.clients, 4 if name == "/v1/authz" else 2, proc.pid)
                        print(f"  warm-up {name:<9} {warm.rate:6.0f}/s", flush=True)
                    for r, order in alternating(args.rounds, ["/v1/authz", "404"]):
                        # /healthz, for reference only, once in the middle.
                        for name in order + (["/healthz"] if r == args.rounds // 2 else []):
                            run = closed_loop(port, requests[name], args.clients, args.round, proc.pid)
                            closed[name].append(run)
                            split = " / ".join(f"{t:.1f}" for t in run.workers)
                            print(f"  closed {name:<10} round {r + 1}: {run.rate:6.0f}/s, p99 {ms(run.pct(0.99))} ms, client {run.client:.0%} of a core, CPU s per worker {split}; load {load_text(os.getloadavg())}", flush=True)
                    opened: dict[str, Result] = {}
                    for name in ("/v1/authz", "404"):
                        opened[name] = run = open_loop(port, requests[name], args.rate, args.seconds, args.pool, proc.pid)
                        print(f"  open   {name:<10} {args.rate:g}/s: p50 {ms(run.pct(0.5))} ms, p99 {ms(run.pct(0.99))} ms, p99.9 {ms(run.pct(0.999))} ms; load {load_text(os.getloadavg())}", flush=True)

                    poller = Poller(port, proc.pid, target.hand)
                    poller.start()
                    since = time.perf_counter()
                    idle = pause_delays(db, poller, target, args.pauses, rnd, "idle")
                    idle_poll = poller.latency(since)
                    print(f"  pauses idle: max {ms(max(d[2] for d in idle))} ms to every worker", flush=True)
                    # The load comes from a process of its own: in this one it would hold up the poller's thread.
                    pickled = Path(tmp) / "authz.pickle"
                    pickled.write_bytes(pickle.dumps(requests["/v1/authz"]))
                    background = subprocess.Popen(
                        [sys.executable, str(ROOT / "bench" / "load.py"), "--port", str(port), "--master", str(proc.pid), "--requests", str(pickled),
                         "--clients", str(args.clients), "--seconds", "300"],
                        stdout=subprocess.DEVNULL,
                    )  # fmt: skip
                    try:
                        time.sleep(2)  # its connections made and spread over the workers
                        since = time.perf_counter()
                        loaded = pause_delays(db, poller, target, args.pauses, rnd, "loaded")
                        loaded_poll = poller.latency(since)
                    finally:
                        background.terminate()
                        background.wait()
                    print(f"  pauses under load: max {ms(max(d[2] for d in loaded))} ms to every worker", flush=True)
                    poller.stop.set()
                    poller.join(timeout=5)
                    pauses = {"idle": (idle, idle_poll), f"{args.clients} clients saturating": (loaded, loaded_poll)}
                    problems = [line for line in LOG.read_text().splitlines() if re.search(r" (WARNING|ERROR|CRITICAL) (?!slack_bolt)", line)]
                margins = report(args, facts, closed, opened, pauses, poller)
                if problems:
                    print(f"\ngunicorn logged {len(problems)} warning(s) or error(s), the first: {problems[0]}")
                wrong = sum(run.wrong for run in opened.values()) + sum(run.wrong for runs in closed.values() for run in runs)
                correct &= wrong == 0 and all(abs(r.refused / len(r.latencies) - refused) < 0.01 and not r.errors for r in closed["/v1/authz"])
                if wrong:
                    print(f"{wrong} answers had the wrong status")
            finally:
                db.dispose()
    print(f"(whole run {time.perf_counter() - started:.0f} s; load average at the end {load_text(os.getloadavg())})")
    return 0 if verdict("authz", margins, correct) else 1


def report(args, facts: dict, closed: dict[str, list[Result]], opened: dict[str, Result], pauses: dict, poller: Poller) -> list[tuple[str, float]]:
    """The tables; the targets' margins."""
    print(f"\nGateway authorization on gunicorn, gthread {args.workers} workers × {args.threads} threads, keep-alive connections")
    print(f"machine: {facts['nproc']} cores, {facts['cpu']}; load average at start {facts['load']}, now {load_text(os.getloadavg())}")
    print(f"PostgreSQL {facts['pg']}, Redis {facts['redis']}, Python {facts['python']}, gunicorn {facts['gunicorn']}; load from bench/load.py")
    print(f"\n(a) closed loop, {args.clients} keep-alive connections (as many on each worker), {args.rounds} rounds of {args.round:g} s; srv: gunicorn CPU µs per answer (median of rounds); client: the load's share of one core")
    print("    * a round in which one worker did nearly all the work (see 'CPU s per worker' above): left out of best, median and ratios")
    print(f"{'endpoint':<12}{'rounds /s':>42}{'best /s':>9}{'p50 ms':>8}{'p99 ms':>8}{'refused':>9}{'srv µs':>8}{'client':>8}")
    best, median, cpu = {}, {}, {}
    for name, every in closed.items():
        runs = [r for r in every if r.balanced] or every
        top = best[name] = max(runs, key=lambda r: r.rate)
        median[name] = statistics.median(r.rate for r in runs)
        cpu[name] = statistics.median(r.server_us for r in runs)
        rounds = " ".join(f"{r.rate:6.0f}{' ' if r.balanced else '*'}" for r in every)
        print(f"{name:<12}{rounds:>42}{top.rate:9.0f}{ms(top.pct(0.5)):>8}{ms(top.pct(0.99)):>8}{top.refused / len(top.latencies):9.1%}{cpu[name]:8.0f}{top.client:8.0%}")
    ratio = best["/v1/authz"].rate / best["404"].rate
    for base in ("404", "/healthz"):
        also = f"{median['/v1/authz'] / median[base]:.2f} median round over median, " if len(closed[base]) > 1 else ""
        shown = f"target ≥ {TARGET_RATIO}: {met(ratio >= TARGET_RATIO)}" if base == "404" else "for reference"
        print(f"ratio /v1/authz / {base}: {best['/v1/authz'].rate / best[base].rate:.2f} best round over best ({shown}); {also}{cpu[base] / cpu['/v1/authz']:.2f} in CPU per answer")
    print(f"\n(b) open loop, {args.rate:g} checks/s for {args.seconds:g} s over up to {args.pool} connections, latency from the scheduled send to the whole answer")
    print("    late p99: how late the load sent its requests, 99th percentile (counted in the latencies, and no part of the server's)")
    print(f"{'endpoint':<12}{'sent':>7}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'p99.9 ms':>9}{'max ms':>8}{'late p99':>9}{'srv µs':>8}{'client':>8}  CPU s per worker")
    for name, run in opened.items():
        split = " / ".join(f"{t:.1f}" for t in run.workers)
        late = ms(percentile(run.late, 0.99))
        print(f"{name:<12}{len(run.latencies):>7}{ms(run.pct(0.5)):>8}{ms(run.pct(0.9)):>8}{ms(run.pct(0.99)):>8}{ms(run.pct(0.999)):>9}{ms(max(run.latencies)):>8}{late:>9}{run.server_us:8.0f}{run.client:8.0%}  {split}")
    p99, p999 = opened["/v1/authz"].pct(0.99), opened["/v1/authz"].pct(0.999)
    print(f"p99 of /v1/authz at {args.rate:g}/s: {ms(p99)} ms (target ≤ {ms(TARGET_P99)} ms) — {met(p99 <= TARGET_P99)}; p99.9 {ms(p999)} ms (target ≤ {ms(TARGET_P999)} ms) — {met(p999 <= TARGET_P999)}; the 404 row is the stack's own")
    print(f"\n(c) commit of a pause → refusal, {args.pauses} pauses each (by hand, 403, and by usage reaching the budget, 402, in turn);")
    again = f", {poller.reconnects} reconnected during the run" if poller.reconnects else ""
    print(f"    polled every {POLL_EVERY * 1000:g} ms over one connection per worker ({poller.held} of {len(poller.workers)} workers{again}); first: any worker, every: all of them")
    print(f"{'while':<26}{'first p50':>10}{'first max':>10}{'every p50':>10}{'every max':>10}{'a poll took':>12}  (ms)")
    for label, (delays, poll) in pauses.items():
        firsts, every = [d[1] for d in delays], [d[2] for d in delays]
        print(f"{label:<26}{ms(statistics.median(firsts)):>10}{ms(max(firsts)):>10}{ms(statistics.median(every)):>10}{ms(max(every)):>10}{ms(poll):>12}")
    worst = max(d[2] for d in pauses["idle"][0])
    print(f"slowest pause obeyed by every worker, idle: {ms(worst)} ms (target ≤ {TARGET_PAUSE:g} s) — {met(worst <= TARGET_PAUSE)}")
    return [
        (f"/v1/authz ÷ 404, closed loop, best round over best: {ratio:.2f} (≥ {TARGET_RATIO})", at_least(ratio, TARGET_RATIO)),
        (f"p99 at {args.rate:g}/s: {ms(p99)} ms (≤ {ms(TARGET_P99)} ms)", at_most(p99, TARGET_P99)),
        (f"p99.9 at {args.rate:g}/s: {ms(p999)} ms (≤ {ms(TARGET_P999)} ms)", at_most(p999, TARGET_P999)),
        (f"slowest pause obeyed by every worker, idle: {ms(worst)} ms (≤ {TARGET_PAUSE * 1000:.0f} ms)", at_most(worst, TARGET_PAUSE)),
    ]


def verify(port: int, checks: list[Check]) -> bool:
    """Every check once, its status and (for a 200) the key it names, before anything is timed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    wrong = []
    for c in checks:
        conn.request("GET", "/v1/authz", headers=c.headers())
        answer = conn.getresponse()
        answer.read()
        if answer.status != c.status or (c.status == 200 and answer.headers.get("X-Purser-Key") != str(c.key_id)):
            wrong.append((c, answer.status, answer.headers.get("X-Purser-Refusal")))
    conn.close()
    for c, status, reason in wrong[:5]:
        print(f"  expected {c.status}, got {status} ({reason}) for {c}")
    return not wrong


if __name__ == "__main__":
    sys.exit(main())
