"""Spend spikes: against the usual for the same hour of the week, announced once a spell, never for a muted key.

Every check is given its instant; spend is seeded through ingest with explicit times.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from store import spikes
from store.errors import PermissionDenied
from store.ingest import UsageIn, ingest_usage
from store.models import Action, AlertSent, AuditEvent
from store.models_spikes import SpikeMute
from store.money import parse_money
from store.spikes import HOUR, WEEK, SpikeRule, find_spikes, judge, scoped, usual_hour
from store.types import ActionKind, Role, Scope
from tests import factories as f

UTC = timezone.utc
RULE = SpikeRule()  # 3×, 4 weeks, floors $1 an hour and $5 a day
USUAL = parse_money("$2")

#: where the hour checked falls: mid-month, across New Year, on the 2028 leap day, across a month end
CHECKS = {
    "mid-june": datetime(2027, 6, 16, 15, 5, tzinfo=UTC),
    "new-year": datetime(2027, 1, 1, 0, 5, tzinfo=UTC),  # judges 2026-12-31 23:00
    "leap-day": datetime(2028, 2, 29, 13, 5, tzinfo=UTC),
    "month-end": datetime(2027, 5, 1, 0, 5, tzinfo=UTC),  # judges 2027-04-30 23:00
}


def hours_between(first: datetime, until: datetime) -> list[datetime]:
    return [first + HOUR * n for n in range(int((until - first) / HOUR))]


def seed(db, key_id: int, amounts: dict[datetime, int], now: datetime) -> None:
    """Spend each hour through ingest, half past the hour, reported by ``now``."""
    events = [UsageIn(f"k{key_id}-{hour:%Y%m%d%H}", key_id, amount, hour + timedelta(minutes=30)) for hour, amount in amounts.items() if amount]
    for n in range(0, len(events), 2000):
        db.run(ingest_usage, events[n : n + 2000], now)


def flat(check: datetime, amount: int = USUAL, days_after: int = 0) -> dict[datetime, int]:
    """``amount`` every hour from as far back as a check reads up to ``days_after`` days after the check's hour."""
    hour = spikes.last_complete_hour(check)
    return {h: amount for h in hours_between(RULE.since(hour) - WEEK, hour + HOUR + timedelta(days=days_after))}


def spike_actions(db) -> list[dict]:
    with db.session() as s:
        return [a.payload for a in s.scalars(select(Action).where(Action.kind == ActionKind.POST_SPIKE.value).order_by(Action.created_at))]


def project_key(db, budget: str | None = None):
    ws = f.workspace(db, "acme", "development")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    project = f.project(db, ws, "search", budget=parse_money(budget) if budget else None)
    key_id, _ = f.key(db, ws, dev, name="crawler", project="search")
    return ws, admin, dev, project, key_id


# The rule on series alone


@pytest.mark.parametrize("check", list(CHECKS.values()), ids=list(CHECKS))
def test_the_same_hour_of_the_week_is_found_across_month_ends_new_year_and_the_leap_day(check):
    hour = spikes.last_complete_hour(check)
    # $20 every hour but the same hour of the week before, which spent $2: a wrong look-up sees $20.
    series = {h: parse_money("$20") for h in hours_between(RULE.since(hour), hour)}
    for n in range(1, RULE.weeks + 1):
        same = hour - WEEK * n
        assert (same.weekday(), same.hour) == (hour.weekday(), hour.hour)
        series[same] = USUAL
    assert usual_hour(series, hour, RULE.weeks) == USUAL
    series[hour] = parse_money("$10")
    finding = judge(series, hour, RULE)
    assert finding is not None and (finding.window, finding.spent_hour, finding.usual_hour) == ("hour", parse_money("$10"), USUAL)


def test_a_missing_hour_counts_as_nothing_and_the_floor_keeps_cents_quiet():
    hour = datetime(2027, 6, 16, 14, tzinfo=UTC)
    assert usual_hour({hour - WEEK: USUAL}, hour, 4) == 0  # three of four weeks spent nothing
    assert judge({hour: parse_money("$2.99")}, hour, RULE) is None  # under 3 × the $1 floor
    assert judge({hour: parse_money("$3.01")}, hour, RULE).window == "hour"


def test_a_rise_spread_over_the_day_is_a_day_spike():
    # A key that usually spends nothing starts spending $2.50 an hour: no hour reaches 3 × the
    # $1 floor, but the day's $60 is far over 3 × the $5 floor.
    hour = datetime(2027, 6, 16, 14, tzinfo=UTC)
    steady = {h: parse_money("$2.50") for h in hours_between(hour - timedelta(hours=23), hour + HOUR)}
    finding = judge(steady, hour, RULE)
    assert (finding.window, finding.spent_day, finding.usual_day, finding.spent_hour) == ("day", parse_money("$60"), 0, parse_money("$2.50"))
    five_hours = {h: parse_money("$2.50") for h in hours_between(hour - timedelta(hours=4), hour + HOUR)}
    assert judge(five_hours, hour, RULE) is None  # $12.50 in the day: under 3 × $5


