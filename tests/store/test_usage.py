"""Usage ingest: idempotent, attributed, totalled per period; thresholds, pauses and the period rollover."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from store import budgets, usage_reports, workspaces
from store.errors import PermissionDenied
from store.models import Action, AlertSent, AuditEvent, Project, SpendTotal, UsageEvent
from store.money import parse_money
from store.periods import EPOCH, next_period_start, period_start
from store.types import BudgetKind, Period, ProjectStatus, Role, Scope, utcnow
from store.ingest import UsageIn, ingest_usage
from store.rollover import roll_over_periods
from store.views import describe_key
from tests import factories as f

pytestmark = pytest.mark.calendar  # totals, thresholds, late events and rollover are all per period

USD = parse_money


def event(key_id: int, amount: int, external_id: str, at: datetime | None = None) -> UsageIn:
    return UsageIn(external_id=external_id, key_id=key_id, amount_micros=amount, occurred_at=at or utcnow())


def totals(db, scope: Scope, scope_id: int) -> dict[tuple[str, datetime], int]:
    with db.session() as s:
        rows = s.scalars(select(SpendTotal).where(SpendTotal.scope == scope, SpendTotal.scope_id == scope_id))
        return {(t.period.value, t.period_start): t.amount_micros for t in rows}


def project(db, ws: int, slug: str = "search") -> Project:
    with db.session() as s:
        return s.scalars(select(Project).where(Project.workspace_id == ws, Project.slug == slug)).one()


def alert_actions(db) -> list[dict]:
    with db.session() as s:
        return [a.payload for a in s.scalars(select(Action).where(Action.kind == "post_alert").order_by(Action.created_at))]


@pytest.fixture
def search(db):
    """A development workspace; a developer's key on project `search` with a $10 monthly budget."""
    ws = f.workspace(db, "shop", "development")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    f.project(db, ws, "search", budget=USD("$10"))
    key_id, _ = f.key(db, ws, dev, "bot", project="search")
    return ws, admin, dev, key_id


def test_ingest_is_idempotent_by_external_id(db, search):
    ws, _, _, key_id = search
    first = db.run(ingest_usage, [event(key_id, USD("$1"), "ev-1"), event(key_id, USD("$1"), "ev-1")])
    assert (first.accepted, first.duplicates) == (["ev-1"], ["ev-1"])
    again = db.run(ingest_usage, [event(key_id, USD("$1"), "ev-1"), event(key_id, USD("$2"), "ev-2")])
    assert (again.accepted, again.duplicates) == (["ev-2"], ["ev-1"])
    assert (again.outcome("ev-1"), again.outcome("ev-2")) == ("duplicate", "accepted")
    assert totals(db, Scope.WORKSPACE, ws)[("none", EPOCH)] == USD("$3")
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(UsageEvent)) == 2


def test_spend_is_attributed_to_key_project_and_workspace(db, search):
    ws, _, dev, key_id = search
    loose, _ = f.key(db, ws, dev, "loose")  # no project
    db.run(ingest_usage, [
        UsageIn("a", key_id, USD("$1.50"), utcnow(), model="gpt-x", prompt_tokens=100, completion_tokens=20),
        UsageIn("b", loose, USD("$0.25"), utcnow()),
    ])
    pid = project(db, ws).id
    with db.session() as s:
        a = s.scalars(select(UsageEvent).where(UsageEvent.external_id == "a")).one()
        assert (a.workspace_id, a.project_id, a.key_id, a.model, a.prompt_tokens) == (ws, pid, key_id, "gpt-x", 100)
        assert s.scalars(select(UsageEvent.project_id).where(UsageEvent.external_id == "b")).one() is None
    assert totals(db, Scope.KEY, key_id) == {("monthly", period_start(Period.MONTHLY, utcnow())): USD("$1.50")}  # the key's limit period
    assert totals(db, Scope.PROJECT, project(db, ws).id)[("none", EPOCH)] == USD("$1.50")
    assert totals(db, Scope.WORKSPACE, ws)[("none", EPOCH)] == USD("$1.75")


