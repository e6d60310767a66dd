"""Members and their roles: adding, promoting, demoting, removing; asking for a role change."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import Conflict, InvalidInput, LimitReached, NotFound, PermissionDenied
from store.keys import revoke_key_rows
from store.models import ApiKey, Member, Request, Workspace
from store.permissions import Actor, Permission, authorize, denial, load_workspace, membership
from store.requests import open_request, requester_member
from store.standing import may_hold_keys
from store.types import ActionKind, KeyStatus, MemberStatus, ROLE_CAPS, RequestKind, RequestState, Role, utcnow

SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,31}$")
EMAIL = re.compile(r"^[^@\s<>|*`]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")


def check_slack_user(user_id: str) -> str:
    if not SLACK_USER.match(user_id or ""):
        raise InvalidInput(f"“{(user_id or '')[:40]}” is not a Slack user id (like U0123ABCD). Mention the person with @name.")
    return user_id


def check_email(email: str) -> str:
    email = (email or "").strip()
    if not EMAIL.match(email):
        raise InvalidInput(f"“{email[:60]}” is not an e-mail address.")
    return email.lower()


def check_role_cap(s: Session, ws: Workspace, role: Role, actor: Actor, resource: str) -> None:
    """Refuse when the role is full. The caller holds the workspace row lock, so counts cannot race."""
    cap = ROLE_CAPS.get(role)
    if cap is None:
        return
    holders = member_count(s, ws.id, role)
    if holders >= cap:
        raise LimitReached(
            f"`{ws.slug}` already has {holders} {role.title}s, the most a workspace may have ({cap}). "
            f"Change one of them to another role first.",
            denial=denial(ws.id, actor, f"role.{role.value}", resource, reason="role cap", cap=cap, holders=holders),
        )


def add_member(
    s: Session,
    actor: Actor,
    workspace_id: int,
    *,
    role: Role | str,
    slack_user_id: str | None = None,
    email: str | None = None,
    why: str = "added",
) -> Member:
    """Make someone a member at once. Purser's operator uses it for the first admin; admins may too."""
    role = Role.parse(role) if isinstance(role, str) else role
    if slack_user_id is None and email is None:
        raise InvalidInput("Give the member's Slack user id, e-mail, or both.")
    if slack_user_id is not None:
        check_slack_user(slack_user_id)
    if email is not None:
        email = check_email(email)
    ws = load_workspace(s, workspace_id, lock=True)
    resource = f"member:{slack_user_id or email}"
    authorize(s, actor, ws, Permission.MANAGE_MEMBERS, resource=resource, attempted="member.add")
    existing = _find(s, ws.id, slack_user_id, email)
    if existing is not None and existing.status is MemberStatus.ACTIVE:
        raise Conflict(f"{existing.label} is already a {existing.role.title} of `{ws.slug}`.")
    check_role_cap(s, ws, role, actor, resource)
    if existing is not None:  # a former member comes back
        member = existing
        member.status, member.role, member.removed_at = MemberStatus.ACTIVE, role, None
        member.email = email or member.email
        member.slack_user_id = slack_user_id or member.slack_user_id
    else:
        member = Member(workspace_id=ws.id, slack_user_id=slack_user_id, email=email, role=role)
        s.add(member)
    s.flush()
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="member.add", resource=resource, details={"role": role.value, "why": why})
    return member


def _find(s: Session, workspace_id: int, slack_user_id: str | None, email: str | None) -> Member | None:
    if slack_user_id is not None:
        found = s.scalars(select(Member).where(Member.workspace_id == workspace_id, Member.slack_user_id == slack_user_id)).one_or_none()
        if found is not None:
            return found
    if email is not None:
        return s.scalars(
            select(Member).where(Member.workspace_id == workspace_id, Member.email == email).order_by(Member.status, Member.id).limit(1)
        ).first()
    return None


def find_member(s: Session, workspace_id: int, slack_user_id: str, actor: Actor | None = None, attempted: str = "member.find") -> Member:
    """A member by Slack id. Asked on behalf of ``actor``, only a member may look: an outsider learns not even who is in."""
    if actor is not None:
        authorize(s, actor, load_workspace(s, workspace_id), Permission.VIEW_OWN_USAGE, resource=f"member:{slack_user_id[:40]}", attempted=attempted)
    member = s.scalars(
        select(Member).where(Member.workspace_id == workspace_id, Member.slack_user_id == slack_user_id, Member.status == MemberStatus.ACTIVE)
    ).one_or_none()
    if member is None:
        raise NotFound(f"“{slack_user_id[:40]}” is not a member of this workspace.")
    return member


def _target(s: Session, ws: Workspace, member_id: int) -> Member:
    member = s.get(Member, member_id, with_for_update=True)
    if member is None or member.workspace_id != ws.id or member.status is not MemberStatus.ACTIVE:
        raise NotFound("That person is not a member of this workspace.")
    return member


def apply_role_change(s: Session, actor: Actor, ws: Workspace, member: Member, role: Role, *, via_request: int | None = None) -> Member:
    """The rule-checked change itself, shared by the direct operation and an approved request."""
    resource = f"member:{member.label}"
    if member.role is role:
        raise Conflict(f"{member.label} is already a {role.title}.")
    if member.role is Role.ADMIN:
        _keep_one_admin(s, ws, actor, resource, "demote")
    check_role_cap(s, ws, role, actor, resource)
    old, member.role = member.role, role
    details = {"from": old.value, "to": role.value}
    if via_request:
        details["request"] = via_request
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="member.role", resource=resource, details=details)
    if may_hold_keys(old) != may_hold_keys(role):
        _keys_follow_the_role(s, actor, ws, member)
    return member


