"""Key requests under load through the production processes, and the same load through faults.

Each scenario sends its key requests as signed Slack commands to gunicorn, has admins
approve or deny them with signed clicks (denials through the reason modal), lets two
dramatiq worker processes carry everything out against the fake OpenRouter and the fake
Slack Web API, and ends with ``check_invariants``: every request final once, one live key
per approval, the audit log exactly what the operations imply, each Slack message
posted once. The short runs are part of `make test`; the long ones (`-m slow`,
`make soak`) hold 1,000 requests from 100 members with production timings.
"""

from __future__ import annotations

import json
import os
import platform
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, text

from bot import texts
from bot.blocks.common import section
from bot.slack_client import EVENT_TYPE, Slack
from store import outbox
from store.messages import find_message, reserve_message
from store.models import Action
from store.permissions import load_workspace
from store.types import ActionStatus, utcnow
from tests import factories as f
from tests.reliability.load_checks import Tally, check_invariants
from tests.reliability.load_driver import ASKED, Load, build_teams
from tests.reliability.load_stack import BOT_TOKEN, Stack, wait_until

pytestmark = pytest.mark.real_clock  # the stack's processes sign, lease and time out on the machine's clock


STORE_AWAY = texts.STORE_AWAY.split(" (")[0]
UNEXPECTED = texts.UNEXPECTED.split(" (")[0]


@dataclass(frozen=True)
class Size:
    name: str
    requests: int
    members: int
    outage: float  # seconds Redis, the provider or Slack stay away
    pg_cut: float  # seconds PostgreSQL stays unreachable
    kills: int  # worker processes SIGKILLed in the kill scenario
    slow_create: float  # seconds OpenRouter takes over a few key creations
    timeout: float  # for the whole load to be carried out


SIZES = {
    "short": Size("short", requests=40, members=12, outage=5, pg_cut=4, kills=2, slow_create=8, timeout=90),
    "long": Size("long", requests=1000, members=100, outage=60, pg_cut=10, kills=6, slow_create=9, timeout=1200),
}


@pytest.fixture(params=["short", pytest.param("long", marks=pytest.mark.slow)])
def run(request):
    stack: Stack = request.getfixturevalue(f"{request.param}_stack").prepare()
    return Run(stack, SIZES[request.param], request.node.originalname.removeprefix("test_"))


@dataclass
class Run:
    stack: Stack
    size: Size
    scenario: str

    def load(self, tag: str) -> Load:
        teams = build_teams(self.stack.db, tag, self.size.members)
        return Load(self.stack, teams, self.size.requests)

    def settle_and_check(self, load: Load, faults: str) -> Tally:
        try:
            load.finish(self.size.timeout)
        finally:
            tally = check_invariants(self.stack.db, load.teams, load.asked, self.stack.slack, self.stack.openrouter)
            self.report(load, tally, faults)
        tally.assert_holds(f"process logs: {self.stack.workdir}")
        _, ephemeral, _, _ = self.stack.slack.snapshot()
        unexpected = [r.text for r in load.replies if UNEXPECTED in r.text] + [m.text for m in ephemeral if UNEXPECTED in m.text]
        error_ids = re.findall(r"error id `(\w+)`", " ".join(unexpected))
        assert not unexpected, f"{len(unexpected)} answer(s) admitted an unexpected error:\n{self.stack.explain(error_ids)}"
        return tally

    def report(self, load: Load, tally: Tally, faults: str) -> None:
        """One line per scenario; with PURSER_LOAD_REPORT set, also a JSON row appended to that file."""
        commands = load.replies_of("command")
        acks = sorted(r.ack_s for r in commands if r.ack_s is not None)
        row = {
            "scenario": self.scenario,
            "size": self.size.name,
            "load": f"{len(load.asks)} key requests from {sum(len(t.members) for t in load.teams)} members in {len(load.teams)} workspaces; {len(commands)} commands, {len(load.replies) - len(commands)} clicks and submissions",
            "faults": faults,
            "tally": tally.summary(),
            "observed": observed(self.stack, load),
            "lost": tally.lost,
            "doubled": tally.doubled,
            "slowest_ack_s": round(acks[-1], 2) if acks else None,
            "duration_s": round(load.finished - load.started, 1),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        }
        print(json.dumps(row))
        if os.environ.get("PURSER_LOAD_REPORT"):
            with open(os.environ["PURSER_LOAD_REPORT"], "a") as fh:
                fh.write(json.dumps(row) + "\n")