def test_project_and_workspace_totals_are_kept_per_day_week_month_and_lifetime(db, search):
    ws, _, _, key_id = search
    at = lambda month, day: datetime(2025, month, day, 9, tzinfo=timezone.utc)  # noqa: E731
    db.run(
        ingest_usage,
        [event(key_id, USD("$1"), "mon", at(3, 3)), event(key_id, USD("$2"), "tue", at(3, 4)), event(key_id, USD("$4"), "next-week", at(3, 11)), event(key_id, USD("$8"), "april", at(4, 1))],
        now=datetime(2025, 4, 1, 12, tzinfo=timezone.utc),
    )
    day = lambda month, d: datetime(2025, month, d, tzinfo=timezone.utc)  # noqa: E731
    # any of them may become a budget's or the cap's period, and the forecast reads the days
    assert totals(db, Scope.PROJECT, project(db, ws).id) == totals(db, Scope.WORKSPACE, ws) == {
        ("daily", day(3, 3)): USD("$1"),
        ("daily", day(3, 4)): USD("$2"),
        ("daily", day(3, 11)): USD("$4"),
        ("daily", day(4, 1)): USD("$8"),
        ("weekly", day(3, 3)): USD("$3"),  # weeks start on Monday
        ("weekly", day(3, 10)): USD("$4"),
        ("weekly", day(3, 31)): USD("$8"),
        ("monthly", day(3, 1)): USD("$7"),
        ("monthly", day(4, 1)): USD("$8"),
        ("none", EPOCH): USD("$15"),
    }
    # a key's limit period is fixed when it is made: its total is kept for that period only
    assert totals(db, Scope.KEY, key_id) == {("monthly", day(3, 1)): USD("$7"), ("monthly", day(4, 1)): USD("$8")}


