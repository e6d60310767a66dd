"""Load for the benchmarks of the web server: closed and open loops over raw keep-alive HTTP/1.1 connections.

One selector loop in one thread drives every connection: a closed loop sends a
connection's next request as soon as its answer is in; an open loop sends at fixed
intervals whatever the answers, and times each answer from its scheduled send, so a
stall counts in full for every request scheduled behind it; how late the loop itself
sent each one is kept too, for the generator's own share of those latencies. Both spread their
connections evenly over gunicorn's workers (a worker keeps the connections it accepts,
and left to chance one may hold nearly all of them).

Python's cyclic collector is off while a loop runs: a full collection of this process's
heap takes tens of milliseconds, and in an open loop it would count against the server.

Run as a script it is a closed loop in a process of its own, for load in the background
of another measurement (the requests come pickled in a file; the result is one JSON line):

    .venv/bin/python bench/load.py --port P --master PID --requests FILE --clients 50 --seconds 120
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import pickle
import re
import selectors
import subprocess
import sys
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ ships with the source, not the package

from bench.common import connect, cpu_of, parse_response, per_worker, percentile, server_pids, used_since  # noqa: E402

#: (the raw request, the status it must be answered with; None: any)
Request = tuple[bytes, "int | None"]


@dataclass
class Result:
    """What a loop measured: latencies in seconds, and gunicorn's CPU."""

    seconds: float  # how long it sent for
    latencies: list[float] = field(default_factory=list)
    refused: int = 0  # answers that were not 2xx
    wrong: int = 0  # answers with a status other than the request's own
    errors: int = 0  # connections the server closed mid-answer
    client: float = 0.0  # this process's CPU, as a share of one core
    server_us: float = 0.0  # gunicorn's CPU (master and workers) per answer
    workers: list[float] = field(default_factory=list)  # CPU s each worker used, most first
    late: list[float] = field(default_factory=list)  # open loop: how long after its scheduled time each request went out

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        return percentile(self.latencies, q)

    @property
    def balanced(self) -> bool:
        """Whether every worker did a fair share: a round one worker served nearly alone says little about the code."""
        return bool(self.workers) and min(self.workers) >= 0.4 * sum(self.workers) / len(self.workers)


# --- connections ---------------------------------------------------------------------------------


class Conn:
    """A keep-alive connection that sends one request at a time and reads its answer."""

    def __init__(self, port: int, sel: selectors.BaseSelector) -> None:
        self.port, self.sel = port, sel
        self.request, self.expected, self.t0, self.buf, self.retried, self.in_flight = b"", None, 0.0, b"", False, False
        self._connect()

    def _connect(self) -> None:
        self.sock = connect(self.port, self.sel, self)

    def _reconnect(self) -> None:
        self.sel.unregister(self.sock)
        self.sock.close()
        self._connect()

    def send(self, request: bytes, t0: float, expected: int | None = None) -> None:
        self.request, self.expected, self.t0, self.buf, self.retried, self.in_flight = request, expected, t0, b"", False, True
        self.sock.sendall(request)

    def receive(self) -> int | None:
        """The status once a whole answer is in, else None."""
        try:
            data = self.sock.recv(65536)
        except ConnectionError:
            data = b""
        if not self.in_flight:
            # The server closed this idle keep-alive connection: have a fresh one ready.
            self._reconnect()
            return None
        if not data:
            if self.buf or self.retried:
                raise ConnectionError("the server closed a connection mid-answer")
            # Closed by the server just as we sent: send again on a new one.
            self._reconnect()
            self.retried = True
            self.sock.sendall(self.request)
            return None
        self.buf += data
        parsed = parse_response(self.buf)
        if parsed is None:
            return None
        status, _, closes, _ = parsed
        self.in_flight = False
        if closes:
            self._reconnect()
        return status

    def close(self) -> None:
        self.sel.unregister(self.sock)
        self.sock.close()


def workers_of(master: int) -> set[str]:
    return set(server_pids(master)) - {str(master)}


def holders(port: int) -> dict[int, str]:
    """Which gunicorn worker (pid) holds each client port connected to ``port``, from ss."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        cols, pid = line.split(), re.search(r"pid=(\d+)", line)
        if len(cols) > 3 and pid:
            found[int(cols[3].rsplit(":", 1)[-1])] = pid.group(1)
    return found


def balanced(port: int, sel: selectors.BaseSelector, pool: int, workers: set[str], request: bytes) -> list[Conn]:
    """``pool`` connections, as many held by each worker, interleaved so that every worker gets work at once."""
    share = -(-pool // len(workers))
    held: dict[str, list[Conn]] = {w: [] for w in workers}
    for _ in range(10):
        candidates = [Conn(port, sel) for _ in range(pool)]
        for c in candidates:  # once answered, a connection is a worker's
            c.send(request, time.perf_counter())
            while c.receive() is None:
                pass
        owners = holders(port)
        for c in candidates:
            pid = owners.get(c.sock.getsockname()[1])
            if pid in held and len(held[pid]) < share:
                held[pid].append(c)
            else:
                c.close()
        if all(len(cs) == share for cs in held.values()):
            break
    return [c for pair in itertools.zip_longest(*held.values()) for c in pair if c]


@contextmanager
def measured(run: Result, master: int) -> Iterator[None]:
    """The client's and the server's CPU over the block, into ``run``; no cyclic collection in this process meanwhile."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    cpu0, srv0 = time.process_time(), cpu_of(server_pids(master))
    try:
        yield
    finally:
        used = used_since(srv0, cpu_of(server_pids(master)))
        run.client = (time.process_time() - cpu0) / run.seconds
        run.server_us = sum(used.values()) / max(1, len(run.latencies)) * 1e6
        run.workers = per_worker(used, master)
        if was:
            gc.enable()


