"""The credit pool: top-ups into the ledger, spend out of it, an empty pool pauses the workspace."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store import credits
from store.budgets import set_workspace_cap
from store.errors import InvalidInput, PermissionDenied
from store.models import Action, AuditEvent, CreditEntry, Workspace
from store.money import parse_money
from store.types import BudgetKind, Role, WorkspaceStatus
from tests import factories as f

USD = parse_money


def workspace(db, ws: int) -> Workspace:
    with db.session() as s:
        return s.get(Workspace, ws)


def ledger(db, ws: int) -> list[tuple[str, int, int]]:
    with db.session() as s:
        entries = s.scalars(select(CreditEntry).where(CreditEntry.workspace_id == ws).order_by(CreditEntry.id))
        return [(e.kind, e.amount_micros, e.balance_after_micros) for e in entries]


@pytest.fixture
def team(db):
    ws = f.workspace(db, "team", "development")
    admin = f.member(db, ws, Role.ADMIN)
    billing = f.member(db, ws, Role.BILLING)
    dev = f.member(db, ws, Role.DEVELOPER)
    key_id, _ = f.key(db, ws, dev, "bot")
    return ws, admin, billing, dev, key_id


def test_billing_and_admins_top_up_into_the_ledger(db, team):
    ws, admin, billing, _, _ = team
    db.run(credits.add_credit, billing, ws, USD("$100"), "invoice 42")
    db.run(credits.add_credit, admin, ws, USD("$50"))
    assert ledger(db, ws) == [("topup", USD("$100"), USD("$100")), ("topup", USD("$50"), USD("$150"))]
    with db.session() as s:
        balance = credits.credit_balance(s, billing, ws)
        assert (balance.balance_micros, balance.funded) == (USD("$150"), True)
        assert balance.entries[-1].note == "invoice 42"
        added = s.scalars(select(AuditEvent).where(AuditEvent.action == "credit.add")).all()
        assert [(e.actor, e.details) for e in added] == [
            (billing.label, {"amount_micros": USD("$100"), "balance_micros": USD("$100")}),
            (admin.label, {"amount_micros": USD("$50"), "balance_micros": USD("$150")}),
        ]


def test_developers_and_viewers_cannot_add_credit_or_see_statements(db, team):
    ws, _, _, dev, _ = team
    viewer = f.member(db, ws, Role.VIEWER)
    with pytest.raises(PermissionDenied, match="ask an admin instead"):
        db.run(credits.add_credit, dev, ws, USD("$1"))
    with pytest.raises(PermissionDenied, match="Only an Admin or Billing Manager"):
        db.run(credits.add_credit, viewer, ws, USD("$1"))
    with pytest.raises(PermissionDenied):
        db.run(credits.credit_balance, viewer, ws)
    assert ledger(db, ws) == []


def test_a_top_up_must_be_positive(db, team):
    ws, admin, _, _, _ = team
    for amount in (0, -1):
        with pytest.raises(InvalidInput, match=r"more than \$0.00"):
            db.run(credits.add_credit, admin, ws, amount)
    assert workspace(db, ws).credit_funded is False


@pytest.mark.calendar
def test_spend_debits_a_funded_pool(db, team):
    ws, admin, _, _, key_id = team
    db.run(credits.add_credit, admin, ws, USD("$10"))
    f.spend(db, key_id, USD("$3.25"))
    assert workspace(db, ws).credit_balance_micros == USD("$6.75")
    assert ledger(db, ws)[-1] == ("spend", -USD("$3.25"), USD("$6.75"))


@pytest.mark.calendar
def test_an_unfunded_pool_only_counts_and_never_pauses(db, team):
    ws, _, _, _, key_id = team
    result = f.spend(db, key_id, USD("$1,000"))
    w = workspace(db, ws)
    assert (w.credit_balance_micros, w.credit_funded, w.status) == (0, False, WorkspaceStatus.ACTIVE)
    assert result.paused == [] and ledger(db, ws) == []


@pytest.mark.calendar
def test_an_empty_pool_pauses_the_workspace_and_a_top_up_resumes_it(db, team):
    ws, admin, billing, _, key_id = team
    db.run(credits.add_credit, billing, ws, USD("$5"))
    result = f.spend(db, key_id, USD("$5"))  # exactly empty counts as empty
    assert result.paused == ["workspace:team"]
    w = workspace(db, ws)
    assert (w.status, w.paused_reason, w.credit_balance_micros) == (WorkspaceStatus.PAUSED, "credit", 0)
    f.spend(db, key_id, USD("$1"))  # late-reported spend still counts, below zero
    assert workspace(db, ws).credit_balance_micros == -USD("$1")
    db.run(credits.add_credit, billing, ws, USD("$1"))
    assert workspace(db, ws).status is WorkspaceStatus.PAUSED  # back at $0.00: still empty
    db.run(credits.add_credit, billing, ws, USD("$2"))
    w = workspace(db, ws)
    assert (w.status, w.paused_reason, w.credit_balance_micros) == (WorkspaceStatus.ACTIVE, None, USD("$2"))
    with db.session() as s:
        kinds = [a.kind for a in s.scalars(select(Action).order_by(Action.created_at)) if a.kind.endswith("_workspace")]
        assert kinds == ["pause_workspace", "resume_workspace"]
        actions = [e.action for e in s.scalars(select(AuditEvent).where(AuditEvent.action.like("workspace.%")).order_by(AuditEvent.seq))]
        assert actions == ["workspace.create", "workspace.pause", "workspace.resume"]


@pytest.mark.calendar
def test_pool_thresholds_are_announced_against_the_last_top_up(db, team):
    ws, admin, _, _, key_id = team
    db.run(credits.add_credit, admin, ws, USD("$100"))
    result = f.spend(db, key_id, USD("$85"))
    [crossing] = [c for c in result.crossings if c.kind is BudgetKind.CREDIT]
    assert (crossing.threshold, crossing.spent_micros, crossing.limit_micros) == (80, USD("$85"), USD("$100"))
    assert "the credit pool has used 80% ($85.00 of $100.00)" == crossing.describe()
    assert [c for c in f.spend(db, key_id, USD("$1")).crossings if c.kind is BudgetKind.CREDIT] == []


@pytest.mark.calendar
def test_a_cap_paused_workspace_is_not_resumed_by_a_top_up(db, team):
    ws, admin, _, _, key_id = team
    db.run(set_workspace_cap, admin, ws, USD("$5"))
    db.run(credits.add_credit, admin, ws, USD("$100"))
    f.spend(db, key_id, USD("$5"))
    db.run(credits.add_credit, admin, ws, USD("$100"))
    w = workspace(db, ws)
    assert (w.status, w.paused_reason) == (WorkspaceStatus.PAUSED, "cap")
