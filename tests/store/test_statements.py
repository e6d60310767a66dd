"""Monthly statements on both stores: totals equal the events and the ledger, late spend is a correction, a posted statement never changes."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from store import credits
from store.budgets import set_workspace_cap
from store.errors import InvalidInput, PermissionDenied
from store.ingest import UsageIn, ingest_usage
from store.models import Action, CreditEntry, UsageEvent
from store.models_statements import StatementRow
from store.statement_csv import statement_csv
from store.statements import build_statement, close_statement, due_statements, month_bounds, parse_month, send_statement, view_statement
from store.types import Role
from tests import factories as f

UTC = timezone.utc
_ids = itertools.count(1)
CLOCK = f.OPERATOR.__class__.operator("clock")


def at(clock, when: datetime) -> datetime:
    clock.move_to(when, tick=False)
    return when


@dataclass
class Shop:
    ws: int
    billing: object
    developer: object
    search: int  # a key in project search
    chat: int  # a key in project chat
    loose: int  # a key in no project


def shop(db, clock, opened: datetime) -> Shop:
    at(clock, opened)
    ws = f.workspace(db, "ledger", "development")
    f.member(db, ws, Role.ADMIN, slack_user_id="UADMIN")
    billing = f.member(db, ws, Role.BILLING, slack_user_id="UBILL")
    dev = f.member(db, ws, Role.DEVELOPER, slack_user_id="UDEV")
    f.project(db, ws, "search", budget=400_000_000)
    f.project(db, ws, "chat")
    db.run(set_workspace_cap, f.OPERATOR, ws, 900_000_000, "monthly")
    search = f.key(db, ws, dev, "searcher", project="search")[0]
    chat = f.key(db, ws, dev, "chatter", project="chat")[0]
    loose = f.key(db, ws, dev, "loose")[0]
    return Shop(ws, billing, dev, search, chat, loose)


def spend(db, clock, key_id: int, micros: int, occurred: datetime, ingested: datetime, model: str | None = "openai/gpt-4o") -> str:
    at(clock, ingested)
    external = f"st-{next(_ids)}"
    result = db.run(ingest_usage, [UsageIn(external, key_id, micros, occurred, model=model)], ingested)
    assert result.accepted == [external], result
    return external


def topup(db, clock, who, ws: int, micros: int, when: datetime, note: str) -> None:
    at(clock, when)
    db.run(credits.add_credit, who, ws, micros, note)


def events_sum(db, ws: int, ids: set[str]) -> tuple[int, int]:
    with db.session() as s:
        amounts = list(s.scalars(select(UsageEvent.amount_micros).where(UsageEvent.workspace_id == ws, UsageEvent.external_id.in_(ids))))
    assert len(amounts) == len(ids)
    return sum(amounts), len(amounts)


def ledger(db, ws: int, start: datetime, end: datetime) -> dict[str, int | None]:
    """The pool's month worked out from the ledger rows by hand."""
    with db.session() as s:
        rows = list(s.execute(select(CreditEntry.created_at, CreditEntry.kind, CreditEntry.amount_micros, CreditEntry.balance_after_micros).where(CreditEntry.workspace_id == ws).order_by(CreditEntry.id)))
    before = [r for r in rows if r.created_at < start]
    upto = [r for r in rows if r.created_at < end]
    inside = [r for r in rows if start <= r.created_at < end]
    return {
        "opening_micros": before[-1].balance_after_micros if before else None,
        "closing_micros": upto[-1].balance_after_micros if upto else None,
        "topups_micros": sum(r.amount_micros for r in inside if r.kind == "topup"),
        "debits_micros": sum(r.amount_micros for r in inside if r.kind == "spend"),
    }


