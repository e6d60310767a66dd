"""Races on a real store: many threads, each with its own session and connection, released together.

Each thread calls ``Database.run`` exactly as a Slack handler, a worker or the usage
endpoint would, so the transactions really overlap; a Barrier lines them up.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from store import audit, budgets, keys, members
from store.errors import Conflict, LimitReached
from store.models import Action, AlertSent, AuditEvent, Member, Project, Request, SpendTotal, UsageEvent
from store.money import parse_money
from store.periods import TRACKED, period_start
from store.permissions import Actor
from store.decisions import decide_request
from store.types import BudgetKind, MemberStatus, Period, ProjectStatus, RequestState, Role, Scope
from store.ingest import UsageIn, ingest_usage
from tests import factories as f

ADMIN_CAP_MESSAGE = "already has 5 Admins, the most a workspace may have (5)"


def race(calls: list[Callable[[], object]], timeout: float = 30) -> list[object]:
    """Run the calls in threads released at once; each outcome is a result or the exception raised."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(i: int, call: Callable[[], object]) -> None:
        barrier.wait(timeout=timeout)
        try:
            outcomes[i] = call()
        except Exception as exc:  # the outcome is what the test asserts on
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i, call), daemon=True) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    stuck = sum(t.is_alive() for t in threads)
    assert not stuck, f"{stuck} of {len(calls)} transactions still waiting after {timeout}s: a lock wait that never ends"
    return outcomes


def split(outcomes: list[object], expected: type[Exception]) -> tuple[list[object], list[Exception]]:
    """Winners and expected refusals; anything else (a deadlock, a unique violation) fails the test as itself."""
    for o in outcomes:
        if isinstance(o, Exception) and not isinstance(o, expected):
            raise o
    return [o for o in outcomes if not isinstance(o, Exception)], [o for o in outcomes if isinstance(o, Exception)]


def all_won(outcomes: list[object]) -> list[object]:
    won, _ = split(outcomes, ())
    return won


def count(db, stmt) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(stmt.subquery()))


def admins(db, ws: int) -> int:
    return count(db, select(Member.id).where(Member.workspace_id == ws, Member.role == Role.ADMIN, Member.status == MemberStatus.ACTIVE))


def denials(db, ws: int, action: str) -> int:
    return count(db, select(AuditEvent.id).where(AuditEvent.workspace_id == ws, AuditEvent.action == action, AuditEvent.outcome == "denied"))


def assert_chain_verifies(db, ws: int) -> None:
    with db.session() as s:
        verification = audit.verify_chain(s, ws)
    assert verification.ok, verification.summary


# --- the Admin cap ------------------------------------------------------------------------


def promote_twenty_developers(db) -> tuple[int, list[object]]:
    ws = f.workspace(db)
    boss = f.member(db, ws, Role.ADMIN)
    devs = [f.member_id(db, ws, f.member(db, ws, Role.DEVELOPER)) for _ in range(20)]
    return ws, race([lambda m=m: db.run(members.change_role, boss, ws, m, Role.ADMIN) for m in devs])


def assert_cap_held(db, ws: int, outcomes: list[object]) -> None:
    won, lost = split(outcomes, LimitReached)
    assert (len(won), len(lost)) == (4, 16)  # one Admin already, four seats left
    assert admins(db, ws) == 5
    for exc in lost:
        assert ADMIN_CAP_MESSAGE in str(exc)
    assert denials(db, ws, "role.admin") == 16
    assert_chain_verifies(db, ws)


@pytest.mark.postgres
def test_twenty_simultaneous_promotions_leave_exactly_five_admins(pg_db):
    ws, outcomes = promote_twenty_developers(pg_db)
    assert_cap_held(pg_db, ws, outcomes)


@pytest.mark.postgres
def test_twenty_simultaneous_admin_additions_leave_exactly_five_admins(pg_db):
    ws = f.workspace(pg_db)
    boss = f.member(pg_db, ws, Role.ADMIN)
    newcomers = [f.user_id() for _ in range(20)]
    outcomes = race([lambda u=u: pg_db.run(members.add_member, boss, ws, role=Role.ADMIN, slack_user_id=u) for u in newcomers])
    assert_cap_held(pg_db, ws, outcomes)
    added = count(pg_db, select(Member.id).where(Member.workspace_id == ws, Member.slack_user_id.in_(newcomers)))
    assert added == 4  # a refused addition leaves no member row behind


def test_twenty_simultaneous_promotions_leave_exactly_five_admins_on_sqlite(sqlite_db):
    ws, outcomes = promote_twenty_developers(sqlite_db)
    assert_cap_held(sqlite_db, ws, outcomes)


# --- two admins, one request ----------------------------------------------------------------


