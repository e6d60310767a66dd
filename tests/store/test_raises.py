"""Temporary budget raises: asked for, applied at once when approved, and falling back by themselves at their end.

Each test asks what a gateway hears (`/v1/authz`) and what is announced as paused, through
the store's own operations and the clock's jobs, across period rollovers where it matters.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from store import budgets, raises
from store.alerts import evaluate_thresholds
from store.authz import decide, load_key_state
from store.decisions import decide_request
from store.errors import InvalidInput, LimitReached, PermissionDenied
from store.models import Action, AuditEvent, Project, Request
from store.money import parse_money
from store.rollover import roll_over_periods
from store.secrets import hash_secret
from store.types import ProjectStatus, RequestState, Role
from tests import factories as f

USD = parse_money
UTC = timezone.utc


def heard(db, secret: str) -> tuple[int, str]:
    with db.session() as s:
        decision = decide(load_key_state(s, hash_secret(secret)), "127.0.0.1", None)
    return decision.status, decision.reason


def status(db, ws: int, slug: str = "search") -> ProjectStatus:
    with db.session() as s:
        return s.scalars(select(Project.status).where(Project.workspace_id == ws, Project.slug == slug)).one()


def audited(db, ws: int, action: str, outcome: str = "ok") -> list[dict]:
    with db.session() as s:
        found = select(AuditEvent).where(AuditEvent.workspace_id == ws, AuditEvent.action == action, AuditEvent.outcome == outcome)
        return [e.details for e in s.scalars(found.order_by(AuditEvent.seq))]


def emitted(db, ws: int, kind: str) -> list[dict]:
    with db.session() as s:
        return [a.payload for a in s.scalars(select(Action).where(Action.workspace_id == ws, Action.kind == kind).order_by(Action.created_at))]


def setup(db, budget: str = "$10", period: str = "monthly", cap: str | None = None):
    """A workspace with project `search` on ``budget``, a Developer's key in it, and two Admins."""
    ws = f.workspace(db, "shop", "production")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    if cap:
        db.run(budgets.set_workspace_cap, admin, ws, USD(cap))
    f.project(db, ws, "search", budget=USD(budget), period=period)
    key_id, secret = f.key(db, ws, dev, "bot", project="search")
    return ws, admin, dev, key_id, secret


def grant(db, ws, dev, admin, amount: str, hours: int, slug: str = "search") -> Request:
    req = db.run(raises.request_budget_raise, dev, ws, slug, USD(amount), hours, reason="launch week")
    db.run(decide_request, admin, req.id, approve=True)
    return req


def test_an_approved_raise_resumes_a_project_its_budget_paused_at_once(db):
    ws, admin, dev, key_id, secret = setup(db)
    assert f.spend(db, key_id, USD("$10")).paused == ["project:search"]
    req = db.run(raises.request_budget_raise, dev, ws, "search", USD("$5"), 72, reason="launch week")
    assert heard(db, secret) == (402, "project_budget")  # asking changes nothing
    db.run(decide_request, admin, req.id, approve=True)
    assert heard(db, secret) == (200, "ok")
    assert status(db, ws) is ProjectStatus.ACTIVE
    [raised] = audited(db, ws, "budget.raise")
    assert (raised["amount_micros"], raised["budget_micros"], raised["request"]) == (USD("$5"), USD("$10"), req.id)
    assert [p["event"] for p in emitted(db, ws, "announce_raise")] == ["start"]
    assert emitted(db, ws, "resume_project")[-1]["why"].startswith("a temporary raise of $5.00 until ")
    lines = {line.name: line for line in db.run(budgets.budget_overview, admin, ws)}
    assert (lines["search"].limit_micros, lines["search"].raised_micros) == (USD("$15"), USD("$5"))


def test_a_raise_falls_back_by_itself_at_its_end_and_the_clock_announces_it_once(db, clock):
    ws, admin, dev, key_id, secret = setup(db)
    f.spend(db, key_id, USD("$10"))
    grant(db, ws, dev, admin, "$5", 2)
    assert f.spend(db, key_id, USD("$3")).paused == []  # $13 of $15
    clock.shift(timedelta(hours=2))
    # Ended: a gateway hears it before the clock has noticed (the end is a time, not a flag).
    assert heard(db, secret) == (402, "project_budget")
    assert db.run(raises.end_raises) == 1
    assert status(db, ws) is ProjectStatus.PAUSED
    [ended] = audited(db, ws, "budget.raise_end")
    assert ended["amount_micros"] == USD("$5")
    assert [p["event"] for p in emitted(db, ws, "announce_raise")] == ["start", "end"]
    pauses = audited(db, ws, "project.pause")
    assert pauses[-1]["reason"] == "budget of $10.00 spent"
    assert db.run(raises.end_raises) == 0  # idempotent: each end once
    assert len(audited(db, ws, "budget.raise_end")) == 1 and len(emitted(db, ws, "announce_raise")) == 2