def observed(stack: Stack, load: Load) -> str:
    """What the faults did, as the people and the fakes saw it."""
    seen = {
        "replies saying queued": sum(texts.QUEUED in r.text for r in load.replies),
        "replies saying the database is away": sum(STORE_AWAY in r.text for r in load.replies),
        "OpenRouter calls refused": stack.openrouter.refused,
        "orphaned OpenRouter keys deleted": sum(name.startswith("purser-") for name in stack.openrouter.deleted),
        "Slack calls answered 429": stack.slack.limited,
    }
    return ", ".join(f"{what}: {n}" for what, n in seen.items() if n) or "nothing unusual"


def held_actions(stack: Stack) -> int:
    """Actions a worker is in the middle of right now (claimed, lease running)."""
    with stack.db.session() as s:
        return s.scalar(select(func.count()).select_from(Action).where(Action.status == ActionStatus.PENDING, Action.claimed_until > utcnow()))


def test_load_every_request_ends_once_and_nothing_doubles(run):
    load = run.load("load").start()
    tally = run.settle_and_check(load, "none")
    assert tally.requests == run.size.requests and tally.approved and tally.denied
    assert all(r.status == 200 for r in load.replies), {r.status for r in load.replies}


def test_worker_killed_mid_action_loses_and_doubles_nothing(run):
    stack = run.stack
    load = run.load("kill").start()
    killed, down = [], None
    for n in range(run.size.kills):
        load.wait_answered((n + 1) / (run.size.kills + 2))
        if n % 2 == 0:
            victim = kill_when_a_key_is_made(stack)  # OpenRouter made it; the answer never reaches the worker
        else:
            wait_until(lambda: held_actions(stack), 120, "an action in progress")
            victim = next(w for w in sorted(stack.workers)[::1 if n // 2 % 2 == 0 else -1] if w != down)
            stack.kill_worker(victim)
        killed.append(victim)
        # The last victim comes back only once the next kill is done: the workers keep up with the
        # load, and a restart (seconds) waited for before the next kill would find the work all done.
        if down is not None:
            stack.restart_worker(down)
        down = victim
    stack.restart_worker(down)
    tally = run.settle_and_check(load, f"{len(killed)} SIGKILLs of a worker process mid-action ({', '.join(killed)}), each restarted")
    assert len(killed) == run.size.kills
    assert tally.retried_actions, "no action was taken up again after a kill"
    orphans = [name for name in stack.openrouter.deleted if name.startswith("purser-")]
    assert orphans, "no key a killed worker left at OpenRouter was found and deleted"


def kill_when_a_key_is_made(stack: Stack, timeout: float = 120) -> str:
    fired: list[str] = []

    def hook(worker: str | None, name: str) -> None:
        if worker in stack.workers and not fired:
            stack.openrouter.on_create = None
            stack.kill_worker(worker)
            fired.append(worker)

    stack.openrouter.on_create = hook
    try:
        wait_until(lambda: fired, timeout, "a key made at OpenRouter")
    finally:
        stack.openrouter.on_create = None
    return fired[0]


def test_redis_stopped_commands_say_queued_and_the_sweeper_delivers_everything(run):
    stack = run.stack
    load = run.load("redis").start()
    load.wait_answered(0.3)
    load.hold()  # the asks left are made with Redis down, not raced against its stopping
    stack.redis.stop()
    down = time.monotonic()
    load.go_on()
    time.sleep(run.size.outage)
    up = time.monotonic()
    stack.redis.start()
    tally = run.settle_and_check(load, f"Redis (our own redis-server, no persistence) stopped for {run.size.outage:.0f} s and started empty")
    during = [r for r in load.replies_of("command", down, up) if ASKED.search(r.text)]
    assert during, "no key request was answered while Redis was down"
    assert all(texts.QUEUED in r.text for r in during), [r.text for r in during if texts.QUEUED not in r.text][:3]
    assert tally.requests == run.size.requests


def test_postgres_cut_commands_answer_readably_and_nothing_is_half_done(run):
    stack = run.stack
    load = run.load("pg").start()
    load.wait_answered(0.3)
    load.hold()  # as with Redis: the asks left meet the cut
    stack.pg_proxy.down()
    down = time.monotonic()
    load.go_on()
    time.sleep(run.size.pg_cut)
    up = time.monotonic()
    stack.pg_proxy.up()
    run.settle_and_check(load, f"every connection to PostgreSQL cut and new ones refused for {run.size.pg_cut:.0f} s (a TcpProxy between Purser and the server)")
    during = load.replies_of("command", down + 0.2, up)
    refused = [r for r in during if not ASKED.search(r.text)]
    assert refused, "no command met the outage"
    assert all(r.status == 200 for r in during), {r.status for r in during}
    assert all(r.text.startswith(STORE_AWAY) for r in refused), [r.text for r in refused][:3]
    # A deny reason submitted into the outage is answered on the form, in the same words.
    forms = [r for r in load.replies_of("reason", down + 0.2, up) if r.text]
    assert all(r.status == 200 and STORE_AWAY in r.text for r in forms), [r.text for r in forms][:3]


def test_provider_down_then_back_every_approved_key_live_once(run):
    stack = run.stack
    load = run.load("provider").start()
    load.wait_answered(0.2)
    stack.openrouter.slow_creates(3, run.size.slow_create)
    wait_until(lambda: stack.openrouter.slow_started == 3, 60, "three key creations under way")
    stack.openrouter.outage(run.size.outage, retry_after=1)
    tally = run.settle_and_check(
        load,
        f"3 key creations answered only after {run.size.slow_create:.0f} s (the action lease: {stack.tuning.lease_seconds or 60:.0f} s), "
        f"then OpenRouter answering 500 and 429 (Retry-After: 1) in turn for {run.size.outage:.0f} s",
    )
    assert stack.openrouter.refused, "the outage met no call"
    assert stack.openrouter.slow_answered == 3
    assert tally.live_at_provider, "no key was made at OpenRouter"


def test_slack_rate_limited_posts_once_and_updates_in_decision_order(run):
    stack = run.stack
    load = run.load("slack").start()
    load.wait_answered(0.3)
    stack.slack.rate_limit(run.size.outage, retry_after=1)
    run.settle_and_check(load, f"Slack answering chat.postMessage, chat.update and conversations.open 429 (Retry-After: 1) for {run.size.outage:.0f} s")
    assert stack.slack.limited, "the rate limit met no call"


def test_a_post_cut_off_before_its_ts_was_stored_is_found_again_not_repeated(short_stack):
    """The kill scenario's hardest moment, pinned down: Slack posted, the worker died before storing where."""
    stack = short_stack.prepare()
    slack = Slack(stack.db, BOT_TOKEN, stack.slack_url + "/api/")
    ref, channel = f"probe:{uuid.uuid4().hex}", "CPROBE"
    with stack.db.session() as s:
        reserve_message(s, ref, channel)
    slack.client.chat_postMessage(channel=channel, text="before the crash", metadata={"event_type": EVENT_TYPE, "event_payload": {"ref": ref}})

    slack.post(ref, channel, "after the crash", [section("after the crash")])

    writes = [(w.method, w.text) for w in stack.slack.writes if w.channel == channel]
    assert writes == [("chat.postMessage", "before the crash"), ("chat.update", "after the crash")]
    with stack.db.session() as s:
        assert find_message(s, ref).ts == stack.slack.writes[-1].ts


@pytest.mark.postgres
def test_locking_a_workspace_waits_for_no_insert_that_merely_references_it(pg_db):
    """Found by the long provider run: a decision's FOR UPDATE on the workspace queued behind a request's
    foreign-key lock, an audit append queued behind the decision, and PostgreSQL broke the deadlock by
    failing the admin's click."""
    ws = f.workspace(pg_db, "locks")
    with pg_db.session() as inserting, pg_db.session() as deciding:
        outbox.emit(inserting, "refresh_authz", workspace_id=ws)  # its foreign-key check holds KEY SHARE on the workspace
        deciding.execute(text("SET LOCAL lock_timeout = '2s'"))
        assert load_workspace(deciding, ws, lock=True).id == ws  # would time out behind `inserting` with FOR UPDATE
        deciding.rollback()
        inserting.rollback()
