"""A workspace's approval policy in the store: the defaults, setting and resetting it (audited), and requests that need several approvers."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store import approvals, budgets, decisions, keys
from store.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from store.models import Action, ApiKey, AuditEvent, Request
from store.models_policy import ApprovalRule, RequestApproval
from store.money import parse_money
from store.types import RequestState, Role
from tests import factories as f

PRODUCTION_POLICY = "key over $500: 2 admins + billing; key: 2 admins"


@pytest.fixture
def prod(db):
    """A production workspace with three Admins, a Billing Manager and a Developer who asks."""
    ws = f.workspace(db, "prod", "production")
    people = {
        name: f.member(db, ws, role)
        for name, role in (("ada", Role.ADMIN), ("bo", Role.ADMIN), ("cy", Role.ADMIN), ("bill", Role.BILLING), ("dev", Role.DEVELOPER))
    }
    return ws, people


def audit_actions(db, ws: int) -> list[tuple[str, str]]:
    with db.session() as s:
        return list(s.execute(select(AuditEvent.action, AuditEvent.outcome).where(AuditEvent.workspace_id == ws).order_by(AuditEvent.seq)))


def state(db, request_id: int) -> RequestState:
    with db.session() as s:
        return s.get(Request, request_id).state


def recorded(db, request_id: int) -> list[Role]:
    with db.session() as s:
        return list(s.scalars(select(RequestApproval.role).where(RequestApproval.request_id == request_id).order_by(RequestApproval.id)))


def provisions(db, request_id: int) -> int:
    with db.session() as s:
        return len(list(s.scalars(select(Action.id).where(Action.request_id == request_id, Action.kind == "provision_key"))))


# --- the defaults reproduce what Purser did before ----------------------------------------------


def test_production_default_needs_one_admin_and_the_first_admin_decides(db, prod):
    ws, p = prod
    req = db.run(keys.request_key, p["dev"], ws, name="bot", limit_micros=parse_money("$5,000"))
    assert req.state is RequestState.PENDING and req.approval_needs == {"admin": 1}
    decision = db.run(decisions.decide_request, p["ada"], req.id, approve=True)
    assert decision.final and state(db, req.id) is RequestState.APPROVED
    assert recorded(db, req.id) == [Role.ADMIN] and provisions(db, req.id) == 1
    # a Billing Manager has no say where the policy asks only Admins
    other = db.run(keys.request_key, p["dev"], ws, name="bot2")
    with pytest.raises(PermissionDenied, match="Only an Admin can approve or deny requests; you are a Billing Manager"):
        db.run(decisions.decide_request, p["bill"], other.id, approve=True)


def test_development_default_approves_within_the_preset_at_once_and_asks_an_admin_above_it(db):
    ws = f.workspace(db, "dev", "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    within = db.run(keys.request_key, dev, ws, name="small")
    above = db.run(keys.request_key, dev, ws, name="big", limit_micros=parse_money("$500"))
    assert within.state is RequestState.APPROVED and within.auto_approved and provisions(db, within.id) == 1
    assert above.state is RequestState.PENDING and above.approval_needs == {"admin": 1}


# --- setting the policy ---------------------------------------------------------------------


def test_an_admin_sets_the_policy_audited_with_the_rules_before_and_after(db, prod):
    ws, p = prod
    view = db.run(approvals.set_policy, p["ada"], ws, PRODUCTION_POLICY)
    assert view.own == ("key over $500.00: 2 Admins + 1 Billing Manager", "key: 2 Admins")
    assert view.defaults == ("key by admin: automatic", "any: 1 Admin")
    db.run(approvals.reset_policy, p["ada"], ws)
    assert db.run(approvals.show_policy, p["dev"], ws).own == ()
    with db.session() as s:
        changes = list(s.scalars(select(AuditEvent).where(AuditEvent.workspace_id == ws, AuditEvent.action == "policy.change").order_by(AuditEvent.seq)))
        assert [c.details["to"] for c in changes] == [list(view.own), []]
        assert changes[1].details["from"] == list(view.own)
        assert s.scalars(select(ApprovalRule)).all() == []


def test_only_an_admin_changes_the_policy_and_the_refusal_is_audited(db, prod):
    ws, p = prod
    with pytest.raises(PermissionDenied, match="Only an Admin can change who approves requests; you are a Developer"):
        db.run(approvals.set_policy, p["dev"], ws, "key: 2 admins")
    with pytest.raises(PermissionDenied):
        db.run(approvals.reset_policy, p["bill"], ws)
    assert audit_actions(db, ws)[-2:] == [("policy.change", "denied"), ("policy.change", "denied")]
    assert db.run(approvals.show_policy, p["dev"], ws).own == ()


def test_a_bad_policy_changes_nothing(db, prod):
    ws, p = prod
    db.run(approvals.set_policy, p["ada"], ws, "key: 2 admins")
    with pytest.raises(InvalidInput, match="Rule 2"):
        db.run(approvals.set_policy, p["ada"], ws, "key: admin; key: 9 admins")
    with pytest.raises(NotFound, match="`prod` has no project called `maps`"):
        db.run(approvals.set_policy, p["ada"], ws, "key project maps: 2 admins")
    assert db.run(approvals.show_policy, p["ada"], ws).own == ("key: 2 Admins",)


def test_a_rule_on_a_project_matches_its_requests_only(db, prod):
    ws, p = prod
    f.project(db, ws, "search")
    db.run(approvals.set_policy, p["ada"], ws, "key project search: 2 admins")
    assert db.run(keys.request_key, p["dev"], ws, name="a", project="search").approval_needs == {"admin": 2}
    assert db.run(keys.request_key, p["dev"], ws, name="b").approval_needs == {"admin": 1}


def test_a_waiting_request_keeps_what_it_was_opened_with(db, prod):
    ws, p = prod
    db.run(approvals.set_policy, p["ada"], ws, "key: 2 admins")
    req = db.run(keys.request_key, p["dev"], ws, name="bot")
    db.run(approvals.reset_policy, p["ada"], ws)
    assert not db.run(decisions.decide_request, p["ada"], req.id, approve=True).final
    assert db.run(decisions.decide_request, p["bo"], req.id, approve=True).final


def test_a_cap_change_can_need_a_billing_manager_too(db, prod):
    ws, p = prod
    db.run(approvals.set_policy, p["ada"], ws, "cap: admin + billing")
    req = db.run(budgets.request_cap_change, p["dev"], ws, parse_money("$900"), reason="launch")
    assert req.approval_needs == {"admin": 1, "billing": 1}
    assert db.run(decisions.decide_request, p["bill"], req.id, approve=True).still_needed == {Role.ADMIN: 1}
    assert db.run(decisions.decide_request, p["ada"], req.id, approve=True).final
    assert state(db, req.id) is RequestState.APPROVED


# --- several approvers ----------------------------------------------------------------------


def test_two_admins_and_a_billing_manager_each_count_once_and_the_last_makes_the_one_outcome(db, prod):
    ws, p = prod
    db.run(approvals.set_policy, p["ada"], ws, PRODUCTION_POLICY)
    req = db.run(keys.request_key, p["dev"], ws, name="big", limit_micros=parse_money("$600"))
    assert req.approval_needs == {"admin": 2, "billing": 1}

    first = db.run(decisions.decide_request, p["ada"], req.id, approve=True)
    assert first.still_needed == {Role.ADMIN: 1, Role.BILLING: 1}
    with pytest.raises(Conflict, match="You already approved request #.*each approver counts once. It still needs an Admin and a Billing Manager"):
        db.run(decisions.decide_request, p["ada"], req.id, approve=True)
    assert db.run(decisions.decide_request, p["bo"], req.id, approve=True).still_needed == {Role.BILLING: 1}
    with pytest.raises(Conflict, match="has all the Admin approvals it needs; it still needs a Billing Manager"):
        db.run(decisions.decide_request, p["cy"], req.id, approve=True)
    assert state(db, req.id) is RequestState.PENDING and provisions(db, req.id) == 0

    last = db.run(decisions.decide_request, p["bill"], req.id, approve=True)
    assert last.final and state(db, req.id) is RequestState.APPROVED
    assert recorded(db, req.id) == [Role.ADMIN, Role.ADMIN, Role.BILLING]
    assert provisions(db, req.id) == 1
    with db.session() as s:
        progress = list(s.scalars(select(Action.kind).where(Action.request_id == req.id, Action.kind == "request_progress")))
    assert progress == ["request_progress", "request_progress"]
    actions = [a for a, _ in audit_actions(db, ws)]
    assert actions[-3:] == ["request.approval", "request.approval", "request.approve"]
    f.provision_pending(db)
    with db.session() as s:
        assert len(s.scalars(select(ApiKey).where(ApiKey.request_id == req.id)).all()) == 1


def test_the_requester_never_approves_even_when_their_role_is_asked_for(db, prod):
    ws, p = prod
    db.run(approvals.set_policy, p["ada"], ws, "key by admin: 2 admins")
    req = db.run(keys.request_key, p["ada"], ws, name="mine")
    assert req.state is RequestState.PENDING
    with pytest.raises(PermissionDenied, match="You cannot decide your own request"):
        db.run(decisions.decide_request, p["ada"], req.id, approve=True)
    assert recorded(db, req.id) == []


def test_one_denial_ends_it_after_approvals(db, prod):
    ws, p = prod
    db.run(approvals.set_policy, p["ada"], ws, PRODUCTION_POLICY)
    req = db.run(keys.request_key, p["dev"], ws, name="big", limit_micros=parse_money("$600"))
    db.run(decisions.decide_request, p["ada"], req.id, approve=True)
    db.run(decisions.decide_request, p["bill"], req.id, approve=False, note="over the quarter's plan")
    assert state(db, req.id) is RequestState.DENIED and provisions(db, req.id) == 0
    with pytest.raises(Conflict, match="already denied by"):
        db.run(decisions.decide_request, p["bo"], req.id, approve=True)