def test_the_end_of_a_raise_leaves_alone_a_project_still_within_its_budget(db, clock):
    ws, admin, dev, key_id, secret = setup(db)
    f.spend(db, key_id, USD("$4"))
    grant(db, ws, dev, admin, "$5", 1)
    clock.shift(timedelta(hours=1, seconds=1))
    assert db.run(raises.end_raises) == 1
    assert status(db, ws) is ProjectStatus.ACTIVE and heard(db, secret) == (200, "ok")
    assert audited(db, ws, "project.pause") == []


@pytest.mark.parametrize(
    ("period", "granted", "hours", "in_the_new_period", "ends"),
    [
        # granted on the 30th for 3 days: it still counts on the 1st, against January's spend, and ends on the 2nd
        ("monthly", datetime(2026, 12, 30, 12, 0, tzinfo=UTC), 72, datetime(2027, 1, 1, 0, 30, tzinfo=UTC), datetime(2027, 1, 2, 12, 0, tzinfo=UTC)),
        # a daily budget's raise granted on the evening of 28 February 2028 counts on the leap day too
        ("daily", datetime(2028, 2, 28, 20, 0, tzinfo=UTC), 12, datetime(2028, 2, 29, 0, 0, 1, tzinfo=UTC), datetime(2028, 2, 29, 8, 0, tzinfo=UTC)),
        # and a monthly one from the 28th of a leap February past the 29th into March
        ("monthly", datetime(2028, 2, 28, 12, 0, tzinfo=UTC), 48, datetime(2028, 3, 1, 0, 5, tzinfo=UTC), datetime(2028, 3, 1, 12, 0, tzinfo=UTC)),
    ],
    ids=["new-year", "leap-day-daily", "leap-february-into-march"],
)
def test_a_raise_outlives_a_period_rollover_and_ends_against_the_new_periods_spend(db, clock, period, granted, hours, in_the_new_period, ends):
    clock.move_to(granted)
    ws, admin, dev, key_id, secret = setup(db, period=period)
    f.spend(db, key_id, USD("$10"))
    grant(db, ws, dev, admin, "$5", hours)
    assert heard(db, secret) == (200, "ok")
    clock.move_to(in_the_new_period)
    db.run(roll_over_periods)
    # The new period's spend goes past the budget as set, within budget and raise: nothing pauses.
    assert f.spend(db, key_id, USD("$12")).paused == []
    assert db.run(evaluate_thresholds).paused == []
    assert heard(db, secret) == (200, "ok")
    clock.move_to(ends - timedelta(seconds=1))
    assert db.run(raises.end_raises) == 0 and heard(db, secret) == (200, "ok")
    clock.move_to(ends + timedelta(seconds=5))  # the test's clock ticks: the raise began a moment after ``granted``
    assert heard(db, secret) == (402, "project_budget")
    assert db.run(raises.end_raises) == 1
    assert status(db, ws) is ProjectStatus.PAUSED
    [ended] = audited(db, ws, "budget.raise_end")
    assert ends <= datetime.fromisoformat(ended["ended"]) < ends + timedelta(seconds=5)


def test_granting_and_ending_a_raise_tell_the_gateways_caches_of_its_workspace(db, clock):
    ws, admin, dev, key_id, secret = setup(db)
    req = db.run(raises.request_budget_raise, dev, ws, "search", USD("$5"), 1, reason="launch week")
    told: list[set[int]] = []
    db.on_authz_changes(told.append)
    db.run(decide_request, admin, req.id, approve=True)  # the project was never paused: only the raise row changes
    clock.shift(timedelta(hours=1, seconds=1))
    db.run(raises.end_raises)
    assert [ws in changed for changed in told] == [True, True]


def test_two_overlapping_raises_add_up_and_fall_back_one_at_a_time(db, clock):
    ws, admin, dev, key_id, secret = setup(db)
    f.spend(db, key_id, USD("$10"))
    grant(db, ws, dev, admin, "$5", 24)
    clock.shift(timedelta(hours=1))
    grant(db, ws, dev, admin, "$10", 72)
    assert f.spend(db, key_id, USD("$14")).paused == []  # $24 of 10 + 5 + 10
    clock.shift(timedelta(hours=24))  # the first has ended: $24 of $20
    assert heard(db, secret) == (402, "project_budget")
    assert db.run(raises.end_raises) == 1
    assert status(db, ws) is ProjectStatus.PAUSED
    assert emitted(db, ws, "pause_project")[-1]["reason"] == "budget of $10.00 and raises of $10.00 spent"
    grant(db, ws, dev, admin, "$10", 1)  # a third lifts it again
    assert status(db, ws) is ProjectStatus.ACTIVE and heard(db, secret) == (200, "ok")
    clock.shift(timedelta(hours=72))
    assert db.run(raises.end_raises) == 2
    assert [e["amount_micros"] for e in audited(db, ws, "budget.raise_end")] == [USD("$5"), USD("$10"), USD("$10")]
    assert status(db, ws) is ProjectStatus.PAUSED


