"""The load: members asking for keys with `/ai-key new`, admins approving or denying them — all signed HTTP.

Members ask from several threads at once; a person whose command got an error (the store
unreachable, say) asks again a moment later, as anyone would. Admins act on what Slack
shows them: each approval message that still has its buttons gets a click — Approve, or
Deny and the reason modal — and a click that did not take (the message still shows its
buttons a while later) is tried again. Some approvals are clicked by two admins at once.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import func, select

from store import members, workspaces
from store.db import Database
from store.models import Action, AuditHead, Member, Request
from store.permissions import Actor
from store.types import ActionStatus, RequestState
from tests.reliability.load_stack import Stack, wait_until

OPERATOR = Actor.operator("load")
APPROVE, DENY, DENY_FORM = "request_approve", "request_deny", "deny_reason"
ASKED = re.compile(r"request #(\d+)")
ALREADY_ASKED = "You already asked for a key called"


@dataclass
class Team:
    id: int
    slug: str
    provider: str
    approvals: str
    admins: list[str]
    members: list[str]
    audit_seq: int = 0  # the audit chain's length when the load began


def build_teams(db: Database, tag: str, members_total: int, providers: tuple[str, ...] = ("openrouter", "openrouter", "local")) -> list[Team]:
    """Production workspaces (approval policy), two admins each, the members shared out among them."""
    teams = []
    for i, provider in enumerate(providers):
        slug = f"{tag.lower()}-{i}"
        ws = db.run(workspaces.create_workspace, OPERATOR, slug=slug, environment="production", provider=provider)
        approvals = f"C{tag.upper()}{i}APPROVALS"
        db.run(workspaces.set_channels, OPERATOR, ws.id, approvals=approvals)
        team = Team(ws.id, slug, provider, approvals, [f"U{tag.upper()}{i}A{j}" for j in range(2)], [])
        for admin in team.admins:
            db.run(members.add_member, OPERATOR, ws.id, role="admin", slack_user_id=admin)
        teams.append(team)
    for n in range(members_total):
        team = teams[n % len(teams)]
        user = f"U{tag.upper()}{n % len(teams)}M{n:04d}"
        db.run(members.add_member, OPERATOR, team.id, role="developer", slack_user_id=user)
        team.members.append(user)
    with db.session() as s:
        for team in teams:
            team.audit_seq = s.scalar(select(AuditHead.seq).where(AuditHead.workspace_id == team.id))
    return teams


@dataclass(frozen=True)
class Ask:
    team: Team
    user: str
    name: str
    limit: str


@dataclass(frozen=True)
class Reply:
    kind: str  # command, approve, deny, reason
    user: str
    sent: float  # time.monotonic()
    answered: float
    status: int
    text: str
    ack_s: float | None = None  # how long Slack waited for the HTTP answer (the text may come later)

    def during(self, start: float, end: float) -> bool:
        return self.sent >= start and self.answered <= end


@dataclass
class Load:
    stack: Stack
    teams: list[Team]
    requests: int
    senders: int = 6
    deciders: int = 4
    deny_every: int = 5  # request ids divisible by this are denied
    double_click_every: int = 7  # … and these are approved by two admins clicking at once
    reclick_after: float = 6.0
    asks: list[Ask] = field(init=False)
    replies: list[Reply] = field(default_factory=list)

    def __post_init__(self) -> None:
        people = [(team, user) for team in self.teams for user in team.members]
        people.sort(key=lambda p: p[1][-4:])  # interleave the workspaces
        self.asks = [Ask(team, user, f"k{i}", f"${5 + i % 40}") for i, (team, user) in zip(range(self.requests), itertools.cycle(people))]
        self.answered: set[int] = set()
        self._todo = deque(range(len(self.asks)))
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._asking = True  # False while held (``hold``): no sender begins a command
        self._in_flight = 0  # commands sent and not yet answered
        self._threads: list[threading.Thread] = []
        self.by_channel = {t.approvals: t for t in self.teams}
        self.started = self.finished = 0.0

    # -- running ------------------------------------------------------------------

    def start(self) -> "Load":
        self.started = time.monotonic()
        self._threads = [threading.Thread(target=self._send_loop, name=f"sender-{i}", daemon=True) for i in range(self.senders)]
        self._threads.append(threading.Thread(target=self._decide_loop, name="decider", daemon=True))
        for t in self._threads:
            t.start()
        return self

    def wait_answered(self, fraction: float, timeout: float = 600) -> None:
        wait_until(lambda: len(self.answered) >= fraction * len(self.asks), timeout, f"{fraction:.0%} of the key requests answered")

    def hold(self, timeout: float = 60) -> None:
        """No new command until ``go_on``; returns once those under way are answered.

        A fault started between two commands then meets every ask that follows it. Left
        running, the senders can ask the rest of the load while the fault is still being
        set up (a redis-server takes a moment to stop), and none falls inside it.
        """
        with self._lock:
            self._asking = False
        wait_until(lambda: self._in_flight == 0, timeout, "the commands under way answered")

    def go_on(self) -> None:
        with self._lock:
            self._asking = True

    def finish(self, timeout: float) -> None:
        """Wait until every ask is answered and decided and the workers have carried everything out."""
        try:
            wait_until(lambda: len(self.answered) == len(self.asks), timeout, "every key request answered")
            wait_until(self._all_decided, timeout, "every request decided", every=0.2)
            wait_until(self._outbox_empty, timeout, "every action carried out", every=0.2)
        finally:
            self._halt.set()
            for t in self._threads:
                t.join(timeout=15)
            self.finished = time.monotonic()

    def _all_decided(self) -> bool:
        with self.stack.db.session() as s:
            ids = [t.id for t in self.teams]
            total = s.scalar(select(func.count()).select_from(Request).where(Request.workspace_id.in_(ids)))
            pending = s.scalar(select(func.count()).select_from(Request).where(Request.workspace_id.in_(ids), Request.state == RequestState.PENDING))
        return total >= len(self.asks) and pending == 0

    def _outbox_empty(self) -> bool:
        with self.stack.db.session() as s:
            return not s.scalar(select(func.count()).select_from(Action).where(Action.status == ActionStatus.PENDING))

    # -- members ------------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._halt.is_set():
            with self._lock:
                if not self._todo:
                    return
                if not self._asking:
                    i = None
                else:
                    i = self._todo.popleft()
                    self._in_flight += 1
            if i is None:
                time.sleep(0.02)
                continue
            ask = self.asks[i]
            try:
                reply = self._post("command", ask.user, lambda: self.stack.sender.command(ask.user, "/ai-key", f"new {ask.name} --limit {ask.limit}", channel="C0GENERAL"))
            finally:
                with self._lock:
                    self._in_flight -= 1
            # No clear answer (an error, a queued command lost with Redis, a worker killed while on
            # it): look before asking again, as the answer itself advises, so that the asker does
            # not open a second request of their own after the first was decided.
            if (reply.status == 200 and (ASKED.search(reply.text) or ALREADY_ASKED in reply.text)) or self._asked(ask):
                with self._lock:
                    self.answered.add(i)
            else:  # ask again in a moment, as a person would
                time.sleep(0.5)
                with self._lock:
                    self._todo.append(i)

    def _asked(self, ask: Ask) -> bool:
        """What `/ai-key list` and the DMs would tell the asker: is there a request for this key already?"""
        try:
            with self.stack.db.session() as s:
                member_ids = select(Member.id).where(Member.workspace_id == ask.team.id, Member.slack_user_id == ask.user)
                return any(r.payload.get("name") == ask.name for r in s.scalars(select(Request).where(Request.requester_id.in_(member_ids))))
        except Exception:  # the store away: nothing to look at, so ask again
            return False

    def _post(self, kind: str, user: str, send) -> Reply:
        sent = time.monotonic()
        ack_s = None
        try:
            response = send()
            status = response.status_code
            ack_s = getattr(response, "ack", response).elapsed.total_seconds()
            try:
                data = response.json() if response.content else {}
                body = data.get("text", "") if "text" in data else (response.text if data else "")
            except ValueError:
                body = response.text
        except Exception as exc:  # recorded, and the sender carries on: a dead thread would only stall the load
            status, body = 0, f"{type(exc).__name__}: {exc}"
        reply = Reply(kind, user, sent, time.monotonic(), status, body, ack_s)
        with self._lock:
            self.replies.append(reply)
        return reply

    # -- admins -------------------------------------------------------------------

    def _decide_loop(self) -> None:
        tried: dict[int, float] = {}  # when each request's buttons were last clicked
        tries: dict[int, int] = {}
        busy: set[int] = set()
        with ThreadPoolExecutor(self.deciders, thread_name_prefix="admin") as pool:
            while not self._halt.is_set():
                messages, _, _, _ = self.stack.slack.snapshot()
                now = time.monotonic()
                for m in messages:
                    team = self.by_channel.get(m.channel)
                    rid = _pending_request(m.blocks) if team else None
                    # Still showing its buttons: the click did not take, or the update is slow to come; try again, less and less often.
                    if rid is None or rid in busy or now - tried.get(rid, -1e9) < min(60, self.reclick_after * 2 ** (tries.get(rid, 1) - 1)):
                        continue
                    tried[rid], tries[rid] = now, tries.get(rid, 0) + 1
                    busy.add(rid)
                    pool.submit(self._decide, team, rid, m.channel, m.ts).add_done_callback(lambda _f, rid=rid: busy.discard(rid))
                time.sleep(0.1)

    def _decide(self, team: Team, rid: int, channel: str, ts: str) -> None:
        sender = self.stack.sender
        admin = team.admins[rid % len(team.admins)]
        if rid % self.deny_every == 0:
            self._post("deny", admin, lambda: sender.click(admin, DENY, str(rid), channel=channel, message_ts=ts))
            form = self._deny_form(rid)
            if form is not None:
                self._post("reason", admin, lambda: sender.submit(admin, form, {"reason": f"Not this quarter (request {rid})."}))
            return
        clickers = team.admins if rid % self.double_click_every == 0 else [admin]
        go = threading.Barrier(len(clickers))

        def click(user: str) -> None:
            go.wait()
            self._post("approve", user, lambda: sender.click(user, APPROVE, str(rid), channel=channel, message_ts=ts))

        both = [threading.Thread(target=click, args=(u,)) for u in clickers]
        for t in both:
            t.start()
        for t in both:
            t.join()

    def _deny_form(self, rid: int) -> dict | None:
        _, _, views, _ = self.stack.slack.snapshot()
        forms = [v for v in views.values() if v.get("callback_id") == DENY_FORM and json.loads(v.get("private_metadata") or "{}").get("request_id") == rid]
        return max(forms, key=lambda v: v["id"]) if forms else None

    # -- what happened ------------------------------------------------------------

    def replies_of(self, kind: str, start: float = 0.0, end: float = float("inf")) -> list[Reply]:
        with self._lock:
            return [r for r in self.replies if r.kind == kind and r.during(start, end)]

    @property
    def asked(self) -> set[tuple[str, str]]:
        return {(a.user, a.name) for a in self.asks}


def _pending_request(blocks: list[dict]) -> int | None:
    for block in blocks:
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                if element.get("action_id") == APPROVE:
                    return int(element["value"])
    return None