def key_request_with_two_admins(db, slug: str = "acme") -> tuple[int, Request, Actor, Actor]:
    ws = f.workspace(db, slug, "production")
    first, second = f.member(db, ws, Role.ADMIN), f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="search-bot")
    assert req.state is RequestState.PENDING
    return ws, req, first, second


def provision_actions(db, request_id: int) -> int:
    return count(db, select(Action.id).where(Action.request_id == request_id, Action.kind == "provision_key"))


def decisions(db, ws: int, request_id: int) -> int:
    return count(
        db,
        select(AuditEvent.id).where(
            AuditEvent.workspace_id == ws, AuditEvent.resource == f"request:{request_id}", AuditEvent.action.in_(["request.approve", "request.deny"])
        ),
    )


def assert_loser_names_winner(db, request_id: int, lost: Conflict) -> Request:
    with db.session() as s:
        req = s.get(Request, request_id)
        winner, at = req.decided_by.slack_user_id, req.decided_at
    assert winner in str(lost) and lost.decided_by == winner
    assert f"at {at:%H:%M} UTC on {at:%Y-%m-%d}" in str(lost) and lost.decided_at == at
    assert f"already {req.state.value} by" in str(lost)
    return req


@pytest.mark.postgres
def test_two_admins_approving_at_once_one_wins_and_one_key_is_provisioned(pg_db):
    ws, req, first, second = key_request_with_two_admins(pg_db)
    outcomes = race([lambda a=a: pg_db.run(decide_request, a, req.id, approve=True) for a in (first, second)])
    [won], [lost] = split(outcomes, Conflict)
    decided = assert_loser_names_winner(pg_db, req.id, lost)
    assert decided.state is RequestState.APPROVED and decided.decided_by_id == won.request.decided_by_id
    assert provision_actions(pg_db, req.id) == 1
    assert decisions(pg_db, ws, req.id) == 1
    assert_chain_verifies(pg_db, ws)


@pytest.mark.postgres
def test_approve_and_deny_at_once_one_decision_stands(pg_db):
    # Which of the two wins is up to the scheduler; a few rounds make both orders likely.
    for attempt in range(6):
        ws, req, approver, denier = key_request_with_two_admins(pg_db, f"try-{attempt}")
        outcomes = race(
            [
                lambda: pg_db.run(decide_request, approver, req.id, approve=True),
                lambda: pg_db.run(decide_request, denier, req.id, approve=False, note="use the shared key"),
            ]
        )
        [won], [lost] = split(outcomes, Conflict)
        decided = assert_loser_names_winner(pg_db, req.id, lost)
        assert decided.state is (RequestState.APPROVED if won.approved else RequestState.DENIED)
        assert decided.decided_by.slack_user_id == (approver if won.approved else denier).slack_user_id
        assert provision_actions(pg_db, req.id) == (1 if won.approved else 0)
        # the decision shown by one action: provision_key for the approval, request_decided for the denial
        shown_by = select(Action.id).where(Action.request_id == req.id, Action.kind.in_(["request_decided", "provision_key"]))
        assert count(pg_db, shown_by) == 1
        assert decisions(pg_db, ws, req.id) == 1
        assert_chain_verifies(pg_db, ws)


# --- spend against one budget ---------------------------------------------------------------


def project_with_key(db, budget: int) -> tuple[int, int, int]:
    ws = f.workspace(db, "lab", "development")  # keys within the preset are approved at once
    dev = f.member(db, ws, Role.DEVELOPER)
    project_id = f.project(db, ws, "search", budget=budget)
    key_id, _ = f.key(db, ws, dev, "bot", project="search")
    return ws, project_id, key_id


def totals(db, scope: Scope, scope_id: int, at: datetime) -> dict[str, int]:
    with db.session() as s:
        return {
            p.value: s.scalar(
                select(SpendTotal.amount_micros).where(
                    SpendTotal.scope == scope, SpendTotal.scope_id == scope_id, SpendTotal.period == p, SpendTotal.period_start == period_start(p, at)
                )
            )
            for p in TRACKED
        }


def assert_totals(db, ws: int, project_id: int, key_id: int, at: datetime, total: int) -> None:
    for scope, scope_id in ((Scope.PROJECT, project_id), (Scope.WORKSPACE, ws)):
        assert totals(db, scope, scope_id, at) == {p.value: total for p in TRACKED}, scope
    # a key's total is kept for its limit period only (monthly unless its template says otherwise)
    assert totals(db, Scope.KEY, key_id, at) == {p.value: (total if p is Period.MONTHLY else None) for p in TRACKED}


VARIED = [parse_money("$1") + i * 37_123 for i in range(50)]  # $95.475675 in all
TWO_DOLLARS = [parse_money("$2")] * 50  # $100 in all


