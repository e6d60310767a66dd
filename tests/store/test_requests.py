"""Requests: compare-and-set decisions, nobody decides their own, and each kind's change applied on approval."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from store import budgets, credits, decisions, invitations, keys, members, requests
from store.errors import Conflict, InvalidInput, LimitReached, PermissionDenied
from store.models import Action, AuditEvent, Invitation, Project, Request, Workspace
from store.money import parse_money
from store.types import InvitationStatus, RequestKind, RequestState, Role, utcnow
from tests import factories as f

USD = parse_money


def get_request(db, request_id: int) -> Request:
    with db.session() as s:
        # Read after the session closes: load the people the assertions look at.
        return s.get(Request, request_id, options=[joinedload(Request.requester), joinedload(Request.decided_by)])


def actions_for(db, request_id: int) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(Action.kind).where(Action.request_id == request_id).order_by(Action.created_at)))


def action_kinds(db) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(Action.kind).order_by(Action.created_at)))


@pytest.fixture
def team(db):
    ws = f.workspace(db, "team", "production")
    admin = f.member(db, ws, Role.ADMIN, "U0ADMIN1")
    other_admin = f.member(db, ws, Role.ADMIN, "U0ADMIN2")
    dev = f.member(db, ws, Role.DEVELOPER, "U0DEV")
    return ws, admin, other_admin, dev


def key_request(db, ws, dev) -> int:
    return db.run(keys.request_key, dev, ws, name="bot").id


def test_approval_moves_a_pending_request_and_writes_an_outbox_action(db, team):
    ws, admin, _, dev = team
    rid = key_request(db, ws, dev)
    decision = db.run(decisions.decide_request, admin, rid, approve=True, note="ok")
    req = get_request(db, rid)
    assert decision.approved and req.state is RequestState.APPROVED
    assert (req.decided_by.slack_user_id, req.decision_note) == ("U0ADMIN1", "ok") and req.decided_at is not None
    # provision_key shows the decision and tells the owner itself: one action for an approved key
    assert actions_for(db, rid) == ["request_opened", "provision_key"]


def test_the_second_decider_learns_who_decided_and_when(db, team):
    ws, admin, other_admin, dev = team
    rid = key_request(db, ws, dev)
    db.run(decisions.decide_request, admin, rid, approve=True)
    for approve in (True, False):
        with pytest.raises(Conflict, match=r"already approved by U0ADMIN1 at \d\d:\d\d UTC on \d{4}-\d\d-\d\d") as late:
            db.run(decisions.decide_request, other_admin, rid, approve=approve, note="too late")
        assert late.value.decided_by == "U0ADMIN1" and late.value.state == "approved"
        assert late.value.decided_at == get_request(db, rid).decided_at
    assert actions_for(db, rid) == ["request_opened", "provision_key"]


def test_a_conflict_names_policy_when_policy_approved(db):
    ws = f.workspace(db, "dev", "development")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    rid = key_request(db, ws, dev)
    with pytest.raises(Conflict, match="already approved by Purser's policy"):
        db.run(decisions.decide_request, admin, rid, approve=False, note="no")


def test_nobody_decides_their_own_request(db, team):
    ws, admin, other_admin, _ = team
    f.project(db, ws, "search")
    req = db.run(budgets.request_budget_change, admin, ws, "search", USD("$10"), reason="launch")
    with pytest.raises(PermissionDenied, match="cannot decide your own request"):
        db.run(decisions.decide_request, admin, req.id, approve=True)
    assert get_request(db, req.id).state is RequestState.PENDING
    with db.session() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied")).one()
        assert (denied.actor, denied.action, denied.details) == (admin.label, "request.approve", {"reason": "own request"})
    db.run(decisions.decide_request, other_admin, req.id, approve=True)
    assert get_request(db, req.id).state is RequestState.APPROVED


def test_only_admins_decide(db, team):
    ws, _, _, dev = team
    billing = f.member(db, ws, Role.BILLING)
    rid = key_request(db, ws, dev)
    for who in (dev, billing):
        with pytest.raises(PermissionDenied, match="Only an Admin can approve or deny requests"):
            db.run(decisions.decide_request, who, rid, approve=True)
    assert get_request(db, rid).state is RequestState.PENDING


def test_denial_needs_a_reason_which_the_requester_reads(db, team):
    ws, admin, _, dev = team
    rid = key_request(db, ws, dev)
    with pytest.raises(InvalidInput, match="Say why you deny it"):
        db.run(decisions.decide_request, admin, rid, approve=False, note="  ")
    assert get_request(db, rid).state is RequestState.PENDING
    db.run(decisions.decide_request, admin, rid, approve=False, note="use the shared key")
    req = get_request(db, rid)
    assert (req.state, req.decision_note) == (RequestState.DENIED, "use the shared key")
    assert actions_for(db, rid) == ["request_opened", "request_decided"]


@pytest.mark.calendar
def test_pending_requests_expire_after_seven_days(db, team):
    ws, admin, _, dev = team
    rid = key_request(db, ws, dev)
    assert db.run(requests.expire_requests, utcnow() + timedelta(days=6, hours=23)) == 0
    assert db.run(requests.expire_requests, utcnow() + timedelta(days=7, minutes=1)) == 1
    assert get_request(db, rid).state is RequestState.EXPIRED
    assert actions_for(db, rid) == ["request_opened", "request_decided"]
    with pytest.raises(Conflict, match="already expired"):
        db.run(decisions.decide_request, admin, rid, approve=True)
    with db.session() as s:
        assert [r.id for r in requests.pending_requests(s, admin, ws)] == []


@pytest.mark.calendar
def test_deciding_past_the_expiry_is_refused(db, team):
    ws, admin, _, dev = team
    rid = key_request(db, ws, dev)
    with db.session() as s:
        s.get(Request, rid).expires_at = utcnow() - timedelta(seconds=1)
        s.commit()
    with pytest.raises(Conflict, match="expired on"):
        db.run(decisions.decide_request, admin, rid, approve=True)
    assert "provision_key" not in action_kinds(db)


@pytest.mark.calendar
def test_approved_budget_change_applies_the_budget(db, team):
    ws, admin, _, dev = team
    f.project(db, ws, "search", budget=USD("$10"))
    with pytest.raises(InvalidInput, match="Say why"):
        db.run(budgets.request_budget_change, dev, ws, "search", USD("$50"))
    req = db.run(budgets.request_budget_change, dev, ws, "search", USD("$50"), "weekly", reason="launch week")
    assert req.payload["current_micros"] == USD("$10")
    db.run(decisions.decide_request, admin, req.id, approve=True)
    with db.session() as s:
        p = s.scalars(select(Project).where(Project.slug == "search")).one()
        assert (p.budget_micros, p.budget_period.value) == (USD("$50"), "weekly")
        change = s.scalars(select(AuditEvent).where(AuditEvent.action == "budget.set")).one()
        assert change.details["request"] == req.id and change.actor == admin.label
    assert {"apply_budget", "request_decided"} <= set(action_kinds(db))


@pytest.mark.calendar
def test_approved_cap_change_applies_the_cap(db, team):
    ws, admin, _, dev = team
    req = db.run(budgets.request_cap_change, dev, ws, USD("$500"), reason="more traffic")
    db.run(decisions.decide_request, admin, req.id, approve=True)
    with db.session() as s:
        assert s.get(Workspace, ws).cap_micros == USD("$500")
    assert "apply_cap" in action_kinds(db)


def test_approved_role_change_applies_the_role(db, team):
    ws, admin, _, dev = team
    viewer = f.member(db, ws, Role.VIEWER)
    req = db.run(members.request_role_change, dev, ws, f.member_id(db, ws, viewer), "developer", reason="joins the team")
    db.run(decisions.decide_request, admin, req.id, approve=True)
    with db.session() as s:
        assert members.find_member(s, ws, viewer.slack_user_id).role is Role.DEVELOPER
        change = s.scalars(select(AuditEvent).where(AuditEvent.action == "member.role")).one()
        assert change.details == {"from": "viewer", "to": "developer", "request": req.id}


@pytest.mark.calendar
def test_approved_top_up_request_adds_credit(db, team):
    ws, admin, _, dev = team
    with pytest.raises(InvalidInput):
        db.run(credits.request_topup, dev, ws, 0)
    req = db.run(credits.request_topup, dev, ws, USD("$25"), reason="demo day")
    db.run(decisions.decide_request, admin, req.id, approve=True)
    with db.session() as s:
        w = s.get(Workspace, ws)
        assert (w.credit_balance_micros, w.credit_funded) == (USD("$25"), True)
        added = s.scalars(select(AuditEvent).where(AuditEvent.action == "credit.add")).one()
        assert added.details["request"] == req.id
    assert actions_for(db, req.id) == ["request_opened", "request_decided"]


def test_approved_invite_request_sends_the_invitations(db, team):
    ws, admin, _, dev = team
    db.run(invitations.invite, dev, ws, ["U0FRIEND", "pal@example.com"], "viewer")
    [req] = [r for r in db.run(requests.pending_requests, admin, ws) if r.kind is RequestKind.INVITE]
    db.run(decisions.decide_request, admin, req.id, approve=True)
    admin_id = f.member_id(db, ws, admin)
    with db.session() as s:
        invs = s.scalars(select(Invitation).order_by(Invitation.id)).all()
        assert [(i.invitee, i.role.value, i.status) for i in invs] == [
            ("U0FRIEND", "viewer", InvitationStatus.PENDING),
            ("pal@example.com", "viewer", InvitationStatus.PENDING),
        ]
        assert {i.inviter_id for i in invs} == {admin_id}
    assert action_kinds(db).count("send_invitation") == 2


def test_a_failing_change_leaves_the_request_pending(db, team):
    ws, admin, _, dev = team
    for _ in range(3):
        f.member(db, ws, Role.ADMIN)  # five admins: the role is full
    viewer = f.member(db, ws, Role.VIEWER)
    req = db.run(members.request_role_change, dev, ws, f.member_id(db, ws, viewer), "admin")
    with pytest.raises(LimitReached, match="5 Admins"):
        db.run(decisions.decide_request, admin, req.id, approve=True)
    assert get_request(db, req.id).state is RequestState.PENDING
    assert actions_for(db, req.id) == ["request_opened"]
    db.run(decisions.decide_request, admin, req.id, approve=False, note="no room")
    assert get_request(db, req.id).state is RequestState.DENIED


def test_a_budget_change_over_the_cap_leaves_the_request_pending(db, team):
    ws, admin, _, dev = team
    db.run(budgets.set_workspace_cap, admin, ws, USD("$100"))
    f.project(db, ws, "search", budget=USD("$10"))
    req = db.run(budgets.request_budget_change, dev, ws, "search", USD("$101"), reason="big")
    with pytest.raises(LimitReached, match=r"at most \$100.00, not \$101.00"):
        db.run(decisions.decide_request, admin, req.id, approve=True)
    assert get_request(db, req.id).state is RequestState.PENDING


def test_viewers_cannot_ask_for_changes(db, team):
    ws, _, _, _ = team
    viewer = f.member(db, ws, Role.VIEWER)
    with pytest.raises(PermissionDenied, match="can ask for this"):
        db.run(budgets.request_cap_change, viewer, ws, USD("$1"), reason="x")
    with pytest.raises(PermissionDenied):
        db.run(credits.request_topup, viewer, ws, USD("$1"))


def test_a_role_change_for_someone_already_in_that_role_is_refused(db, team):
    ws, _, _, dev = team
    with pytest.raises(Conflict, match="already a Developer"):
        db.run(members.request_role_change, dev, ws, f.member_id(db, ws, dev), "dev")