def parsed_csv(text: str) -> list[dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    for r in rows:  # dollars and micro-dollars say the same amount, digit for digit
        if r["amount_micros"]:
            micros = int(r["amount_micros"])
            whole, frac = r["amount_usd"].lstrip("-").split(".")
            assert len(frac) == 6 and (int(whole) * 1_000_000 + int(frac)) * (-1 if r["amount_usd"].startswith("-") else 1) == micros
    return rows


def csv_sum(rows, kind: str) -> tuple[int, int]:
    chosen = [r for r in rows if r["kind"] == kind]
    return sum(int(r["amount_micros"]) for r in chosen), sum(int(r["events"] or 0) for r in chosen)


MONTHS = {
    # month M (closed first), and the next, N
    "leap-february": (date(2028, 2, 1), date(2028, 3, 1)),
    "december-to-january": (date(2026, 12, 1), date(2027, 1, 1)),
}


@pytest.mark.parametrize("case", list(MONTHS))
def test_a_statement_holds_exactly_its_months_events_and_late_ones_are_the_next_ones_corrections(db, clock, case):
    month, following = MONTHS[case]
    start, end = month_bounds(month)
    _, after = month_bounds(following)
    last_instant = end - timedelta(milliseconds=1)  # 23:59:59.999 on the last day (29 February; 31 December)
    s = shop(db, clock, start - timedelta(days=10))

    # The month before M: funded, spent, never closed (M is the first statement).
    topup(db, clock, s.billing, s.ws, 100_000_000, start - timedelta(days=9), "first funds")
    before = {spend(db, clock, s.search, 1_250_000, start - timedelta(days=5), start - timedelta(days=5))}

    own_m = {spend(db, clock, s.search, 2_000_001, start, start + timedelta(seconds=1))}  # 00:00 on the first
    topup(db, clock, s.billing, s.ws, 50_000_000, start + timedelta(days=3), "more funds")
    own_m |= {
        spend(db, clock, s.chat, 3_333_333, start + timedelta(days=10), start + timedelta(days=10, minutes=1), model=None),
        spend(db, clock, s.loose, 17, start + timedelta(days=12), start + timedelta(days=12)),
        spend(db, clock, s.chat, 4_000_000, last_instant, end + timedelta(milliseconds=500)),  # recorded after midnight, before the close
    }
    # Month N's first instant, recorded before M closed: N's own spend, not M's.
    own_n = {spend(db, clock, s.search, 5_000_000, end, end + timedelta(seconds=2))}

    closed_at = at(clock, end + timedelta(hours=6))
    closed = db.run(close_statement, CLOCK, s.ws, month, closed_at)
    assert closed.closed and closed.closed_at == closed_at and not closed.of("correction")
    assert (closed.spend_micros, closed.spend_events) == events_sum(db, s.ws, own_m)
    assert closed.spend_micros == 2_000_001 + 3_333_333 + 17 + 4_000_000
    assert {k: v for k, v in closed.totals().items() if k in ("opening_micros", "closing_micros", "topups_micros", "debits_micros")} == ledger(db, s.ws, start, end)
    assert closed.opening_micros == 100_000_000 - 1_250_000 and closed.topups_micros == 50_000_000 and closed.balances
    assert {p: a for p, a, _ in closed.split("project")} == {"search": 2_000_001, "chat": 7_333_333, "no project": 17}
    assert {m: a for m, a, _ in closed.split("model")} == {"openai/gpt-4o": 6_000_018, "model not reported": 3_333_333}
    assert [t.member for t in closed.topups] == ["UBILL"] and closed.topups[0].note == "more funds"
    assert ("Cap", 900_000_000, "monthly") in closed.limits and ("Budget search", 400_000_000, "monthly") in closed.limits
    assert closed.chain.ok and closed.audit_events > 0
    assert sum(sum(v) for v in closed.daily.values()) == closed.spend_micros and len(closed.daily["chat"]) == (end - start).days
    assert closed.daily["chat"][-1] == 4_000_000  # the last day's bar holds the 23:59:59.999 event

    # Late: M's spend and the month before's, recorded after M closed.
    late = {
        spend(db, clock, s.chat, 7_000_000, start + timedelta(days=20), closed_at + timedelta(hours=1)),
        spend(db, clock, s.loose, 1, start - timedelta(days=2), closed_at + timedelta(hours=2)),
    }
    own_n.add(spend(db, clock, s.search, 600_000, end + timedelta(days=3), end + timedelta(days=3)))

    # Asked again, long after: the posted statement, unchanged.
    again = db.run(view_statement, s.billing, s.ws, month, at(clock, end + timedelta(days=20)))
    assert again.totals() == closed.totals() and again.closed_at == closed_at and not again.differs_from_posted
    with db.session() as ss:
        row = ss.get(StatementRow, (s.ws, month))
        assert {k: getattr(row, k) for k in closed.totals()} == closed.totals()

    # N closes: its own spend, and the late events as corrections.
    n_closed_at = at(clock, after + timedelta(hours=6))
    n = db.run(close_statement, CLOCK, s.ws, following, n_closed_at)
    assert (n.spend_micros, n.spend_events) == events_sum(db, s.ws, own_n)
    assert (n.corrections_micros, n.correction_events) == events_sum(db, s.ws, late)
    month_before = (start - timedelta(days=2)).date().replace(day=1)
    assert sorted((line.month, line.amount_micros) for line in n.of("correction")) == [(month_before, 1), (month, 7_000_000)]
    assert n.opening_micros == closed.closing_micros and n.balances
    # Every event after the first statement's own is in exactly one statement.
    assert closed.spend_micros + n.spend_micros + n.corrections_micros == events_sum(db, s.ws, own_m | own_n | late)[0]
    assert events_sum(db, s.ws, before) == (1_250_000, 1)  # before the first statement: in none

    # The CSV sums back to the events and the ledger, to the micro-dollar.
    for st in (closed, n):
        rows = parsed_csv(statement_csv(st))
        assert csv_sum(rows, "spend") == (st.spend_micros, st.spend_events)
        assert csv_sum(rows, "correction") == (st.corrections_micros, st.correction_events)
        assert csv_sum(rows, "topup")[0] == st.topups_micros and csv_sum(rows, "debit")[0] == st.debits_micros
        [opening], [closing], [total] = ([r for r in rows if r["kind"] == k] for k in ("opening", "closing", "total"))
        assert int(opening["amount_micros"]) + csv_sum(rows, "topup")[0] + csv_sum(rows, "debit")[0] == int(closing["amount_micros"])
        assert int(total["amount_micros"]) == st.spend_micros + st.corrections_micros
    rows = parsed_csv(statement_csv(n))
    assert csv_sum(rows, "spend")[0] + csv_sum(rows, "correction")[0] == events_sum(db, s.ws, own_n | late)[0]
    assert csv_sum(rows, "debit")[0] == ledger(db, s.ws, *month_bounds(following))["debits_micros"]


def test_a_month_under_way_is_a_preview_and_only_a_finished_month_closes(db, clock):
    month = date(2027, 3, 1)
    start, end = month_bounds(month)
    s = shop(db, clock, start + timedelta(days=1))
    spend(db, clock, s.search, 1_000_000, start + timedelta(days=2), start + timedelta(days=2))
    now = at(clock, start + timedelta(days=5, hours=3))
    preview = db.run(view_statement, s.billing, s.ws, month, now)
    assert not preview.closed and not preview.over and preview.closed_at == now and preview.spend_micros == 1_000_000
    assert preview.last_day == now.date() and all(len(v) == 6 for v in preview.daily.values())
    assert preview.opening_micros is None and preview.closing_micros is None and preview.balances
    with pytest.raises(InvalidInput, match="not over yet"):
        db.run(close_statement, CLOCK, s.ws, month, now)
    with pytest.raises(InvalidInput, match="has not begun"):
        db.run(view_statement, s.billing, s.ws, date(2027, 4, 1), now)
    with pytest.raises(InvalidInput, match="created in March 2027"):
        db.run(view_statement, s.billing, s.ws, date(2027, 2, 1), now)
    with db.session() as ss:
        assert ss.scalar(select(StatementRow.month)) is None


def test_only_billing_managers_and_admins_see_statements_and_asking_sends_one_to_the_asker(db, clock):
    month = date(2027, 5, 1)
    start, _ = month_bounds(month)
    s = shop(db, clock, start + timedelta(days=1))
    now = at(clock, start + timedelta(days=4))
    with pytest.raises(PermissionDenied, match="add credit or view statements"):
        db.run(view_statement, s.developer, s.ws, month, now)
    db.run(send_statement, s.billing, s.ws, month, now)
    with db.session() as ss:
        [action] = ss.scalars(select(Action).where(Action.kind == "post_statement"))
        assert action.payload["to"] == ["UBILL"] and action.payload["month"] == "2027-05" and action.payload["as_of"] == now.isoformat()


def test_closing_a_later_month_closes_the_ones_skipped_at_the_same_instant(db, clock):
    s = shop(db, clock, datetime(2026, 12, 20, tzinfo=UTC))
    spend(db, clock, s.search, 1_000, datetime(2027, 1, 20, tzinfo=UTC), datetime(2027, 1, 20, tzinfo=UTC))
    db.run(close_statement, CLOCK, s.ws, date(2027, 1, 1), at(clock, datetime(2027, 2, 1, 6, tzinfo=UTC)))
    spend(db, clock, s.search, 2_000, datetime(2027, 1, 25, tzinfo=UTC), datetime(2027, 2, 10, tzinfo=UTC))
    spend(db, clock, s.chat, 3_000, datetime(2027, 3, 2, tzinfo=UTC), datetime(2027, 3, 2, tzinfo=UTC))
    # February's statement never closed (the job did not run); closing March closes February first.
    now = at(clock, datetime(2027, 4, 1, 6, tzinfo=UTC))
    march_st = db.run(close_statement, CLOCK, s.ws, date(2027, 3, 1), now)
    feb = db.run(view_statement, s.billing, s.ws, date(2027, 2, 1), now)
    assert feb.closed and feb.closed_at == now and (feb.corrections_micros, feb.spend_micros) == (2_000, 0)
    assert march_st.spend_micros == 3_000 and march_st.corrections_micros == 0
    with pytest.raises(InvalidInput, match="start with January 2027"):
        db.run(view_statement, s.billing, s.ws, date(2026, 12, 1), now)
    with db.session() as ss:
        assert due_statements(ss, now) == (date(2027, 3, 1), [])


def test_a_month_is_written_as_year_and_month():
    assert parse_month("2028-02") == date(2028, 2, 1)
    for wrong in ("2028-13", "Feb 2028", "", "28-02"):
        with pytest.raises(InvalidInput, match="like 2026-11"):
            parse_month(wrong)


def test_a_statement_whose_events_were_changed_after_it_was_posted_says_so(db, clock):
    month = date(2027, 7, 1)
    start, end = month_bounds(month)
    s = shop(db, clock, start + timedelta(days=1))
    spend(db, clock, s.search, 1_000_000, start + timedelta(days=2), start + timedelta(days=2))
    db.run(close_statement, CLOCK, s.ws, month, at(clock, end + timedelta(hours=6)))
    with db.session() as ss:
        ss.execute(UsageEvent.__table__.update().values(amount_micros=999))
        ss.commit()
    with db.session() as ss:
        assert build_statement(ss, s.ws, month, end + timedelta(days=1)).differs_from_posted == ["spend_micros"]