@pytest.mark.postgres
@pytest.mark.parametrize(
    "amounts, budget",
    [
        pytest.param(VARIED, parse_money("$80"), id="past-the-budget"),
        pytest.param(TWO_DOLLARS, parse_money("$100"), id="exactly-the-budget"),
        pytest.param(TWO_DOLLARS, parse_money("$100") + 1, id="one-micro-short"),
    ],
)
def test_fifty_simultaneous_ingests_count_every_amount_once_and_pause_once(pg_db, amounts, budget):
    ws, project_id, key_id = project_with_key(pg_db, budget)
    at = datetime.now(timezone.utc)
    events = [UsageIn(external_id=f"ev-{i}", key_id=key_id, amount_micros=amount, occurred_at=at) for i, amount in enumerate(amounts)]
    results = all_won(race([lambda e=e: pg_db.run(ingest_usage, [e]) for e in events]))
    total = sum(amounts)
    paused = total >= budget  # reaching the budget exactly counts as reaching it
    reached = [t for t in (50, 80, 100) if total * 100 >= t * budget]

    assert [len(r.accepted) for r in results] == [1] * 50
    assert_totals(pg_db, ws, project_id, key_id, at, total)

    with pg_db.session() as s:
        assert (s.get(Project, project_id).status is ProjectStatus.PAUSED) is paused
        pause_events = s.scalar(select(func.count()).where(AuditEvent.workspace_id == ws, AuditEvent.action == "project.pause"))
        pause_actions = s.scalar(select(func.count()).where(Action.workspace_id == ws, Action.kind == "pause_project"))
        alerted = sorted(s.scalars(select(AlertSent.threshold).where(AlertSent.budget_kind == BudgetKind.PROJECT, AlertSent.budget_id == project_id)))
        posted = [a.payload for a in s.scalars(select(Action).where(Action.workspace_id == ws, Action.kind == "post_alert"))]
    assert sum("project:search" in r.paused for r in results) == int(paused)
    assert (pause_events, pause_actions) == (int(paused), int(paused))
    assert alerted == reached
    # One alert per batch names every threshold that batch crossed: together, each exactly once.
    assert sorted(t for p in posted for t in p["thresholds"]) == reached
    assert sorted(c.threshold for r in results for c in r.crossings) == sorted(p["threshold"] for p in posted)
    assert_chain_verifies(pg_db, ws)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "size, rounds, reverse_one",
    [
        pytest.param(100, 1, False, id="same-order"),
        # Before ingest locked the workspace first, opposite orders deadlocked about one
        # time in three on the usage_events unique index; a few rounds catch that.
        pytest.param(500, 6, True, id="opposite-orders"),
    ],
)
def test_same_batch_sent_twice_at_once_counts_once(pg_db, size, rounds, reverse_one):
    ws, project_id, key_id = project_with_key(pg_db, None)
    at = datetime.now(timezone.utc)
    total = 0
    for attempt in range(rounds):
        batch = [UsageIn(external_id=f"sync-{attempt}-{i}", key_id=key_id, amount_micros=10_000 + i, occurred_at=at) for i in range(size)]
        second = batch[::-1] if reverse_one else batch
        results = all_won(race([lambda: pg_db.run(ingest_usage, batch), lambda: pg_db.run(ingest_usage, second)]))
        total += sum(e.amount_micros for e in batch)

        accepted = Counter(x for r in results for x in r.accepted)
        assert accepted == Counter(e.external_id for e in batch)  # every event by exactly one of the two
        assert sorted(x for r in results for x in r.duplicates) == sorted(e.external_id for e in batch)
    assert count(pg_db, select(UsageEvent.external_id).where(UsageEvent.workspace_id == ws)) == size * rounds
    assert_totals(pg_db, ws, project_id, key_id, at, total)


@pytest.mark.postgres
def test_spend_and_budget_changes_at_once_neither_deadlock_nor_miss_a_pause(pg_db):
    ws, project_id, key_id = project_with_key(pg_db, parse_money("$1000"))
    admin = f.member(pg_db, ws, Role.ADMIN)
    at = datetime.now(timezone.utc)
    dollar = parse_money("$1")
    for attempt in range(6):
        before = 12 * dollar * attempt
        spend = [lambda i=i: pg_db.run(ingest_usage, [UsageIn(f"r{attempt}-{i}", key_id, dollar, at)]) for i in range(12)]
        # budgets on both sides of where this round's spend ends, so pauses and resumes interleave
        change = [lambda b=b: pg_db.run(budgets.set_project_budget, admin, ws, "search", before + b * dollar) for b in (3, 6, 11, 15)]
        all_won(race(spend + change))
        with pg_db.session() as s:
            proj = s.get(Project, project_id)
        spent = totals(pg_db, Scope.PROJECT, project_id, at)["monthly"]
        assert spent == before + 12 * dollar
        # whatever order they committed in, the last word matches the numbers
        assert (proj.status is ProjectStatus.PAUSED) is (spent >= proj.budget_micros), (spent, proj.budget_micros, proj.status)
    assert_chain_verifies(pg_db, ws)