def test_a_key_with_a_daily_limit_keeps_a_daily_total_and_its_limit_tells_the_caches(db):
    ws = f.workspace(db, "lab", "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(workspaces.set_role_template, f.OPERATOR, ws, Role.DEVELOPER, key_limit_micros=USD("$3"), limit_period="daily")
    key_id, _ = f.key(db, ws, dev, "bot")
    changed = []
    db.on_authz_changes(changed.append)
    now = utcnow()
    yesterday = now - timedelta(days=1)
    db.run(ingest_usage, [event(key_id, USD("$2"), "late", yesterday), event(key_id, USD("$2"), "a", now)], now=now)
    assert changed == []  # $4 in two days, $2 of it today: under the limit
    db.run(ingest_usage, [event(key_id, USD("$1"), "b", now)], now=now)
    assert changed == [{ws}]  # today's $3 reaches it
    assert totals(db, Scope.KEY, key_id) == {("daily", period_start(Period.DAILY, yesterday)): USD("$2"), ("daily", period_start(Period.DAILY, now)): USD("$3")}
    with db.session() as s:
        assert describe_key(s, key_id).spent_micros == USD("$3")  # what a key shows is its limit period's spend


def test_each_threshold_is_announced_once_per_period(db, search):
    ws, _, _, key_id = search
    steps = [("$5", [50]), ("$1", []), ("$2", [80]), ("$0.50", []), ("$1.50", [100])]
    for amount, expected in steps:
        result = f.spend(db, key_id, USD(amount))
        assert [c.threshold for c in result.crossings if c.kind is BudgetKind.PROJECT] == expected, amount
    with db.session() as s:
        sent = s.scalars(select(AlertSent).where(AlertSent.budget_kind == BudgetKind.PROJECT).order_by(AlertSent.threshold)).all()
        assert [(a.threshold, a.spent_micros, a.limit_micros) for a in sent] == [(50, USD("$5"), USD("$10")), (80, USD("$8"), USD("$10")), (100, USD("$10"), USD("$10"))]
        assert {a.period_start for a in sent} == {period_start(Period.MONTHLY, utcnow())}
    payloads = alert_actions(db)
    assert [(p["name"], p["threshold"], p["spent_micros"], p["limit_micros"]) for p in payloads] == [
        ("search", 50, USD("$5"), USD("$10")),
        ("search", 80, USD("$8"), USD("$10")),
        ("search", 100, USD("$10"), USD("$10")),
    ]


def test_one_batch_crossing_several_thresholds_sends_one_alert_naming_the_highest(db, search):
    _, _, _, key_id = search
    result = f.spend(db, key_id, USD("$9"))
    [crossing] = result.crossings
    assert crossing.threshold == 80
    assert crossing.describe() == "project `search` has used 80% ($9.00 of $10.00)"
    [payload] = alert_actions(db)
    assert payload["thresholds"] == [50, 80]


def test_spend_exactly_at_the_budget_pauses(db, search):
    ws, _, _, key_id = search
    assert f.spend(db, key_id, USD("$9.999999")).paused == []
    assert project(db, ws).status is ProjectStatus.ACTIVE
    result = f.spend(db, key_id, 1)
    assert result.paused == ["project:search"]
    p = project(db, ws)
    assert (p.status, p.paused_by, p.paused_reason) == (ProjectStatus.PAUSED, "budget", "budget of $10.00 spent")
    with db.session() as s:
        pause = s.scalars(select(AuditEvent).where(AuditEvent.action == "project.pause")).one()
        assert pause.actor == "system:budget"
        assert s.scalars(select(Action.payload).where(Action.kind == "pause_project")).one()["project_id"] == p.id


def test_usage_writes_no_audit_event_of_its_own(db, search):
    ws, _, _, key_id = search
    with db.session() as s:
        before = s.scalar(select(func.count()).select_from(AuditEvent))
    f.spend(db, key_id, USD("$1"))
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == before


def test_late_events_for_an_earlier_period_count_but_do_not_pause(db, search):
    ws, _, _, key_id = search
    last_month = period_start(Period.MONTHLY, utcnow()) - timedelta(days=1)
    result = f.spend(db, key_id, USD("$50"), at=last_month)
    assert (len(result.accepted), result.crossings, result.paused) == (1, [], [])
    assert project(db, ws).status is ProjectStatus.ACTIVE
    proj_totals = totals(db, Scope.PROJECT, project(db, ws).id)
    assert proj_totals[("monthly", period_start(Period.MONTHLY, last_month))] == USD("$50")
    assert ("monthly", period_start(Period.MONTHLY, utcnow())) not in proj_totals
    assert proj_totals[("none", EPOCH)] == USD("$50")


def test_a_batch_mixing_late_and_current_events_alerts_on_the_current_period_alone(db, search):
    ws, _, _, key_id = search
    last_month = period_start(Period.MONTHLY, utcnow()) - timedelta(hours=1)
    result = db.run(ingest_usage, [event(key_id, USD("$50"), "late", last_month), event(key_id, USD("$6"), "now"), event(key_id, USD("$20"), "late-2", last_month)])
    assert [(c.threshold, c.spent_micros) for c in result.crossings] == [(50, USD("$6"))]
    assert (result.paused, project(db, ws).status) == ([], ProjectStatus.ACTIVE)
    assert totals(db, Scope.PROJECT, project(db, ws).id)[("none", EPOCH)] == USD("$76")


def test_refused_events_are_reported_one_by_one_and_the_rest_accepted(db, search):
    ws, _, _, key_id = search
    now = utcnow()
    result = db.run(
        ingest_usage,
        [
            event(key_id, USD("$1"), "good"),
            event(999_999, USD("$1"), "no-key"),
            event(key_id, -1, "negative"),
            event(key_id, USD("$1"), "future", now + timedelta(hours=1)),
            event(key_id, USD("$1"), "naive", datetime(2025, 1, 1)),
            event(key_id, USD("$1"), ""),
            UsageIn("tokens", key_id, 1, now, prompt_tokens=-5),
        ],
    )
    assert result.accepted == ["good"]
    assert result.refused == {
        "no-key": "unknown key",
        "negative": "amount must be a whole number of micro-dollars from 0 to $1,000,000,000",
        "future": "occurred_at is in the future",
        "naive": "occurred_at must carry a time zone",
        "": "external_id must be 1–200 characters",
        "tokens": "token counts must be whole numbers from 0",
    }
    assert totals(db, Scope.WORKSPACE, ws)[("none", EPOCH)] == USD("$1")


def test_a_few_minutes_of_clock_skew_is_tolerated(db, search):
    _, _, _, key_id = search
    result = db.run(ingest_usage, [event(key_id, 1, "skewed", utcnow() + timedelta(minutes=4))])
    assert result.accepted == ["skewed"]


def test_the_workspace_cap_is_announced_and_paused_like_a_budget(db, search):
    ws, admin, dev, _ = search
    db.run(budgets.set_project_budget, admin, ws, "search", None)
    db.run(budgets.set_workspace_cap, admin, ws, USD("$20"))
    key_id, _ = f.key(db, ws, dev, "other")
    result = f.spend(db, key_id, USD("$10"))
    assert [(c.kind, c.threshold, c.name) for c in result.crossings] == [(BudgetKind.CAP, 50, "shop")]
    assert f.spend(db, key_id, USD("$10")).paused == ["workspace:shop"]


def test_rollover_resumes_budget_paused_projects_and_alerts_re_arm(db, search):
    ws, admin, _, key_id = search
    f.project(db, ws, "manual", budget=USD("$5"))
    db.run(budgets.pause_project, admin, ws, "manual", "incident")
    f.spend(db, key_id, USD("$10"))
    assert project(db, ws).status is ProjectStatus.PAUSED
    assert db.run(roll_over_periods) == []  # same period: still spent
    next_month = next_period_start(Period.MONTHLY, utcnow()) + timedelta(hours=1)
    announced = db.run(roll_over_periods, next_month)
    assert announced == [{"workspace_id": ws, "resumed": ["project `search`"]}]
    assert project(db, ws).status is ProjectStatus.ACTIVE
    assert project(db, ws, "manual").paused_reason == "incident"  # a manual pause stays
    with db.session() as s:
        assert s.scalars(select(Action.payload).where(Action.kind == "announce_rollover")).one() == {"resumed": ["project `search`"]}
    result = db.run(ingest_usage, [event(key_id, USD("$5"), "new-period", next_month)], now=next_month)
    assert [c.threshold for c in result.crossings] == [50]
    with db.session() as s:
        starts = set(s.scalars(select(AlertSent.period_start).where(AlertSent.threshold == 50)))
    assert starts == {period_start(Period.MONTHLY, utcnow()), period_start(Period.MONTHLY, next_month)}


def test_rollover_resumes_a_cap_paused_workspace(db, search):
    ws, admin, _, key_id = search
    db.run(budgets.set_project_budget, admin, ws, "search", None)
    db.run(budgets.set_workspace_cap, admin, ws, USD("$5"), "daily")
    f.spend(db, key_id, USD("$5"))
    tomorrow = next_period_start(Period.DAILY, utcnow()) + timedelta(minutes=1)
    [announced] = db.run(roll_over_periods, tomorrow)
    assert announced["resumed"] == ["the workspace cap"]


def test_usage_reports_own_spend_to_developers_and_everything_to_viewers(db, search):
    ws, _, dev, key_id = search
    other = f.member(db, ws, Role.DEVELOPER)
    theirs, _ = f.key(db, ws, other, "theirs")
    viewer = f.member(db, ws, Role.VIEWER)
    f.spend(db, key_id, USD("$2"))
    f.spend(db, key_id, USD("$1"))
    f.spend(db, theirs, USD("$4"))
    with db.session() as s:
        mine = usage_reports.usage_report(s, dev, ws)
        everything = usage_reports.usage_report(s, viewer, ws)
    assert (mine.scope, mine.total_micros, [(r.amount_micros, r.events) for r in mine.rows]) == ("yours", USD("$3"), [(USD("$3"), 2)])
    assert (everything.scope, everything.total_micros) == ("workspace", USD("$7"))
    assert [(r.label, r.amount_micros) for r in everything.rows] == [("no project", USD("$4")), ("search", USD("$3"))]
    by_key = db.run(usage_reports.usage_report, viewer, ws, by="key")
    assert [(r.label.split(" (")[0], r.member) for r in by_key.rows] == [("theirs", other.slack_user_id), ("bot", dev.slack_user_id)]
    with pytest.raises(PermissionDenied):
        db.run(usage_reports.usage_report, f.member(db, f.workspace(db, "elsewhere"), Role.VIEWER), ws)

