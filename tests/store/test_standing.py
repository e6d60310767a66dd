"""A key's standing where features meet: roles and the keys they leave, top-ups and a spent cap, rollover and an empty pool.

Each test asks what a gateway hears (`/v1/authz`'s decision) through the store's own
operations, as Slack, the CLI and the workers would change things.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from store import budgets, credits, keys, members
from store.authz import decide, load_key_state
from store.budgets import set_workspace_cap
from store.errors import Conflict
from store.models import Action, AlertSent, Request, Workspace
from store.money import parse_money
from store.periods import next_period_start
from store.secrets import hash_secret
from store.types import Period, RequestState, Role, WorkspaceStatus, utcnow
from store.rollover import roll_over_periods
from tests import factories as f

USD = parse_money


def heard(db, secret: str) -> tuple[int, str]:
    """What a gateway hears for this key now: (status, reason)."""
    with db.session() as s:
        decision = decide(load_key_state(s, hash_secret(secret)), "127.0.0.1", None)
    return decision.status, decision.reason


def workspace(db, ws: int) -> Workspace:
    with db.session() as s:
        return s.get(Workspace, ws)


@pytest.fixture
def team(db):
    ws = f.workspace(db, "team", "production")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    return ws, admin, dev


@pytest.mark.parametrize("role", [Role.VIEWER, Role.BILLING])
def test_a_developer_made_viewer_or_billing_loses_model_access_and_gets_it_back_when_made_developer_again(db, team, role):
    ws, admin, dev = team
    key_id, secret = f.key(db, ws, dev, "bot")
    assert heard(db, secret) == (200, "ok")
    dev_id = f.member_id(db, ws, dev)
    db.run(members.change_role, admin, ws, dev_id, role)
    assert heard(db, secret) == (401, "owner_role")
    with db.session() as s:  # the provider is told to disable it
        synced = [a.payload["key_ids"] for a in s.scalars(select(Action).where(Action.kind == "sync_key_state"))]
    assert [key_id] in synced
    db.run(members.change_role, admin, ws, dev_id, Role.DEVELOPER)
    assert heard(db, secret) == (200, "ok")


def test_a_key_request_pending_when_its_owner_is_demoted_is_withdrawn(db, team):
    ws, admin, dev = team
    req = db.run(keys.request_key, dev, ws, name="late-bot")
    assert req.state is RequestState.PENDING
    db.run(members.change_role, admin, ws, f.member_id(db, ws, dev), Role.VIEWER)
    with db.session() as s:
        assert s.get(Request, req.id).state is RequestState.CANCELLED


def test_a_key_approved_before_a_demotion_is_not_made_after_it(db, team):
    ws, admin, dev = team
    req = db.run(keys.request_key, dev, ws, name="late-bot")
    from store.decisions import decide_request

    db.run(decide_request, admin, req.id, approve=True)  # approved: the provision_key action waits for a worker
    db.run(members.change_role, admin, ws, f.member_id(db, ws, dev), Role.VIEWER)
    with db.session() as s:
        why = keys.owner_may_not_hold_keys(s, s.get(Request, req.id))
    assert why is not None and "Viewer" in why


def test_a_demoted_owner_cannot_reveal_the_secret(db, team):
    ws, admin, dev = team
    key_id, _ = f.key(db, ws, dev, "bot")
    db.run(members.change_role, admin, ws, f.member_id(db, ws, dev), Role.VIEWER)
    with pytest.raises(Conflict, match="Viewer"):
        db.run(keys.reveal_key, dev, key_id)
    db.run(members.change_role, admin, ws, f.member_id(db, ws, dev), Role.DEVELOPER)
    assert db.run(keys.reveal_key, dev, key_id).secret.startswith("sk-purser-")


def capped_and_funded(db, team) -> tuple[int, str]:
    """A Developer's key in a workspace with a $10 cap and $5 in its pool."""
    ws, admin, dev = team
    key_id, secret = f.key(db, ws, dev, "bot")
    db.run(set_workspace_cap, admin, ws, USD("$10"))
    db.run(credits.add_credit, admin, ws, USD("$5"))
    return key_id, secret


@pytest.mark.calendar
def test_a_top_up_does_not_resume_a_workspace_whose_cap_is_spent(db, team):
    ws, admin, dev = team
    key_id, secret = capped_and_funded(db, team)
    f.spend(db, key_id, USD("$6"))
    assert heard(db, secret) == (402, "credit_pool")
    f.spend(db, key_id, USD("$6"))  # $12 of a $10 cap, and the pool still empty: the cap is what to name
    assert heard(db, secret) == (402, "workspace_cap")
    db.run(credits.add_credit, admin, ws, USD("$100"))
    assert heard(db, secret) == (402, "workspace_cap")
    assert (workspace(db, ws).status, workspace(db, ws).paused_reason) == (WorkspaceStatus.PAUSED, "cap")
    db.run(set_workspace_cap, admin, ws, USD("$50"))
    assert heard(db, secret) == (200, "ok")
    assert workspace(db, ws).status is WorkspaceStatus.ACTIVE


@pytest.mark.calendar
def test_a_new_cap_period_does_not_resume_a_workspace_whose_pool_is_empty(db, team, clock):
    ws, admin, dev = team
    key_id, secret = capped_and_funded(db, team)
    f.spend(db, key_id, USD("$12"))
    assert heard(db, secret) == (402, "workspace_cap")
    clock.move_to(next_period_start(Period.MONTHLY, utcnow()) + timedelta(hours=1))
    db.run(roll_over_periods)
    assert heard(db, secret) == (402, "credit_pool")  # the cap is new, the pool is still $7 short
    assert (workspace(db, ws).status, workspace(db, ws).paused_reason) == (WorkspaceStatus.PAUSED, "credit")
    db.run(credits.add_credit, admin, ws, USD("$20"))
    assert heard(db, secret) == (200, "ok")
    assert workspace(db, ws).status is WorkspaceStatus.ACTIVE


def test_the_clock_crossing_new_year_splits_spend_pauses_and_alerts_by_year(db, clock):
    """The year's last second and the next year's first: each spend in its own period, the pause lifted by the new one."""
    clock.move_to(datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone.utc))
    ws = f.workspace(db, "shop", "development")
    admin = f.member(db, ws, Role.ADMIN)
    f.project(db, ws, "search", budget=USD("$10"))
    key_id, _ = f.key(db, ws, f.member(db, ws, Role.DEVELOPER), "bot", project="search")
    assert f.spend(db, key_id, USD("$10")).paused == ["project:search"]
    clock.move_to(datetime(2027, 1, 1, 0, 0, 0, tzinfo=timezone.utc))
    assert db.run(roll_over_periods) == [{"workspace_id": ws, "resumed": ["project `search`"]}]
    assert [c.threshold for c in f.spend(db, key_id, USD("$5")).crossings] == [50]  # re-armed for the new year
    lines = {line.name: line for line in db.run(budgets.budget_overview, admin, ws)}
    assert lines["search"].spent_micros == USD("$5") and not lines["search"].paused
    with db.session() as s:
        starts = sorted(s.scalars(select(AlertSent.period_start).where(AlertSent.threshold == 50)))
    assert [(t.year, t.month, t.day) for t in starts] == [(2026, 12, 1), (2027, 1, 1)]
