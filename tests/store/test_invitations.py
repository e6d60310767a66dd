"""Invitations: by Slack user or e-mail, one result per invitee, seven days to accept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from store import invitations, members
from store.errors import Conflict, LimitReached, NotFound, PermissionDenied
from store.models import Action, AuditEvent, Invitation, Request
from store.permissions import Actor
from store.types import InvitationStatus, MemberStatus, RequestKind, Role, utcnow
from tests import factories as f


def invite(db, actor, ws, *invitees, role="developer"):
    return {r.invitee: r for r in db.run(invitations.invite, actor, ws, list(invitees), role)}


def invitation(db, invitation_id: int) -> Invitation:
    with db.session() as s:
        return s.get(Invitation, invitation_id)


@pytest.mark.calendar
def test_admin_invites_by_slack_user_and_by_email_with_a_seven_day_expiry(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    results = invite(db, admin, ws, "U0ALICE", "Bob@Example.com", role="viewer")
    assert {who: r.outcome for who, r in results.items()} == {"U0ALICE": "invited", "bob@example.com": "invited"}
    alice = invitation(db, results["U0ALICE"].invitation_id)
    bob = invitation(db, results["bob@example.com"].invitation_id)
    assert (alice.invitee_slack_id, alice.role, alice.status) == ("U0ALICE", Role.VIEWER, InvitationStatus.PENDING)
    assert bob.invitee_email == "bob@example.com" and bob.invitee_slack_id is None
    assert timedelta(days=7) - timedelta(minutes=1) < alice.expires_at - utcnow() <= timedelta(days=7)
    with db.session() as s:
        sent = s.scalars(select(Action).where(Action.kind == "send_invitation")).all()
        assert sorted(a.payload["invitation_id"] for a in sent) == sorted([alice.id, bob.id])
        audited = s.scalars(select(AuditEvent).where(AuditEvent.action == "member.invite")).all()
        assert sorted(e.details["invitee"] for e in audited) == ["U0ALICE", "bob@example.com"]


def test_bulk_invite_reports_one_result_per_invitee(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    member = f.member(db, ws, Role.VIEWER, "U0MEMBER")
    invite(db, admin, ws, "U0WAITING")
    results = invite(db, admin, ws, "U0NEW1", "U0NEW2", "U0MEMBER", "U0WAITING", "not a person", "new@example.com", "other@example.com", "U0NEW1")
    assert {who: r.outcome for who, r in results.items()} == {
        "U0NEW1": "invited",
        "U0NEW2": "invited",
        member.slack_user_id: "already_member",
        "U0WAITING": "already_invited",
        "not a person": "invalid",
        "new@example.com": "invited",
        "other@example.com": "invited",
    }
    assert "already a Viewer" in results["U0MEMBER"].message
    assert "not a Slack user id" in results["not a person"].message
    with db.session() as s:
        assert len(s.scalars(select(Invitation).where(Invitation.status == InvitationStatus.PENDING)).all()) == 5


def test_an_email_only_member_is_not_mistaken_for_every_email_invitee(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    db.run(members.add_member, f.OPERATOR, ws, role="viewer", email="known@example.com")
    results = invite(db, admin, ws, "known@example.com", "stranger@example.com", "U0SOMEONE")
    assert {who: r.outcome for who, r in results.items()} == {
        "known@example.com": "already_member",
        "stranger@example.com": "invited",
        "U0SOMEONE": "invited",
    }


def test_a_full_role_is_reported_per_invitee(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    for _ in range(3):
        f.member(db, ws, Role.BILLING)
    results = invite(db, admin, ws, "U0PAYER", role="billing")
    assert results["U0PAYER"].outcome == "role_full"
    assert "3 Billing Managers" in results["U0PAYER"].message
    with db.session() as s:
        assert s.scalars(select(Invitation)).all() == []


def test_accepting_provisions_the_role(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    inv_id = invite(db, admin, ws, "U0ALICE", role="billing")["U0ALICE"].invitation_id
    member = db.run(invitations.accept_invitation, inv_id, slack_user_id="U0ALICE")
    assert (member.role, member.status, member.slack_user_id) == (Role.BILLING, MemberStatus.ACTIVE, "U0ALICE")
    inv = invitation(db, inv_id)
    assert (inv.status, inv.member_id) == (InvitationStatus.ACCEPTED, member.id) and inv.decided_at is not None
    with pytest.raises(Conflict, match="already accepted"):
        db.run(invitations.accept_invitation, inv_id, slack_user_id="U0ALICE")


def test_an_email_invitation_is_accepted_by_whoever_shows_that_address(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    inv_id = invite(db, admin, ws, "carol@example.com")["carol@example.com"].invitation_id
    with pytest.raises(NotFound, match="no invitation for you"):
        db.run(invitations.accept_invitation, inv_id, slack_user_id="U0CAROL", email="mallory@example.com")
    with db.session() as s:
        assert [i.id for i in invitations.pending_invitations_for(s, "U0CAROL", "Carol@Example.com")] == [inv_id]
    member = db.run(invitations.accept_invitation, inv_id, slack_user_id="U0CAROL", email="Carol@Example.com")
    assert (member.email, member.slack_user_id, member.role) == ("carol@example.com", "U0CAROL", Role.DEVELOPER)


def test_someone_else_cannot_accept_a_slack_invitation(db):
    ws = f.workspace(db)
    inv_id = invite(db, f.OPERATOR, ws, "U0ALICE")["U0ALICE"].invitation_id
    with pytest.raises(NotFound):
        db.run(invitations.accept_invitation, inv_id, slack_user_id="U0EVE")
    assert invitation(db, inv_id).status is InvitationStatus.PENDING


def test_role_cap_is_checked_again_at_accept_time(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    inv_id = invite(db, admin, ws, "U0LATE", role="billing")["U0LATE"].invitation_id
    for _ in range(3):  # the role fills up while the invitation waits
        f.member(db, ws, Role.BILLING)
    with pytest.raises(LimitReached, match="3 Billing Managers"):
        db.run(invitations.accept_invitation, inv_id, slack_user_id="U0LATE")
    assert invitation(db, inv_id).status is InvitationStatus.PENDING
    with db.session() as s:
        denied = s.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied")).one()
        assert (denied.actor, denied.details["reason"]) == ("slack:U0LATE", "role cap")


def test_declining_closes_the_invitation(db):
    ws = f.workspace(db)
    inv_id = invite(db, f.OPERATOR, ws, "U0BOB")["U0BOB"].invitation_id
    db.run(invitations.decline_invitation, inv_id, slack_user_id="U0BOB")
    assert invitation(db, inv_id).status is InvitationStatus.DECLINED
    with pytest.raises(Conflict, match="already declined"):
        db.run(invitations.accept_invitation, inv_id, slack_user_id="U0BOB")
    # a declined invitation does not block a new one
    assert invite(db, f.OPERATOR, ws, "U0BOB")["U0BOB"].outcome == "invited"


@pytest.mark.calendar
def test_expired_invitations_lapse_and_cannot_be_accepted(db):
    ws = f.workspace(db)
    inv_id = invite(db, f.OPERATOR, ws, "U0SLOW")["U0SLOW"].invitation_id
    assert db.run(invitations.expire_invitations, utcnow() + timedelta(days=6)) == 0
    assert db.run(invitations.expire_invitations, utcnow() + timedelta(days=7, minutes=1)) == 1
    assert invitation(db, inv_id).status is InvitationStatus.EXPIRED
    with pytest.raises(Conflict, match="already expired"):
        db.run(invitations.accept_invitation, inv_id, slack_user_id="U0SLOW")
    with db.session() as s:
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.resource == f"invitation:{inv_id}")).all() == [
            "member.invite",
            "invitation.expire",
        ]
    assert invite(db, f.OPERATOR, ws, "U0SLOW")["U0SLOW"].outcome == "invited"


@pytest.mark.calendar
def test_accepting_past_the_expiry_is_refused_even_before_the_clock_runs(db):
    ws = f.workspace(db)
    inv_id = invite(db, f.OPERATOR, ws, "U0SLOW")["U0SLOW"].invitation_id
    with db.session() as s:  # seven days pass
        s.get(Invitation, inv_id).expires_at = utcnow() - timedelta(seconds=1)
        s.commit()
    with pytest.raises(Conflict, match="expired on"):
        db.run(invitations.accept_invitation, inv_id, slack_user_id="U0SLOW")
    with db.session() as s:
        assert members.membership(s, Actor.slack("U0SLOW"), ws) is None


def test_a_removed_member_accepting_comes_back_with_the_invited_role(db):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    mid = f.member_id(db, ws, dev)
    db.run(members.remove_member, f.OPERATOR, ws, mid)
    inv_id = invite(db, f.OPERATOR, ws, dev.slack_user_id, role="viewer")[dev.slack_user_id].invitation_id
    member = db.run(invitations.accept_invitation, inv_id, slack_user_id=dev.slack_user_id)
    assert (member.id, member.role, member.status) == (mid, Role.VIEWER, MemberStatus.ACTIVE)


def test_a_developers_invitation_becomes_a_request(db):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    results = invite(db, dev, ws, "U0FRIEND", "junk")
    assert {who: r.outcome for who, r in results.items()} == {"junk": "invalid", "U0FRIEND": "requested"}
    with db.session() as s:
        assert s.scalars(select(Invitation)).all() == []
        [req] = s.scalars(select(Request)).all()
        assert (req.kind, req.payload) == (RequestKind.INVITE, {"invitees": ["U0FRIEND"], "role": "developer"})


def test_viewers_and_strangers_cannot_invite(db):
    ws = f.workspace(db)
    viewer = f.member(db, ws, Role.VIEWER)
    with pytest.raises(PermissionDenied):
        invite(db, viewer, ws, "U0FRIEND")
    with pytest.raises(PermissionDenied, match="not a member"):
        invite(db, Actor.slack("U0OUTSIDE"), ws, "U0FRIEND")