def test_a_key_that_spikes_with_its_project_is_announced_with_it():
    hour = datetime(2027, 6, 16, 14, tzinfo=UTC)
    rows = [(h, key, 7, USUAL) for h in hours_between(RULE.since(hour), hour) for key in (1, 2)]
    rows += [(hour, 1, 7, parse_money("$20")), (hour, 2, 7, USUAL)]
    [spike] = find_spikes(scoped(rows), hour, RULE)
    assert (spike.scope, spike.scope_id, spike.key_id, [k for k, _ in spike.also_keys]) == (Scope.PROJECT, 7, 1, [1])
    # Muted, key 1 is left out of its project too: nothing is announced.
    assert find_spikes(scoped(rows, {1}), hour, RULE, {1}) == []


# Through the store, on both databases


@pytest.mark.parametrize("check", list(CHECKS.values()), ids=list(CHECKS))
def test_a_spike_at_five_times_the_usual_is_announced_once(db, check):
    ws, admin, dev, project, key_id = project_key(db)
    hour = spikes.last_complete_hour(check)
    amounts = flat(check, days_after=1)
    amounts[hour] = amounts[hour + HOUR] = amounts[hour + 2 * HOUR] = 5 * USUAL  # and it stays high
    seed(db, key_id, amounts, check + timedelta(days=1))
    [spike] = db.run(spikes.check_spikes, ws, RULE, check)
    assert (spike.scope, spike.scope_id, spike.key_id) == (Scope.PROJECT, project, key_id)
    for later in (1, 2):  # the next hours, still five times the usual: nothing new
        assert db.run(spikes.check_spikes, ws, RULE, check + HOUR * later) == []
    assert db.run(spikes.check_spikes, ws, RULE, check) == []  # the same hour checked again
    [payload] = spike_actions(db)
    assert (payload["spent_hour"], payload["usual_hour"], payload["window"], payload["hour"]) == (5 * USUAL, USUAL, "hour", hour.isoformat())
    with db.session() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "spike.alert"))
        assert (event.actor, event.resource) == ("system:clock", f"project:{project}")


def test_a_steady_rise_within_the_weekly_pattern_is_not_announced(db):
    ws, admin, dev, project, key_id = project_key(db)
    check = CHECKS["mid-june"]
    last = spikes.last_complete_hour(check)
    first = RULE.since(last) - WEEK
    amounts = {}
    for h in hours_between(first, last + HOUR):
        peak = h.weekday() < 5 and 9 <= h.hour < 18  # weekdays' working hours spend ten times the nights
        grown = 1.1 ** ((h - first) // WEEK)  # and everything grows 10 % a week
        amounts[h] = round((parse_money("$5") if peak else parse_money("$0.50")) * grown)
    seed(db, key_id, amounts, check)
    for n in range(48):  # every hour of the last two days, the Monday-morning jump included
        assert db.run(spikes.check_spikes, ws, RULE, check - HOUR * n) == [], f"announced at {check - HOUR * n}"
    assert spike_actions(db) == []


def test_a_muted_key_is_not_announced_until_the_mute_ends(db):
    ws, admin, dev, project, key_id = project_key(db)
    check = CHECKS["mid-june"]
    hour = spikes.last_complete_hour(check)
    amounts = flat(check, days_after=3)
    amounts[hour] = amounts[hour + 2 * spikes.DAY] = 5 * USUAL
    seed(db, key_id, amounts, check + timedelta(days=3))
    with pytest.raises(PermissionDenied, match="Only an Admin can mute spike alerts; you are a Developer"):
        db.run(spikes.mute_key, dev, key_id, 24, check - timedelta(minutes=1))
    muted = db.run(spikes.mute_key, admin, key_id, 24, check - timedelta(minutes=1))
    assert muted.until == check + timedelta(hours=24) - timedelta(minutes=1)
    assert db.run(spikes.check_spikes, ws, RULE, check) == []  # neither the key nor its project
    [spike] = db.run(spikes.check_spikes, ws, RULE, check + 2 * spikes.DAY)  # the mute ended a day before
    assert spike.key_id == key_id and spike.finding.hour == hour + 2 * spikes.DAY
    with db.session() as s:
        assert [m.key_id for m in s.scalars(select(SpikeMute))] == [key_id]
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "spike.mute", AuditEvent.outcome == "ok"))
        assert event.actor == admin.label and event.details["hours"] == 24


def test_a_spike_is_announced_long_before_any_budget_threshold(db):
    ws, admin, dev, project, key_id = project_key(db, budget="$10,000")
    check = CHECKS["mid-june"]
    hour = spikes.last_complete_hour(check)
    amounts = flat(check)
    amounts[hour] = 5 * USUAL
    seed(db, key_id, amounts, check)
    [spike] = db.run(spikes.check_spikes, ws, RULE, check)
    assert spike.scope is Scope.PROJECT
    with db.session() as s:
        assert list(s.scalars(select(AlertSent))) == []  # no threshold of the budget reached
        kinds = [a.kind for a in s.scalars(select(Action))]
    assert ActionKind.POST_SPIKE.value in kinds and ActionKind.POST_ALERT.value not in kinds