def test_spend_reaching_the_raised_limit_pauses_and_alerts_against_it(db):
    ws, admin, dev, key_id, secret = setup(db)
    grant(db, ws, dev, admin, "$10", 24)
    result = f.spend(db, key_id, USD("$10"))
    assert [c.threshold for c in result.crossings] == [50] and result.paused == []  # $10 of $20
    assert [c.limit_micros for c in result.crossings] == [USD("$20")]
    assert f.spend(db, key_id, USD("$10")).paused == ["project:search"]
    assert emitted(db, ws, "pause_project")[-1]["reason"] == "budget of $10.00 and raises of $10.00 spent"


def test_the_periodic_threshold_check_does_not_pause_a_raised_project(db):
    ws, admin, dev, key_id, secret = setup(db)
    f.spend(db, key_id, USD("$12"))
    grant(db, ws, dev, admin, "$5", 24)
    assert db.run(evaluate_thresholds).paused == []
    assert status(db, ws) is ProjectStatus.ACTIVE and heard(db, secret) == (200, "ok")


def test_a_manual_pause_outlasts_a_raise(db):
    ws, admin, dev, key_id, secret = setup(db)
    db.run(budgets.pause_project, admin, ws, "search", "audit week")
    grant(db, ws, dev, admin, "$5", 24)
    assert status(db, ws) is ProjectStatus.PAUSED and heard(db, secret) == (403, "project_paused")


def test_an_admin_resume_counts_the_raises(db):
    ws, admin, dev, key_id, secret = setup(db)
    f.spend(db, key_id, USD("$11"))
    grant(db, ws, dev, admin, "$5", 24)
    db.run(budgets.pause_project, admin, ws, "search", "checking")
    db.run(budgets.resume_project, admin, ws, "search")  # $11 of $15: not spent
    assert heard(db, secret) == (200, "ok")


def test_a_raise_must_fit_in_the_cap_and_a_refused_one_stays_pending(db):
    ws, admin, dev, key_id, secret = setup(db, cap="$20")
    f.project(db, ws, "chat", budget=USD("$6"))
    req = db.run(raises.request_budget_raise, dev, ws, "search", USD("$5"), 24, reason="launch")
    with pytest.raises(LimitReached, match=r"they hold \$16.00 now, so a raise on `search` can be at most \$4.00, not \$5.00"):
        db.run(decide_request, admin, req.id, approve=True)
    with db.session() as s:
        assert s.get(Request, req.id).state is RequestState.PENDING
    assert audited(db, ws, "budget.raise") == []
    assert audited(db, ws, "budget.raise", "denied")[0]["reason"] == "over cap"
    grant(db, ws, dev, admin, "$4", 24)
    # While it lasts the raise holds its room in the cap, as a budget does.
    with pytest.raises(LimitReached, match=r"with \$4.00 of temporary raises"):
        db.run(budgets.set_project_budget, admin, ws, "chat", USD("$7"))


@pytest.mark.parametrize(
    ("amount", "hours", "reason", "slug", "message"),
    [
        ("$0", 24, "x", "search", "above zero"),
        ("$5", 0, "x", "search", "from 1 hour to 31 days"),
        ("$5", 32 * 24, "x", "search", "from 1 hour to 31 days"),
        ("$5", 24, "  ", "search", "Say why"),
        ("$5", 24, "x", "open", "has no budget to raise"),
    ],
)
def test_a_raise_request_says_what_is_wrong(db, amount, hours, reason, slug, message):
    ws, admin, dev, key_id, secret = setup(db)
    f.project(db, ws, "open")
    with pytest.raises(InvalidInput, match=message):
        db.run(raises.request_budget_raise, dev, ws, slug, USD(amount), hours, reason=reason)


def test_only_who_may_change_budgets_may_ask_for_a_raise(db):
    ws, admin, dev, key_id, secret = setup(db)
    viewer = f.member(db, ws, Role.VIEWER)
    with pytest.raises(PermissionDenied):
        db.run(raises.request_budget_raise, viewer, ws, "search", USD("$5"), 24, reason="x")
    with db.session() as s:
        outcomes = list(s.scalars(select(AuditEvent.outcome).where(AuditEvent.workspace_id == ws, AuditEvent.action == "request.budget_raise")))
    assert outcomes == ["denied"]