def _answered(run: Result, c: Conn, status: int) -> None:
    run.latencies.append(time.perf_counter() - c.t0)
    run.refused += not 200 <= status < 300
    run.wrong += c.expected is not None and status != c.expected


# --- the loops -----------------------------------------------------------------------------------


def closed_loop(port: int, requests: Sequence[Request], clients: int, seconds: float, master: int) -> Result:
    """``clients`` connections, each sending the next request in rotation as soon as its last is answered."""
    sel = selectors.DefaultSelector()
    conns = balanced(port, sel, clients, workers_of(master), requests[0][0])
    run = Result(seconds)
    turn = itertools.cycle(requests)
    with measured(run, master):
        start = time.perf_counter()
        end = start + seconds
        for c in conns:
            c.send(*_next(turn, start))
        busy = len(conns)
        while busy:
            for key, _ in sel.select(timeout=10):
                c = key.data
                try:
                    status = c.receive()
                except ConnectionError:
                    run.errors += 1
                    c._reconnect()
                    status = 0
                if status is None:
                    continue
                now = time.perf_counter()
                if status:
                    _answered(run, c, status)
                if now < end:
                    c.send(*_next(turn, now))
                else:
                    busy -= 1
        run.seconds = time.perf_counter() - start
    for c in conns:
        c.close()
    return run


def _next(turn: Iterator[Request], now: float) -> tuple[bytes, float, int | None]:
    raw, expected = next(turn)
    return raw, now, expected


def open_loop(port: int, requests: Sequence[Request], rate: float, seconds: float, pool: int, master: int, answer_within: float = 30) -> Result:
    """Sends at fixed intervals over up to ``pool`` connections; with every connection busy a request waits, and its wait counts."""
    # select(2), not epoll: epoll_wait counts in whole milliseconds, rounded up, so at 1,000/s
    # the wait for the next send was always 1 ms and requests left 0.5 ms late on average
    # (1.1 ms at the 99th percentile), lateness that counted as the server's. select(2) waits
    # to the microsecond; a pool of tens of connections is far below its descriptor limit.
    sel = selectors.SelectSelector()
    idle = deque(balanced(port, sel, pool, workers_of(master), requests[0][0]))
    run = Result(seconds)
    n = int(rate * seconds)
    waiting: deque[float] = deque()
    i = busy = 0
    with measured(run, master):
        start = time.perf_counter() + 0.05
        while i < n or waiting or busy:
            now = time.perf_counter()
            while i < n and start + i / rate <= now:
                waiting.append(start + i / rate)
                i += 1
            while waiting and idle:
                # The oldest idle connection goes first, so none sits idle past the server's keep-alive.
                c = idle.popleft()
                raw, expected = requests[(i - len(waiting)) % len(requests)]
                due = waiting.popleft()
                run.late.append(time.perf_counter() - due)
                c.send(raw, due, expected)
                busy += 1
            timeout = max(0.0, start + i / rate - time.perf_counter()) if i < n else answer_within
            events = sel.select(timeout=timeout)
            if not events and i >= n and busy:
                raise SystemExit(f"{busy} requests unanswered for {answer_within:g} s")
            for key, _ in events:
                c = key.data
                status = c.receive()
                if status is None:
                    continue
                _answered(run, c, status)
                busy -= 1
                idle.append(c)
    for c in idle:
        c.close()
    return run


def summary(run: Result) -> dict:
    """A result without its latencies, with their percentiles: what the script prints."""
    out = {k: v for k, v in asdict(run).items() if k not in ("latencies", "late")}
    out.update(answers=len(run.latencies), rate=run.rate, p50=run.pct(0.5), p99=run.pct(0.99))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A closed loop of keep-alive requests against a local gunicorn, in a process of its own.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--master", type=int, required=True, help="gunicorn's master process")
    parser.add_argument("--requests", type=Path, required=True, help="a pickled list of (raw request, expected status or None)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args(argv)
    requests = pickle.loads(args.requests.read_bytes())
    print(json.dumps(summary(closed_loop(args.port, requests, args.clients, args.seconds, args.master))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