def request_role_change(s: Session, actor: Actor, workspace_id: int, member_id: int, role: str, reason: str | None = None) -> Request:
    """A Developer asks the admins to change someone's role."""
    role_v = Role.parse(role)
    ws = load_workspace(s, workspace_id)
    me = requester_member(s, actor, ws, Permission.MANAGE_MEMBERS, "request.role_change")
    target = _target(s, ws, member_id)
    if target.role is role_v:
        raise Conflict(f"{target.label} is already a {role_v.title}.")
    return open_request(s, ws, me, RequestKind.ROLE_CHANGE, {"member_id": target.id, "member": target.label, "role": role_v.value}, reason=reason)


def apply_role_change_request(s: Session, actor: Actor, ws: Workspace, req: Request) -> None:
    target = s.get(Member, req.payload["member_id"])
    if target is None or target.status is not MemberStatus.ACTIVE:
        raise Conflict("The member this request is about is no longer in the workspace.")
    apply_role_change(s, actor, ws, target, Role(req.payload["role"]), via_request=req.id)


def _keys_follow_the_role(s: Session, actor: Actor, ws: Workspace, member: Member) -> None:
    """A role without API access stops the member's keys (and its pending key requests); one with it starts them again.

    The keys are not revoked: their standing (store.standing) follows the role, so the gateway
    refuses them at once and the provider is told to disable or enable them.
    """
    if not may_hold_keys(member.role):
        pending = s.scalars(
            select(Request).where(Request.workspace_id == ws.id, Request.requester_id == member.id, Request.kind.in_((RequestKind.KEY, RequestKind.KEY_EXTEND)), Request.state == RequestState.PENDING).with_for_update()
        )
        for req in pending:
            req.state, req.decided_at, req.decision_note = RequestState.CANCELLED, utcnow(), f"{member.label} became a {member.role.title}, a role without API keys"
            audit.record(s, workspace_id=ws.id, actor=actor.label, action="request.cancel", resource=f"request:{req.id}", details={"kind": req.kind.value, "why": "role without API access"})
            outbox.emit(s, ActionKind.REQUEST_DECIDED, workspace_id=ws.id, request_id=req.id, payload={"request_id": req.id})
    key_ids = list(s.scalars(select(ApiKey.id).where(ApiKey.member_id == member.id, ApiKey.status != KeyStatus.REVOKED).order_by(ApiKey.id)))
    if key_ids:
        outbox.emit(s, ActionKind.SYNC_KEY_STATE, workspace_id=ws.id, payload={"key_ids": key_ids})


def change_role(s: Session, actor: Actor, workspace_id: int, member_id: int, role: Role | str) -> Member:
    role = Role.parse(role) if isinstance(role, str) else role
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.MANAGE_MEMBERS, resource=f"member:{member_id}", attempted="member.role")
    return apply_role_change(s, actor, ws, _target(s, ws, member_id), role)


def member_count(s: Session, workspace_id: int, role: Role) -> int:
    return s.scalar(
        select(func.count()).select_from(Member).where(Member.workspace_id == workspace_id, Member.role == role, Member.status == MemberStatus.ACTIVE)
    ) or 0


def _keep_one_admin(s: Session, ws: Workspace, actor: Actor, resource: str, verb: str) -> None:
    if member_count(s, ws.id, Role.ADMIN) <= 1:
        raise LimitReached(
            f"`{ws.slug}` must keep at least one Admin, and this is the last one. Make someone else an Admin first.",
            denial=denial(ws.id, actor, f"member.{verb}", resource, reason="last admin"),
        )


def remove_member(s: Session, actor: Actor, workspace_id: int, member_id: int) -> Member:
    """Admins remove anyone; anyone may leave. Their keys are revoked in the same transaction."""
    ws = load_workspace(s, workspace_id, lock=True)
    me = membership(s, actor, ws.id)
    leaving = me is not None and me.id == member_id
    if not leaving:
        authorize(s, actor, ws, Permission.MANAGE_MEMBERS, resource=f"member:{member_id}", attempted="member.remove")
    member = _target(s, ws, member_id)
    resource = f"member:{member.label}"
    if member.role is Role.ADMIN:
        _keep_one_admin(s, ws, actor, resource, "leave" if leaving else "remove")
    keys = list(s.scalars(select(ApiKey).where(ApiKey.member_id == member.id, ApiKey.status != KeyStatus.REVOKED)))
    revoke_key_rows(s, actor, ws, keys, reason="member removed")
    member.status, member.removed_at = MemberStatus.REMOVED, utcnow()
    audit.record(
        s,
        workspace_id=ws.id,
        actor=actor.label,
        action="member.leave" if leaving else "member.remove",
        resource=resource,
        details={"role": member.role.value, "revoked_keys": len(keys)},
    )
    return member


def list_members(s: Session, actor: Actor, workspace_id: int) -> list[Member]:
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.VIEW_OWN_USAGE, resource=f"workspace:{ws.slug}", attempted="member.list")
    order = {Role.ADMIN: 0, Role.BILLING: 1, Role.DEVELOPER: 2, Role.VIEWER: 3}
    members = s.scalars(select(Member).where(Member.workspace_id == ws.id, Member.status == MemberStatus.ACTIVE))
    return sorted(members, key=lambda m: (order[m.role], m.label))


__all__ = ["add_member", "change_role", "remove_member", "list_members", "find_member", "PermissionDenied"]
