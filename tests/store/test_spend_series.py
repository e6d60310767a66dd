"""The hourly rows ingest moves, and the breakdowns and daily series read from them, on both stores."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text

from store import usage_reports
from store.errors import InvalidInput, NotFound
from store.ingest import UsageIn, ingest_usage
from store.migrate import downgrade, upgrade
from store.models import UsageEvent
from store.models_spend import SpendHour
from store.money import parse_money
from store.spend_series import By, breakdown, daily, window
from store.types import Role
from tests import factories as f

USD = parse_money
UTC = timezone.utc


@pytest.fixture
def shop(db):
    """Two projects, two developers, three keys; a viewer."""
    ws = f.workspace(db, "shop", "development")
    f.member(db, ws, Role.ADMIN)
    ann, bob = f.member(db, ws, Role.DEVELOPER, slack_user_id="UANN"), f.member(db, ws, Role.DEVELOPER, slack_user_id="UBOB")
    viewer = f.member(db, ws, Role.VIEWER, slack_user_id="UVIEW")
    f.project(db, ws, "search")
    f.project(db, ws, "chat")
    keys = {"ann-search": f.key(db, ws, ann, "ann-search", project="search")[0], "ann-chat": f.key(db, ws, ann, "ann-chat", project="chat")[0], "bob-free": f.key(db, ws, bob, "bob-free")[0]}
    return ws, ann, bob, viewer, keys


def ev(key_id, amount, n, at, model="openai/gpt-4o", prompt=100, completion=50):
    return UsageIn(f"ev-{n}", key_id, amount, at, model=model, prompt_tokens=prompt, completion_tokens=completion)


def seeded(db, keys, first: datetime, hours: int = 80):
    """Events every hour from ``first``, spread over keys and models; the same sums worked out by hand."""
    events, by_model, by_key = [], defaultdict(int), defaultdict(int)
    for h in range(hours):
        for i, (name, key_id) in enumerate(sorted(keys.items())):
            model = ["openai/gpt-4o", "anthropic/claude-3.5-sonnet", None][(h + i) % 3]
            amount = 1_000 * (h % 7 + 1) * (i + 1) + 17
            events.append(ev(key_id, amount, f"{h}-{name}", first + timedelta(hours=h, minutes=7 * i), model=model))
            by_model[model or "model not reported"] += amount
            by_key[name] += amount
    for start in range(0, len(events), 100):
        db.run(ingest_usage, events[start : start + 100], first + timedelta(hours=hours))
    return by_model, by_key


def test_hours_hold_exactly_what_the_events_hold_and_a_resent_batch_adds_nothing(db, shop):
    ws, _, _, _, keys = shop
    first = datetime(2027, 2, 27, 20, tzinfo=UTC)  # across the end of February into March
    seeded(db, keys, first, hours=60)
    again = [ev(keys["bob-free"], 5, "0-bob-free", first)]
    assert db.run(ingest_usage, again, first + timedelta(hours=61)).duplicates == ["ev-0-bob-free"]
    with db.session() as s:
        events = s.execute(select(func.sum(UsageEvent.amount_micros), func.count(), func.sum(UsageEvent.prompt_tokens))).one()
        hours = s.execute(select(func.sum(SpendHour.amount_micros), func.sum(SpendHour.events), func.sum(SpendHour.prompt_tokens))).one()
        assert tuple(map(int, events)) == tuple(map(int, hours))
        assert s.scalar(select(func.count()).select_from(SpendHour)) == 60 * 3  # an hour, a key, a model: three keys, each one model an hour
        assert s.scalar(select(func.min(SpendHour.hour))) == first


def test_breakdowns_split_the_same_total_by_project_member_key_and_model(db, shop):
    ws, ann, bob, viewer, keys = shop
    first = datetime(2027, 3, 1, tzinfo=UTC)
    by_model, by_key = seeded(db, keys, first)
    now = first + timedelta(days=5)
    w = window("month", now)
    with db.session() as s:
        split = {by: breakdown(s, ws, w.since, w.until, by) for by in By}
    total = sum(by_key.values())
    assert {by: sum(r.amount_micros for r in rows) for by, rows in split.items()} == {by: total for by in By}
    assert {r.label: r.amount_micros for r in split[By.MODEL]} == dict(by_model)
    assert {r.label: r.amount_micros for r in split[By.PROJECT]} == {"search": by_key["ann-search"], "chat": by_key["ann-chat"], "no project": by_key["bob-free"]}
    assert {r.member: r.amount_micros for r in split[By.MEMBER]} == {"UANN": by_key["ann-search"] + by_key["ann-chat"], "UBOB": by_key["bob-free"]}
    assert [r.amount_micros for r in split[By.KEY]] == sorted(by_key.values(), reverse=True)
    assert all(r.events == 80 for r in split[By.KEY])
    assert all(r.prompt_tokens == 8000 and r.completion_tokens == 4000 for r in split[By.KEY])


def test_a_developer_sees_their_own_keys_and_a_viewer_the_workspace(db, shop):
    ws, ann, bob, viewer, keys = shop
    first = datetime(2027, 3, 1, tzinfo=UTC)
    _, by_key = seeded(db, keys, first, hours=10)
    now = first + timedelta(hours=12)
    ann_report = db.run(usage_reports.usage_report, ann, ws, by="key", now=now)
    assert ann_report.scope == "yours"
    assert {r.label.split(" (")[0] for r in ann_report.rows} == {"ann-search", "ann-chat"}
    assert ann_report.total_micros == by_key["ann-search"] + by_key["ann-chat"]
    everything = db.run(usage_reports.usage_report, viewer, ws, by="member", now=now)
    assert everything.scope == "workspace" and everything.total_micros == sum(by_key.values())
    one_project = db.run(usage_reports.usage_report, viewer, ws, project="Search", now=now)
    assert one_project.total_micros == by_key["ann-search"]
    with pytest.raises(NotFound, match="no project `nope`"):
        db.run(usage_reports.usage_report, viewer, ws, project="nope", now=now)
    with pytest.raises(InvalidInput, match="not a breakdown"):
        db.run(usage_reports.usage_report, viewer, ws, by="colour", now=now)


@pytest.mark.parametrize(
    "now, name, since, until",
    [
        (datetime(2028, 2, 29, 13, tzinfo=UTC), "month", datetime(2028, 2, 1, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC)),
        (datetime(2028, 3, 1, 0, 30, tzinfo=UTC), "last-month", datetime(2028, 2, 1, tzinfo=UTC), datetime(2028, 3, 1, tzinfo=UTC)),
        (datetime(2027, 1, 1, 0, 0, tzinfo=UTC), "last-month", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "week", datetime(2026, 12, 28, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "day", datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_windows_are_utc_periods_across_month_ends_leap_days_and_new_year(now, name, since, until):
    w = window(name, now)
    assert (w.since, w.until) == (since, until)
    assert w.days[0] == since.date() and w.days[-1] == (until - timedelta(days=1)).date()


def test_an_event_late_in_the_last_hour_of_a_month_counts_in_that_month_and_not_the_next(db, shop):
    ws, _, _, _, keys = shop
    last = datetime(2027, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
    db.run(ingest_usage, [ev(keys["bob-free"], USD("$2"), "late-dec", last), ev(keys["bob-free"], USD("$3"), "new-year", last + timedelta(milliseconds=1))], last + timedelta(minutes=1))
    with db.session() as s:
        dec, jan = window("last-month", datetime(2028, 1, 1, 0, 1, tzinfo=UTC)), window("month", datetime(2028, 1, 1, 0, 1, tzinfo=UTC))
        assert [r.amount_micros for r in breakdown(s, ws, dec.since, dec.until, By.PROJECT)] == [USD("$2")]
        assert [r.amount_micros for r in breakdown(s, ws, jan.since, jan.until, By.PROJECT)] == [USD("$3")]
        series = daily(s, ws, dec, By.PROJECT)
        assert series == {"no project": [0] * 30 + [USD("$2")]}


def test_daily_series_stop_at_today_and_sum_to_the_breakdown(db, shop):
    ws, _, _, _, keys = shop
    first = datetime(2027, 3, 1, tzinfo=UTC)
    seeded(db, keys, first)
    now = first + timedelta(days=3, hours=8)  # seeded spend runs past now: the series still stops at today
    w = window("month", now)
    with db.session() as s:
        series = daily(s, ws, w, By.PROJECT)
        split = {r.label: r.amount_micros for r in breakdown(s, ws, w.since, w.until, By.PROJECT)}
    assert {label: len(days) for label, days in series.items()} == {"search": 4, "chat": 4, "no project": 4}
    assert {label: sum(days) for label, days in series.items()} == split


def test_the_migration_fills_the_hours_from_the_events_already_recorded(db, shop, tmp_path):
    ws, _, _, _, keys = shop
    first = datetime(2027, 3, 1, tzinfo=UTC)
    seeded(db, keys, first, hours=30)
    with db.session() as s:
        before = sorted(tuple(r) for r in s.execute(select(SpendHour.workspace_id, SpendHour.hour, SpendHour.key_id, SpendHour.model, SpendHour.amount_micros, SpendHour.events, SpendHour.prompt_tokens)))
    url = db.engine.url.render_as_string(hide_password=False)
    downgrade(url, "0005")
    upgrade(url)
    with db.session() as s:
        after = sorted(tuple(r) for r in s.execute(select(SpendHour.workspace_id, SpendHour.hour, SpendHour.key_id, SpendHour.model, SpendHour.amount_micros, SpendHour.events, SpendHour.prompt_tokens)))
        assert s.execute(text("SELECT count(*) FROM spend_hours")).scalar() == len(before)
    assert after == before


def test_a_charts_figures_carry_the_periods_budgets_and_cap_and_a_forecast_only_while_it_runs(db, shop):
    from store import budgets
    from store.chart_data import period_spend
    from store.spend_series import Window

    ws, ann, _, _, keys = shop
    db.run(budgets.set_project_budget, f.OPERATOR, ws, "search", USD("$300"), "monthly")
    db.run(budgets.set_workspace_cap, f.OPERATOR, ws, USD("$900"), "monthly")
    first = datetime(2028, 2, 1, tzinfo=UTC)  # a leap-year February: 29 days
    db.run(ingest_usage, [ev(keys["ann-search"], USD("$10"), f"d{d}", first + timedelta(days=d, hours=12)) for d in range(10)], first + timedelta(days=10))
    now = first + timedelta(days=9, hours=18)  # the 10th, three quarters through
    ann_id = f.member_id(db, ws, ann)
    with db.session() as s:
        month = period_spend(s, ws, window("month", now), By.PROJECT)
        mine = period_spend(s, ws, window("month", now), By.PROJECT, member_id=ann_id)
        rolling = period_spend(s, ws, Window("last 7 days", now - timedelta(days=7), now + timedelta(hours=1), now), By.PROJECT)
        over = period_spend(s, ws, window("last-month", datetime(2028, 3, 2, tzinfo=UTC)), By.PROJECT)
    assert (month.start, month.end, month.today) == (first.date(), datetime(2028, 3, 1).date(), datetime(2028, 2, 10).date())
    assert month.daily == {"search": [USD("$10")] * 10} and month.total_micros == USD("$100")
    assert month.limits == [("spending cap", USD("$900")), ("search budget", USD("$300"))]
    # $10 a day for the last seven days (today counts for the 0.75 of it gone by), over the 19.25 days left
    assert month.forecast_micros == USD("$100") + int(USD("$70") / 6.75 * 19.25)
    assert mine.limits == [] and mine.total_micros == USD("$100")  # a member's own spend is not measured against the workspace's limits
    assert rolling.forecast_micros is None and rolling.limits == []
    assert over.forecast_micros is None and over.today == datetime(2028, 2, 29).date() and len(over.daily["search"]) == 29


def test_the_forecast_on_the_first_morning_of_a_month_takes_at_least_a_day(db, shop):
    from store.chart_data import period_spend

    ws, _, _, _, keys = shop
    now = datetime(2027, 1, 1, 0, 30, tzinfo=UTC)  # new year, half an hour in
    db.run(ingest_usage, [ev(keys["bob-free"], USD("$1"), "early", now - timedelta(minutes=20))], now)
    with db.session() as s:
        data = period_spend(s, ws, window("month", now), By.PROJECT)
    # $1 a day for the 30.98 days left, not $48 a day
    assert data.forecast_micros == USD("$1") + int(USD("$1") / 1.0 * (31 - 0.5 / 24))
