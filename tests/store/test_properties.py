"""Properties that hold for any input: money parsing, idempotent usage ingest, the audit chain.

The store tests run each property on SQLite and PostgreSQL. Hypothesis reuses the
function-scoped ``db`` across examples, so every example builds its own workspace
and looks only at that workspace's rows.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update

from store import audit, budgets, credits, keys, members
from store.errors import DomainError, InvalidInput
from store.models import Action, AlertSent, ApiKey, AuditEvent, AuditHead, CreditEntry, Project, Request, SpendTotal, UsageEvent, Workspace
from store.money import MAX_MICROS, MICROS_PER_DOLLAR, format_money, parse_money
from store.permissions import Actor
from store.decisions import decide_request
from store.types import Role, Scope, utcnow
from store.ingest import UsageIn, ingest_usage
from tests import factories as f

DOLLAR = MICROS_PER_DOLLAR
_slugs = itertools.count(1)

# The database is reused across examples; each example gets a workspace of its own.
store_settings = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def fresh_slug(prefix: str) -> str:
    return f"{prefix}-{next(_slugs)}"


# ---------------------------------------------------------------------------------------
# Money


def assert_readable_refusal(value) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_money(value)
    message = str(refused.value)
    assert message.strip()
    assert "Traceback" not in message
    assert len(message) <= 200, message


@given(st.integers(min_value=0, max_value=MAX_MICROS))
@example(0)
@example(1)
@example(MAX_MICROS)
def test_every_formatted_amount_parses_back_to_itself(micros):
    assert parse_money(format_money(micros)) == micros


@pytest.mark.parametrize(
    ("typed", "micros"),
    [
        ("$12.50", 12_500_000),
        ("12.5", 12_500_000),
        ("1,200", 1_200 * DOLLAR),
        ("$1,200.75", 1_200_750_000),
        ("50k", 50_000 * DOLLAR),
        ("1.5m", 1_500_000 * DOLLAR),
        ("2.5K", 2_500 * DOLLAR),
        ("0.000001", 1),
        ("$0", 0),
        (" $7 ", 7 * DOLLAR),
        (".5", 500_000),
        ("$1,000,000,000", MAX_MICROS),
        ("1000m", MAX_MICROS),
        (12, 12 * DOLLAR),
        (12.25, 12_250_000),
        (Decimal("0.000123"), 123),
    ],
)
def test_typed_amounts_parse_to_exact_micros(typed, micros):
    assert parse_money(typed) == micros


@pytest.mark.parametrize(
    "junk",
    [
        "-5", "$-5", "-0.01", -5, Decimal("-1"), -0.5,
        "NaN", "nan", "inf", "-inf", "Infinity", float("nan"), float("inf"), float("-inf"), Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"),
        "1e5", "1E5", 1e-7, "0.0000001", "1.0000000001", "1.0000000000000000000000000001", "1.0000000000000000000000000001k",
        "1,000,000,001", "1000000.000001k", "2b", 1e300, Decimal("1E+999999"),
        pytest.param(10**5000, id="int-of-5001-digits"), pytest.param("9" * 5000, id="5000-nines"), pytest.param("1" + "0" * 1_000_001, id="a-million-zeros"),
        "1,2,3", "1,20", "12,", "1,2000", "01,2000",
        "", "   ", "$", ".", "k", "$k", "1.2.3", "$$5", "5$", "five dollars", "12 usd", "0x10", "१२", True,
    ],
)  # fmt: skip
def test_junk_amounts_are_refused_with_a_readable_message(junk):
    assert_readable_refusal(junk)


def _parsed_or_refused(value):
    """Either an exact amount in range, or a readable InvalidInput; never another exception."""
    try:
        micros = parse_money(value)
    except InvalidInput as refused:
        message = str(refused)
        assert message.strip() and "Traceback" not in message and len(message) <= 200
        return None
    assert isinstance(micros, int) and 0 <= micros <= MAX_MICROS
    return micros


@given(st.text())
@example("1" + "0" * 100)
@example("0," * 50)
def test_any_text_parses_to_an_amount_in_range_or_is_refused(text):
    _parsed_or_refused(text)


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_parses_exactly_or_is_refused(value):
    micros = _parsed_or_refused(value)
    if micros is not None:
        assert Decimal(micros) == Decimal(str(value)) * MICROS_PER_DOLLAR


@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_any_decimal_parses_exactly_or_is_refused(value):
    micros = _parsed_or_refused(value)
    if micros is not None:
        assert Decimal(micros) == value.scaleb(6)


@given(st.integers(min_value=1, max_value=MAX_MICROS), st.integers(min_value=7, max_value=40))
def test_a_seventh_decimal_anywhere_is_refused_not_rounded(micros, places):
    dollars = f"{Decimal(micros) / MICROS_PER_DOLLAR:f}"
    whole, _, fraction = dollars.partition(".")
    typed = f"{whole}.{fraction.ljust(places - 1, '0')}1"
    assert_readable_refusal(typed)


# ---------------------------------------------------------------------------------------
# Usage ingest is idempotent

EXTERNAL_IDS = [f"ev-{i}" for i in range(8)]
usage_batches = st.lists(
    st.tuples(
        st.sampled_from(EXTERNAL_IDS),
        st.integers(0, 2),  # which key
        # whole dollars plus change: a plain integer range would mostly draw a few micros
        st.builds(lambda d, micros: d * DOLLAR + micros, st.integers(0, 30), st.integers(0, DOLLAR - 1)),
        st.integers(0, 600),  # seconds before now
    ),
    min_size=1,
    max_size=12,
)


def _spending_workspace(db) -> tuple[int, list[int], list[int]]:
    """Two budgeted projects inside a cap, a funded credit pool, three keys: every kind of alert and pause is reachable."""
    ws = f.workspace(db, fresh_slug("spend"), "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    projects = [f.project(db, ws, "search", budget=30 * DOLLAR), f.project(db, ws, "chat", budget=40 * DOLLAR)]
    db.run(budgets.set_workspace_cap, f.OPERATOR, ws, 80 * DOLLAR)
    db.run(credits.add_credit, f.OPERATOR, ws, 60 * DOLLAR)
    key_ids = [f.key(db, ws, dev, name, project=project)[0] for name, project in (("a", "search"), ("b", "chat"), ("c", "search"))]
    return ws, key_ids, projects


def _spend_state(db, ws: int, key_ids: list[int], project_ids: list[int]) -> dict:
    scope_ids = {Scope.KEY: key_ids, Scope.PROJECT: project_ids, Scope.WORKSPACE: [ws]}
    with db.session() as s:
        totals = sorted(
            tuple(row)
            for scope, ids in scope_ids.items()
            for row in s.execute(
                select(SpendTotal.scope, SpendTotal.scope_id, SpendTotal.period, SpendTotal.period_start, SpendTotal.amount_micros).where(
                    SpendTotal.scope == scope, SpendTotal.scope_id.in_(ids)
                )
            )
        )
        return {
            "totals": totals,
            "events": s.scalar(select(func.count()).select_from(UsageEvent).where(UsageEvent.workspace_id == ws)),
            "spent": s.scalar(select(func.sum(UsageEvent.amount_micros)).where(UsageEvent.workspace_id == ws)),
            "balance": s.scalar(select(Workspace.credit_balance_micros).where(Workspace.id == ws)),
            "ledger": s.scalar(select(func.count()).select_from(CreditEntry).where(CreditEntry.workspace_id == ws)),
            "alerts": sorted(tuple(r) for r in s.execute(select(AlertSent.budget_kind, AlertSent.budget_id, AlertSent.threshold, AlertSent.spent_micros).where(AlertSent.workspace_id == ws))),
            "actions": sorted(s.scalars(select(Action.id).where(Action.workspace_id == ws))),
            "statuses": sorted(tuple(r) for r in s.execute(select(Project.slug, Project.status).where(Project.workspace_id == ws))),
            "audit_seq": s.scalar(select(AuditHead.seq).where(AuditHead.workspace_id == ws)),
        }


@store_settings
@given(batch=usage_batches, data=st.data())
def test_reingesting_any_part_of_a_batch_changes_nothing(db, batch, data):
    ws, key_ids, project_ids = _spending_workspace(db)
    now = utcnow()
    events = [UsageIn(external_id=x, key_id=key_ids[k], amount_micros=amount, occurred_at=now - timedelta(seconds=ago)) for x, k, amount, ago in batch]
    db.run(ingest_usage, events, now=now)
    first_seen = {}
    for e in events:
        first_seen.setdefault(e.external_id, e.amount_micros)
    after_first = _spend_state(db, ws, key_ids, project_ids)
    assert after_first["events"] == len(first_seen)
    assert (after_first["spent"] or 0) == sum(first_seen.values())

    replays = [data.draw(st.permutations(events), label="replay"), data.draw(st.lists(st.sampled_from(events), max_size=2 * len(events)), label="subset")]
    for replay in replays:
        result = db.run(ingest_usage, replay, now=now)
        assert result.accepted == [] and not result.crossings and not result.paused
        assert _spend_state(db, ws, key_ids, project_ids) == after_first


# ---------------------------------------------------------------------------------------
# The audit chain

who = st.integers(0, 30)  # an index into the people of the workspace, wrapped
slugs = st.sampled_from(["search", "chat", "ml"])
maybe_dollars = st.none() | st.integers(1, 300).map(lambda d: d * DOLLAR)
key_operations = [
    st.tuples(st.just("request_key"), who, st.sampled_from(["bot", "cron", "eval"]), st.none() | slugs),
    st.tuples(st.just("decide"), who, who, st.booleans()),
    st.tuples(st.just("revoke"), who, who),
]
operations = st.one_of(
    *key_operations,
    *key_operations,  # twice as likely: a revoke needs a key asked for and approved first
    st.tuples(st.just("add_member"), who, st.sampled_from(list(Role))),
    st.tuples(st.just("change_role"), who, who, st.sampled_from(list(Role))),
    st.tuples(st.just("remove_member"), who, who),
    st.tuples(st.just("create_project"), who, slugs, maybe_dollars),
    st.tuples(st.just("set_budget"), who, slugs, maybe_dollars),
    st.tuples(st.just("set_cap"), who, maybe_dollars),
    st.tuples(st.just("add_credit"), who, st.integers(1, 500).map(lambda d: d * DOLLAR)),
    st.tuples(st.just("request_topup"), who, st.integers(1, 500).map(lambda d: d * DOLLAR)),
    st.tuples(st.just("verify"), who),  # anyone but an Admin is refused, and the refusal audited
)


class AuditedWorkspace:
    """One example's workspace and the people in it, by Actor and member id."""

    def __init__(self, db, environment: str) -> None:
        self.db = db
        self.id = f.workspace(db, fresh_slug("audit"), environment)
        self.people: list[tuple[Actor, int]] = []
        for role in (Role.ADMIN, Role.DEVELOPER, Role.VIEWER, Role.BILLING):
            actor = f.member(db, self.id, role)
            self.people.append((actor, f.member_id(db, self.id, actor)))
        f.project(db, self.id, "search")  # so key requests naming a project can succeed

    def actor(self, i: int) -> Actor:
        return self.people[i % len(self.people)][0]

    def member(self, i: int) -> int:
        return self.people[i % len(self.people)][1]

    def ids(self, model, i: int) -> int | None:
        found = self.db.run(lambda s: list(s.scalars(select(model.id).where(model.workspace_id == self.id).order_by(model.id))))
        return found[i % len(found)] if found else None

    def play(self, op: tuple) -> None:
        name, by, *args = op
        db, ws, actor = self.db, self.id, self.actor(by)
        if name == "add_member":
            uid = f.user_id()
            added = db.run(members.add_member, actor, ws, role=args[0], slack_user_id=uid)
            self.people.append((Actor.slack(uid), added.id))
        elif name == "change_role":
            db.run(members.change_role, actor, ws, self.member(args[0]), args[1])
        elif name == "remove_member":
            db.run(members.remove_member, actor, ws, self.member(args[0]))
        elif name == "create_project":
            db.run(budgets.create_project, actor, ws, args[0], budget_micros=args[1])
        elif name == "set_budget":
            db.run(budgets.set_project_budget, actor, ws, args[0], args[1])
        elif name == "set_cap":
            db.run(budgets.set_workspace_cap, actor, ws, args[0])
        elif name == "add_credit":
            db.run(credits.add_credit, actor, ws, args[0])
        elif name == "request_key":
            db.run(keys.request_key, actor, ws, name=args[0], project=args[1])
        elif name == "request_topup":
            db.run(credits.request_topup, actor, ws, args[0], reason="running low")
        elif name == "decide":
            request_id = self.ids(Request, args[0])
            if request_id is not None:
                db.run(decide_request, actor, request_id, approve=args[1], note="not this month")
        elif name == "revoke":
            key_id = self.ids(ApiKey, args[0])
            if key_id is not None:
                db.run(keys.revoke_key, actor, key_id, reason="rotating")
        elif name == "verify":
            db.run(audit.verify, actor, ws)
        f.provision_pending(db)  # approved keys become keys, as the worker would make them


