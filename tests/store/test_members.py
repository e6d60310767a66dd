"""Members and roles: caps, the last admin, leaving, and what removal does to keys."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store import members
from store.errors import Conflict, InvalidInput, LimitReached, NotFound, PermissionDenied
from store.models import Action, ApiKey, AuditEvent, KeyReveal, Member
from store.types import KeyStatus, MemberStatus, Role
from tests import factories as f


def audit_of(db, ws: int) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.workspace_id == ws).order_by(AuditEvent.seq)))


def roles(db, ws: int) -> dict[str, Role]:
    with db.session() as s:
        return {m.label: m.role for m in members.list_members(s, f.OPERATOR, ws)}


def test_operator_adds_the_first_admin_who_then_adds_others(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(members.add_member, admin, ws, role="billing manager", email="Pay@Example.com")
    assert roles(db, ws) == {admin.slack_user_id: Role.ADMIN, "pay@example.com": Role.BILLING, dev.slack_user_id: Role.DEVELOPER}
    added = [e for e in audit_of(db, ws) if e.action == "member.add"]
    assert [e.actor for e in added] == ["system:test", "system:test", admin.label]


def test_adding_someone_twice_is_a_conflict(db):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    with pytest.raises(Conflict, match="already a Developer"):
        db.run(members.add_member, f.OPERATOR, ws, role="viewer", slack_user_id=dev.slack_user_id)


def test_bad_member_input_is_refused_with_how_to_say_it(db):
    ws = f.workspace(db)
    cases = [
        ({"role": "owner", "slack_user_id": "U0AAA"}, "not a role"),
        ({"role": "viewer", "slack_user_id": "bob"}, "not a Slack user id"),
        ({"role": "viewer", "email": "bob@"}, "not an e-mail address"),
        ({"role": "viewer"}, "Slack user id, e-mail, or both"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidInput, match=message):
            db.run(members.add_member, f.OPERATOR, ws, **kwargs)


def test_developer_cannot_add_members(db):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    with pytest.raises(PermissionDenied, match="ask an admin instead"):
        db.run(members.add_member, dev, ws, role="viewer", slack_user_id="U0NEWBIE")


def test_billing_managers_are_capped_at_three(db):
    ws = f.workspace(db)
    for _ in range(3):
        f.member(db, ws, Role.BILLING)
    with pytest.raises(LimitReached, match=r"already has 3 Billing Managers, the most a workspace may have \(3\)"):
        f.member(db, ws, Role.BILLING)
    dev = f.member(db, ws, Role.DEVELOPER)
    with pytest.raises(LimitReached):
        db.run(members.change_role, f.OPERATOR, ws, f.member_id(db, ws, dev), "billing")
    assert list(roles(db, ws).values()).count(Role.BILLING) == 3


def test_admins_are_capped_at_five(db):
    ws = f.workspace(db)
    for _ in range(5):
        f.member(db, ws, Role.ADMIN)
    with pytest.raises(LimitReached, match="5 Admins"):
        f.member(db, ws, Role.ADMIN)


def test_the_last_admin_cannot_leave_be_removed_or_be_demoted(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    me = f.member_id(db, ws, admin)
    with pytest.raises(LimitReached, match="must keep at least one Admin"):
        db.run(members.remove_member, admin, ws, me)
    with pytest.raises(LimitReached, match="must keep at least one Admin"):
        db.run(members.change_role, admin, ws, me, "developer")
    with pytest.raises(LimitReached, match="must keep at least one Admin"):
        db.run(members.remove_member, f.OPERATOR, ws, me)
    assert roles(db, ws) == {admin.slack_user_id: Role.ADMIN}
    denials = [(e.action, e.details["reason"]) for e in audit_of(db, ws) if e.outcome == "denied"]
    assert denials == [("member.leave", "last admin"), ("member.demote", "last admin"), ("member.remove", "last admin")]


def test_an_admin_may_step_down_once_another_admin_exists(db):
    ws = f.workspace(db)
    first = f.member(db, ws, Role.ADMIN)
    second = f.member(db, ws, Role.ADMIN)
    db.run(members.change_role, first, ws, f.member_id(db, ws, first), "developer")
    assert roles(db, ws) == {first.slack_user_id: Role.DEVELOPER, second.slack_user_id: Role.ADMIN}
    [change] = [e for e in audit_of(db, ws) if e.action == "member.role"]
    assert change.details == {"from": "admin", "to": "developer"}


def test_changing_to_the_same_role_is_a_conflict(db):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    with pytest.raises(Conflict, match="already a Developer"):
        db.run(members.change_role, f.OPERATOR, ws, f.member_id(db, ws, dev), Role.DEVELOPER)


def test_anyone_may_leave(db):
    ws = f.workspace(db)
    viewer = f.member(db, ws, Role.VIEWER)
    db.run(members.remove_member, viewer, ws, f.member_id(db, ws, viewer))
    assert viewer.slack_user_id not in roles(db, ws)
    assert audit_of(db, ws)[-1].action == "member.leave"


def test_a_developer_cannot_remove_someone_else(db):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    other = f.member(db, ws, Role.VIEWER)
    with pytest.raises(PermissionDenied):
        db.run(members.remove_member, dev, ws, f.member_id(db, ws, other))
    assert other.slack_user_id in roles(db, ws)


def test_removing_a_member_revokes_their_keys_in_the_same_transaction(db):
    ws = f.workspace(db, environment="development")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    k1, _ = f.key(db, ws, dev, "one")
    k2, _ = f.key(db, ws, dev, "two")
    keep, _ = f.key(db, ws, admin, "admins")
    db.run(members.remove_member, admin, ws, f.member_id(db, ws, dev))
    with db.session() as s:
        status = {k.id: k.status for k in s.scalars(select(ApiKey))}
        assert status == {k1: KeyStatus.REVOKED, k2: KeyStatus.REVOKED, keep: KeyStatus.ACTIVE}
        assert sorted(a.payload["key_id"] for a in s.scalars(select(Action).where(Action.kind == "revoke_key"))) == [k1, k2]
        # a secret waiting to be revealed goes with the key
        assert s.get(KeyReveal, k1).ciphertext is None
    tail = audit_of(db, ws)[-3:]
    assert [e.action for e in tail] == ["key.revoke", "key.revoke", "member.remove"]
    assert tail[-1].details == {"role": "developer", "revoked_keys": 2}


def test_removed_member_can_be_added_back_with_a_new_role(db):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    mid = f.member_id(db, ws, dev)
    db.run(members.remove_member, f.OPERATOR, ws, mid)
    with pytest.raises(NotFound):
        db.run(members.find_member, ws, dev.slack_user_id)
    back = db.run(members.add_member, f.OPERATOR, ws, role="viewer", slack_user_id=dev.slack_user_id)
    assert back.id == mid and back.role is Role.VIEWER and back.status is MemberStatus.ACTIVE and back.removed_at is None


def test_removing_someone_not_in_the_workspace_is_not_found(db):
    ws = f.workspace(db)
    other_ws = f.workspace(db, "other")
    stranger = f.member(db, other_ws, Role.DEVELOPER)
    with pytest.raises(NotFound):
        db.run(members.remove_member, f.OPERATOR, ws, f.member_id(db, other_ws, stranger))
    with db.session() as s:
        assert s.scalars(select(Member).where(Member.status == MemberStatus.REMOVED)).all() == []


def test_a_removed_member_loses_their_rights(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    f.member(db, ws, Role.ADMIN)
    db.run(members.remove_member, admin, ws, f.member_id(db, ws, admin))
    with pytest.raises(PermissionDenied, match="not a member"):
        db.run(members.add_member, admin, ws, role="viewer", slack_user_id="U0LATE")


def test_member_list_orders_admins_first_and_hides_removed(db):
    ws = f.workspace(db)
    viewer = f.member(db, ws, Role.VIEWER, "U0AAAA")
    admin = f.member(db, ws, Role.ADMIN, "U0ZZZZ")
    gone = f.member(db, ws, Role.DEVELOPER, "U0GONE")
    db.run(members.remove_member, f.OPERATOR, ws, f.member_id(db, ws, gone))
    with db.session() as s:
        assert [m.slack_user_id for m in members.list_members(s, viewer, ws)] == [admin.slack_user_id, viewer.slack_user_id]
