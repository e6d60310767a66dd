"""Budget alerts as the alerts channel hears them: once per threshold per period, pauses, resumes, rollovers, forecasts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from store import budgets
from store.alerts import forecast, rate_forecast
from store.models import AlertSent, ApiKey, Project
from store.money import parse_money
from store.periods import period_start
from store.types import BudgetKind, Period, ProjectStatus, Role, utcnow
from store.ingest import UsageIn, ingest_usage
from store.rollover import roll_over_periods
from tests import factories as f
from workers import maintenance
from tests.workers.test_actors import ALERTS, live_key, setup_workspace

pytestmark = pytest.mark.calendar


def alert_texts(slack_api) -> list[str]:
    return [m.text for m in slack_api.channel_messages(ALERTS)]


def budgeted_key(db, workers, budget="$100", env="development"):
    ws, admin = setup_workspace(db, env)
    dev = f.member(db, ws, Role.DEVELOPER)
    f.project(db, ws, "search", budget=parse_money(budget))
    key = live_key(db, dev, ws, workers, project="search", limit=parse_money("$10"))
    return ws, admin, key


def test_each_threshold_is_announced_once_per_period(db, stub_workers, slack_api):
    ws, admin, key = budgeted_key(db, stub_workers)
    for amount in ("$30", "$19.99", "$0.01", "$10", "$25", "$5"):  # 30, 49.99, 50, 60, 85, 90
        f.spend(db, key.id, parse_money(amount))
    stub_workers.settle()
    maintenance.evaluate_thresholds.send()  # the periodic check finds nothing new to say
    stub_workers.settle()
    said = alert_texts(slack_api)
    # two actions, run by whichever worker thread is free: announced once each, in either order
    assert sorted(t for t in said if "reached" in t) == ["Project search reached 50% of its budget", "Project search reached 80% of its budget"]
    with db.session() as s:
        assert sorted(a.threshold for a in s.scalars(select(AlertSent))) == [50, 80]


def test_one_batch_jumping_several_thresholds_announces_the_highest(db, stub_workers, slack_api):
    ws, admin, key = budgeted_key(db, stub_workers)
    f.spend(db, key.id, parse_money("$85"))
    stub_workers.settle()
    [alert] = [m for m in slack_api.channel_messages(ALERTS) if "reached" in m.text]
    assert "80%" in alert.text and "$85.00 of $100.00" in str(alert.blocks)


def test_spend_exactly_at_the_budget_pauses_and_says_who_can_raise_it(db, stub_workers, slack_api):
    ws, admin, key = budgeted_key(db, stub_workers, "$20")
    f.spend(db, key.id, parse_money("$20"))
    stub_workers.settle()
    with db.session() as s:
        assert s.get(Project, key.project_id).status is ProjectStatus.PAUSED
    said = "\n".join(alert_texts(slack_api))
    assert "reached 100%" in said and "is paused" in said


def test_raising_the_budget_resumes_at_once(db, stub_workers, slack_api):
    ws, admin, key = budgeted_key(db, stub_workers, "$20")
    f.spend(db, key.id, parse_money("$25"))
    db.run(budgets.set_project_budget, admin, ws, "search", parse_money("$40"))
    with db.session() as s:  # at once: in the same transaction as the raise, before any worker
        assert s.get(Project, key.project_id).status is ProjectStatus.ACTIVE
    stub_workers.settle()
    assert any("running again" in t for t in alert_texts(slack_api))


def test_raising_the_budget_to_below_the_spend_keeps_it_paused(db, stub_workers, slack_api):
    ws, admin, key = budgeted_key(db, stub_workers, "$20")
    f.spend(db, key.id, parse_money("$25"))
    db.run(budgets.set_project_budget, admin, ws, "search", parse_money("$24"))
    with db.session() as s:
        assert s.get(Project, key.project_id).status is ProjectStatus.PAUSED


def test_period_rollover_resumes_and_rearms_alerts(db, stub_workers, slack_api):
    ws, admin, key = budgeted_key(db, stub_workers, "$20")
    f.spend(db, key.id, parse_money("$20"))
    stub_workers.settle()
    next_month = (utcnow().replace(day=1) + timedelta(days=32)).replace(day=2)
    assert db.run(roll_over_periods, next_month)
    stub_workers.settle()
    with db.session() as s:
        assert s.get(Project, key.project_id).status is ProjectStatus.ACTIVE
    assert any("new budget period" in t for t in alert_texts(slack_api))
    # Spend in the new period starts from zero and the 50% alert fires again.
    event = UsageIn("next-month-1", key.id, parse_money("$10"), next_month)
    result = db.run(ingest_usage, [event], next_month)
    assert [c.threshold for c in result.crossings] == [50]


def test_rollover_leaves_a_manual_pause_alone(db, stub_workers, slack_api):
    ws, admin, key = budgeted_key(db, stub_workers, "$20")
    db.run(budgets.pause_project, admin, ws, "search", "security review")
    next_month = (utcnow().replace(day=1) + timedelta(days=32)).replace(day=2)
    db.run(roll_over_periods, next_month)
    with db.session() as s:
        assert s.get(Project, key.project_id).status is ProjectStatus.PAUSED


def test_cap_threshold_and_pause(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db, "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(budgets.set_workspace_cap, admin, ws, parse_money("$50"))
    key = live_key(db, dev, ws, stub_workers)
    f.spend(db, key.id, parse_money("$50"))
    stub_workers.settle()
    said = "\n".join(alert_texts(slack_api))
    assert "Workspace cap acme reached 100%" in said and "spending cap is spent" in said


def test_alert_carries_the_burn_rate_forecast(db, stub_workers, slack_api):
    ws, admin, key = budgeted_key(db, stub_workers, "$100")
    now = utcnow()
    # $10 a day for the six days before now: the rate is about $10/day. Early in a month
    # part of it falls in the previous period, where it counts for the rate but not the
    # budget; what tops the budget's spend up to $55 is spent now, so 50 % is crossed on any date.
    past = [now - timedelta(days=d) for d in range(1, 7)]
    in_period = sum(1 for at in past if at >= period_start(Period.MONTHLY, now))
    events = [UsageIn(f"past-{i}", key.id, parse_money("$10"), at) for i, at in enumerate(past)]
    events.append(UsageIn("now", key.id, parse_money("$55") - in_period * parse_money("$10"), now))
    db.run(ingest_usage, events)
    stub_workers.settle()
    [alert] = [m for m in slack_api.channel_messages(ALERTS) if "reached" in m.text]
    assert "runs out in about" in str(alert.blocks)


def test_forecast_arithmetic():
    # $60 over 6 days = $10/day; $40 left → 4 days.
    outlook = rate_forecast(parse_money("$60"), 6.0, parse_money("$60"), parse_money("$100"))
    assert outlook.daily_rate_micros == parse_money("$10")
    assert outlook.days_left == pytest.approx(4.0)
    assert outlook.describe() == "At the last 7 days' rate ($10.00/day) this runs out in about 4 days."
    # Nothing spent: no forecast; spent already: "It is spent."
    assert rate_forecast(0, 6.5, 0, parse_money("$100")).days_left is None
    assert rate_forecast(parse_money("$70"), 7.0, parse_money("$100"), parse_money("$100")).describe() == "It is spent."
    assert "within a day" in rate_forecast(parse_money("$70"), 7.0, parse_money("$95"), parse_money("$100")).describe()


def test_forecast_reads_the_daily_totals_of_the_last_seven_days(db):
    ws = f.workspace(db, "acme", "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    f.project(db, ws, "search", budget=parse_money("$1,000"))
    key_id, _ = f.key(db, ws, dev, "bot", project="search")
    noon = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
    # 7 days ago (outside the window) $500; then $7 on each of the last 6 days and $7 this morning.
    db.run(ingest_usage, [UsageIn("old", key_id, parse_money("$500"), noon - timedelta(days=7))], noon)
    db.run(ingest_usage, [UsageIn(f"d{d}", key_id, parse_money("$7"), noon - timedelta(days=d, hours=1)) for d in range(0, 7)], noon)
    with db.session() as s:
        project_id = s.scalars(select(ApiKey.project_id).where(ApiKey.id == key_id)).one()
        outlook = forecast(s, BudgetKind.PROJECT, project_id, parse_money("$549"), parse_money("$1,000"), noon)
    # window: 6 full days + half of today = 6.5 days, holding 7 × $7 = $49 → about $7.54/day
    assert outlook.daily_rate_micros == int(parse_money("$49") / 6.5)
    assert outlook.days_left == pytest.approx(parse_money("$451") / (parse_money("$49") / 6.5))