def _verify(db, ws: int) -> audit.Verification:
    with db.session() as s:
        return audit.verify_chain(s, ws)


def _tamper(db, ws: int, how: str, seq: int, other: int) -> int:
    """Change the log behind the store's back; return the seq verification must name."""
    with db.engine.begin() as conn:

        def row(n: int):
            return conn.execute(select(AuditEvent.id, AuditEvent.at).where(AuditEvent.workspace_id == ws, AuditEvent.seq == n)).one()

        event_id, at = row(seq)
        edits = {
            "details": {"details": {"tampered": True}},
            "actor": {"actor": "slack:UINTRUDER"},
            "action": {"action": "audit.tampered"},
            "at": {"at": at + timedelta(seconds=1)},
        }
        if how in edits:
            conn.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(**edits[how]))
            return seq
        if how == "delete":
            conn.execute(delete(AuditEvent).where(AuditEvent.id == event_id))
            return seq
        # swap two events' places; seq is unique, so one of them steps aside first
        low, high = sorted((seq, other))
        low_id, high_id = row(low)[0], row(high)[0]
        conn.execute(update(AuditEvent).where(AuditEvent.id == low_id).values(seq=-1))
        conn.execute(update(AuditEvent).where(AuditEvent.id == high_id).values(seq=low))
        conn.execute(update(AuditEvent).where(AuditEvent.id == low_id).values(seq=high))
        return low


@store_settings
@given(
    environment=st.sampled_from(["production", "development"]),
    ops=st.lists(operations, max_size=20),
    how=st.sampled_from(["details", "actor", "action", "at", "delete", "swap"]),
    data=st.data(),
)
def test_audit_chain_verifies_after_any_operations_and_names_the_first_tampered_event(db, environment, ops, how, data):
    space = AuditedWorkspace(db, environment)
    for op in ops:
        try:
            space.play(op)
        except DomainError:
            pass  # refusals are part of the story: the denied ones are audited too
    intact = _verify(db, space.id)
    with db.session() as s:
        head = s.scalar(select(AuditHead.seq).where(AuditHead.workspace_id == space.id))
    assert intact.ok, intact.summary
    assert intact.checked == head

    seq = data.draw(st.integers(1, head), label="seq")
    other = data.draw(st.integers(1, head).filter(lambda n: n != seq), label="other") if how == "swap" else seq
    first_bad = _tamper(db, space.id, how, seq, other)
    broken = _verify(db, space.id)
    assert not broken.ok
    assert broken.first_bad_seq == first_bad, broken.summary
