"""What must hold after any load, with or without faults: ``check_invariants``.

It reads the store directly, the fake OpenRouter's keys and the fake Slack's messages
and write history, and counts what was lost (something that should exist and does not)
and what was doubled (something that exists more often than the operations imply).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select

from store.audit import verify_chain
from store.db import Database
from store.models import Action, ApiKey, AuditEvent, Member, Request
from store.types import ActionStatus, KeyStatus, RequestState
from tests.reliability.load_driver import APPROVE, Team
from tests.reliability.load_fakes import RecordingSlackAPI
from tests.fakes.openrouter import FakeOpenRouter

APPROVAL = re.compile(r"^API key request #(\d+):")
OUTCOME = re.compile(r"^Your request #(\d+) \(.*\) was (\w+)\.$")
READY = re.compile(r"^Your key (\S+) in (\S+) is ready\.$")
FINAL = {"approved": "*Approved*", "denied": "*Denied*"}


@dataclass
class Tally:
    requests: int = 0
    approved: int = 0
    denied: int = 0
    keys: int = 0
    live_at_provider: int = 0
    failed_actions: int = 0
    retried_actions: int = 0  # claimed more than once: a redelivery, a retry, or a lapsed lease
    audit: Counter = field(default_factory=Counter)
    lost: int = 0
    doubled: int = 0
    problems: list[str] = field(default_factory=list)

    def lose(self, n: int, what: str) -> None:
        self.lost += n
        self.problems.append(f"lost {n}: {what}")

    def double(self, n: int, what: str) -> None:
        self.doubled += n
        self.problems.append(f"doubled {n}: {what}")

    def wrong(self, what: str) -> None:
        self.problems.append(what)

    def assert_holds(self, where_to_look: str = "") -> None:
        assert not self.problems, f"{len(self.problems)} invariant(s) broken ({where_to_look}):\n" + "\n".join(self.problems[:60])

    def summary(self) -> str:
        return (
            f"{self.requests} requests ({self.approved} approved, {self.denied} denied), {self.keys} keys, "
            f"{self.live_at_provider} live at OpenRouter, {self.retried_actions} actions claimed more than once, "
            f"{self.failed_actions} failed; lost {self.lost}, doubled {self.doubled}"
        )


def check_invariants(db: Database, teams: list[Team], asked: set[tuple[str, str]], slack: RecordingSlackAPI, openrouter: FakeOpenRouter) -> Tally:
    """Every request final once; one key per approval, live at the provider; audit counts exact and chains intact; each Slack message posted once."""
    tally = Tally()
    ids = [t.id for t in teams]
    with db.session() as s:
        reqs = list(s.scalars(select(Request).where(Request.workspace_id.in_(ids)).order_by(Request.id)))
        users = dict(s.execute(select(Member.id, Member.slack_user_id).where(Member.workspace_id.in_(ids))).all())
        actions = list(s.scalars(select(Action).where(Action.workspace_id.in_(ids))))
        keys = list(s.scalars(select(ApiKey).where(ApiKey.workspace_id.in_(ids))))
        events = {t.id: list(s.execute(select(AuditEvent.action, AuditEvent.outcome).where(AuditEvent.workspace_id == t.id, AuditEvent.seq > t.audit_seq)).all()) for t in teams}
        chains = {t.slug: verify_chain(s, t.id) for t in teams}

    # Every request asked for exists once and ended in one final state.
    tally.requests = len(reqs)
    seen = Counter((users[r.requester_id], r.payload["name"]) for r in reqs)
    for ask in sorted(asked - set(seen)):
        tally.lose(1, f"request {ask} was never recorded")
    for ask, n in seen.items():
        if ask not in asked:
            tally.double(n, f"request {ask} was never asked for")
        elif n > 1:
            tally.double(n - 1, f"request {ask} recorded {n} times")
    for r in reqs:
        if r.state not in (RequestState.APPROVED, RequestState.DENIED):
            tally.lose(1, f"request #{r.id} ended {r.state.value}, not approved or denied")
    tally.approved = sum(r.state is RequestState.APPROVED for r in reqs)
    tally.denied = sum(r.state is RequestState.DENIED for r in reqs)

    # Every action finished: done, or failed with a reason a person can read.
    for a in actions:
        if a.status is ActionStatus.PENDING:
            tally.lose(1, f"action {a.kind} {a.id} still pending after {a.attempts} attempt(s)")
        elif a.status is ActionStatus.FAILED and not (a.error or "").strip():
            tally.wrong(f"action {a.kind} {a.id} failed without a reason")
    tally.failed_actions = sum(a.status is ActionStatus.FAILED for a in actions)
    tally.retried_actions = sum(a.attempts > 1 for a in actions)

    # One key per approved request, and at OpenRouter exactly one live key made by its action.
    provisions = defaultdict(list)
    for a in actions:
        if a.kind == "provision_key":
            provisions[a.request_id].append(a)
    keys_of = defaultdict(list)
    for k in keys:
        keys_of[k.request_id].append(k)
    tally.keys = len(keys)
    provider_of = {t.id: t.provider for t in teams}
    for r in reqs:
        made = keys_of.get(r.id, [])
        if r.state is not RequestState.APPROVED:
            if made or provisions.get(r.id):
                tally.double(len(made), f"request #{r.id} is {r.state.value} yet has {len(made)} key(s) and {len(provisions.get(r.id, []))} provision action(s)")
            continue
        if len(provisions.get(r.id, [])) != 1:
            tally.wrong(f"approved request #{r.id} has {len(provisions.get(r.id, []))} provision actions")
        if len(made) != 1:
            (tally.lose(1, f"approved request #{r.id} has no key") if not made else tally.double(len(made) - 1, f"approved request #{r.id} has {len(made)} keys"))
            continue
        key = made[0]
        if key.status is not KeyStatus.ACTIVE:
            tally.wrong(f"key #{key.id} of request #{r.id} is {key.status.value}")
        if provider_of[r.workspace_id] == "openrouter" and provisions.get(r.id):
            named = openrouter.named(f"purser-{provisions[r.id][0].id}")
            if len(named) != 1:
                (tally.lose(1, f"request #{r.id}: no key at OpenRouter") if not named else tally.double(len(named) - 1, f"request #{r.id}: {len(named)} keys at OpenRouter"))
                continue
            at = named[0]
            if at["hash"] != key.provider_ref or hashlib.sha256(openrouter.secrets[at["hash"]].encode()).hexdigest() != key.secret_hash:
                tally.wrong(f"request #{r.id}: the key stored is not the key OpenRouter made")
            if at["disabled"]:
                tally.wrong(f"request #{r.id}: its OpenRouter key is disabled")
    refs = {k.provider_ref for k in keys if k.provider == "openrouter"}
    orphans = [k["name"] for k in openrouter.keys.values() if k["hash"] not in refs]
    if orphans:
        tally.double(len(orphans), f"keys at OpenRouter no stored key refers to: {orphans[:5]}")
    tally.live_at_provider = sum(not k["disabled"] and k["hash"] in refs for k in openrouter.keys.values())

    # The audit log holds exactly the events the operations imply, and every chain verifies.
    failed_in = Counter(a.workspace_id for a in actions if a.status is ActionStatus.FAILED)
    for t in teams:
        mine = [r for r in reqs if r.workspace_id == t.id]
        approved = sum(r.state is RequestState.APPROVED for r in mine)
        expected = Counter({"request.open": len(mine), "request.approve": approved, "request.deny": len(mine) - approved, "key.create": approved, "action.fail": failed_in[t.id]})
        actual = Counter(action for action, outcome in events[t.id] if outcome == "ok")
        tally.audit.update(actual)
        for name in sorted(set(expected) | set(actual)):
            diff = actual[name] - expected[name]
            if diff > 0:
                tally.double(diff, f"{t.slug}: {actual[name]} {name} audit events where the operations imply {expected[name]}")
            elif diff < 0:
                tally.lose(-diff, f"{t.slug}: {actual[name]} {name} audit events where the operations imply {expected[name]}")
        refused = [action for action, outcome in events[t.id] if outcome != "ok"]
        if refused:
            tally.wrong(f"{t.slug}: refusals audited that no one should have met: {Counter(refused)}")
        if not chains[t.slug].ok:
            tally.wrong(f"{t.slug}: {chains[t.slug].summary}")

    check_slack(tally, teams, reqs, users, keys, slack)
    return tally


def check_slack(tally: Tally, teams: list[Team], reqs: list[Request], users: dict[int, str], keys: list[ApiKey], slack: RecordingSlackAPI) -> None:
    """One post per message, updated in place in decision order, ending in the decided state."""
    messages, _, _, writes = slack.snapshot()
    if slack.invalid:
        tally.wrong(f"invalid Block Kit reached Slack: {slack.invalid[:3]}")
    approvals_channels = {t.approvals for t in teams}
    dms = {"D" + u[1:] for u in users.values()}
    approval, outcome, ready, other = defaultdict(list), defaultdict(list), defaultdict(list), []
    for m in messages:
        if m.channel in approvals_channels and (hit := APPROVAL.match(m.text)):
            approval[int(hit[1])].append(m)
        elif m.channel in dms and (hit := OUTCOME.match(m.text)):
            outcome[int(hit[1])].append(m)
        elif m.channel in dms and (hit := READY.match(m.text)):
            ready[(m.channel, hit[1])].append(m)
        elif m.channel in approvals_channels or m.channel in dms:
            other.append(m)
    history = defaultdict(list)
    for w in writes:
        history[(w.channel, w.ts)].append(w)
    for r in reqs:
        state = r.state.value
        posted = approval.get(r.id, [])
        if len(posted) != 1:
            (tally.lose(1, f"approval message of request #{r.id} never posted") if not posted else tally.double(len(posted) - 1, f"approval message of request #{r.id} posted {len(posted)} times"))
        for m in posted:
            shown = _shows(m.blocks)
            if shown != state:
                tally.wrong(f"approval message of request #{r.id} shows {shown}; the request is {state}")
            steps = [_shows(w.blocks) for w in history[(m.channel, m.ts)]]
            if steps[:1] != ["pending"] or any(a != "pending" and b != a for a, b in zip(steps, steps[1:])):
                tally.wrong(f"approval message of request #{r.id} was written out of order: {steps}")
        told = outcome.get(r.id, [])
        approved = r.state is RequestState.APPROVED
        if approved:  # its owner hears of it in the DM that offers the key, which names the approver
            if told:
                tally.double(len(told), f"request #{r.id}: an outcome DM besides the key's, posted {len(told)} times")
        elif len(told) != 1:
            (tally.lose(1, f"request #{r.id}: the requester was never told the outcome") if not told else tally.double(len(told) - 1, f"request #{r.id}: outcome DM posted {len(told)} times"))
        elif not told[0].text.endswith(f"was {state}."):
            tally.wrong(f"request #{r.id}: the outcome DM says {told[0].text!r}; the request is {state}")
        dm = "D" + users[r.requester_id][1:]
        delivered = ready.pop((dm, r.payload["name"]), [])
        want = 1 if approved else 0
        if len(delivered) < want:
            tally.lose(1, f"request #{r.id}: no 'key ready' DM")
        elif len(delivered) > want:
            tally.double(len(delivered) - want, f"request #{r.id}: {len(delivered)} 'key ready' DMs")
        elif approved and r.decided_by_id is not None and f"approved by <@{users[r.decided_by_id]}>" not in str(delivered[0].blocks):
            tally.wrong(f"request #{r.id}: its 'key ready' DM does not say who approved it")
    for (channel, name), extra in ready.items():
        tally.double(len(extra), f"'key ready' DM for {name} in {channel} that no request explains")
    if other:
        tally.wrong(f"{len(other)} message(s) no operation explains, e.g. {other[0].text[:200]!r}")


def _shows(blocks: list[dict]) -> str:
    text = str(blocks)
    if APPROVE in text:
        return "pending"
    return next((state for state, mark in FINAL.items() if mark in text), "something else")
