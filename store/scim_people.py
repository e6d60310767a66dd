"""What the identity provider's SCIM requests do to people (docs/scim.md).

A SCIM User is a person: its userName (or primary e-mail) is the address Purser looks for
in Slack. Whether that person is a member, and in which role, follows from two things the
identity provider says — the person is ``active``, and in a group an Admin mapped to a role
(``store.scim_roles``) — and is brought about by ``settle`` through the store's own
operations (add_member, apply_role_change, remove_member, directory.suspend_person), so role
caps, the last Admin and the audit log hold exactly as they do from Slack.

Someone Purser cannot name in Slack yet gets an e-mail invitation; a worker looks them up
(``users.lookupByEmail``) now and again later, and they join when Slack knows them.
``active: false`` suspends them here as a deactivated Slack account does; ``active: true``
restores nobody (an Admin does, with the usual checks).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store import audit, directory, outbox
from store.errors import Conflict, InvalidInput, NotFound
from store.keys import revoke_key_rows
from store.members import add_member, apply_role_change, check_email, check_role_cap, remove_member
from store.models import ApiKey, Invitation, Member, Workspace
from store.models_scim import ScimGroup, ScimGroupMember, ScimRoleMap, ScimUser
from store.permissions import Actor, load_workspace
from store.scim import EVERYONE, Grant, key_of
from store.types import ActionKind, InvitationStatus, KeyStatus, MemberStatus, Role, utcnow

#: a provisioned person waits this long to appear in Slack (the identity provider's next push renews it)
INVITATION_TTL = timedelta(days=30)
#: when several mapped groups hold someone, the role first here wins
PRECEDENCE = (Role.ADMIN, Role.DEVELOPER, Role.BILLING, Role.VIEWER)
SUSPENDED_BY_IDP = "deactivated in the identity provider (SCIM)"
LOOKUP_FIRST_WAIT = timedelta(minutes=15)
LOOKUP_LONGEST_WAIT = timedelta(hours=24)


@dataclass(frozen=True)
class UserIn:
    user_name: str
    external_id: str | None = None
    active: bool | None = None  # not said: counts as active
    emails: list[str] = field(default_factory=list)  # the primary first
    document: dict[str, Any] = field(default_factory=dict)


def matching_email(user_name: str, emails: list[str]) -> str | None:
    """The address to look for in Slack: userName when it is one (Okta's default), else the first e-mail (Entra's ``mail``)."""
    for candidate in (user_name, *emails):
        try:
            return check_email(candidate)
        except InvalidInput:
            continue
    return None


# -- reading ----------------------------------------------------------------------------------


def list_users(s: Session, grant: Grant, user_name: str | None = None) -> list[ScimUser]:
    """The workspace's SCIM users (``user_name``: only that one, found by its index), in creation order."""
    query = select(ScimUser).where(ScimUser.workspace_id == grant.workspace_id)
    if user_name is not None:
        query = query.where(ScimUser.user_key == key_of(user_name))
    return list(s.scalars(query.order_by(ScimUser.created_at, ScimUser.id)))


def get_user(s: Session, grant: Grant, user_id: str) -> ScimUser:
    user = s.get(ScimUser, user_id)
    if user is None or user.workspace_id != grant.workspace_id:  # another token's people do not exist here
        raise NotFound(f"There is no User {user_id[:40]!r} here.")
    return user


def groups_of(s: Session, user_id: str) -> list[tuple[str, str]]:
    """(group id, display name) of the groups that hold a user."""
    rows = s.execute(select(ScimGroup.id, ScimGroup.display_name).join(ScimGroupMember, ScimGroupMember.group_id == ScimGroup.id).where(ScimGroupMember.user_id == user_id).order_by(ScimGroup.display_name))
    return [tuple(r) for r in rows]


# -- writing ----------------------------------------------------------------------------------


def create_user(s: Session, grant: Grant, data: UserIn) -> ScimUser:
    ws = load_workspace(s, grant.workspace_id, lock=True)
    _check_unique_name(s, ws.id, data.user_name, None)
    user = ScimUser(id=uuid.uuid4().hex, workspace_id=ws.id, user_name=data.user_name, user_key=key_of(data.user_name))
    _fill(user, data)
    s.add(user)
    s.flush()
    audit.record(s, workspace_id=ws.id, actor=grant.actor.label, action="scim.user.create", resource=f"scim_user:{data.user_name[:100]}", details=_described(user))
    settle(s, grant.actor, ws, user)
    return user


def replace_user(s: Session, grant: Grant, user_id: str, data: UserIn, expected_version: int | None = None) -> ScimUser:
    """PUT, and PATCH once the service has applied it: ``data`` is the whole new state of the user."""
    ws = load_workspace(s, grant.workspace_id, lock=True)
    user = _locked_user(s, grant, user_id, expected_version)
    _check_unique_name(s, ws.id, data.user_name, user.id)
    before = _described(user)
    if user.email != matching_email(data.user_name, data.emails):  # another address is another person
        user.slack_user_id = None
    user.user_name, user.user_key = data.user_name, key_of(data.user_name)
    _fill(user, data)
    user.version, user.updated_at = user.version + 1, utcnow()
    after = _described(user)
    changed = {k: after[k] for k in after if after[k] != before.get(k)}
    audit.record(s, workspace_id=ws.id, actor=grant.actor.label, action="scim.user.update", resource=f"scim_user:{user.user_name[:100]}", details=changed or {"unchanged": True})
    settle(s, grant.actor, ws, user)
    return user


def delete_user(s: Session, grant: Grant, user_id: str, expected_version: int | None = None) -> None:
    """The identity provider deletes the person: their membership here ends and their keys are revoked."""
    ws = load_workspace(s, grant.workspace_id, lock=True)
    user = _locked_user(s, grant, user_id, expected_version)
    member = _member_for(s, ws, user)
    if member is not None and member.status is not MemberStatus.REMOVED:
        _remove(s, grant.actor, ws, member)
    _close_invitation(s, grant.actor, ws, user, why="deleted in the identity provider")
    groups = [name for _, name in groups_of(s, user.id)]
    s.execute(delete(ScimGroupMember).where(ScimGroupMember.user_id == user.id))
    audit.record(s, workspace_id=ws.id, actor=grant.actor.label, action="scim.user.delete", resource=f"scim_user:{user.user_name[:100]}", details={"member": member.label if member else None, "groups": groups})
    s.delete(user)
    s.flush()


def _fill(user: ScimUser, data: UserIn) -> None:
    user.external_id = data.external_id
    user.active = data.active
    user.email = matching_email(data.user_name, data.emails)
    user.document = data.document


def _described(user: ScimUser) -> dict[str, Any]:
    return {"external_id": user.external_id, "active": user.active, "email": user.email}


def _check_unique_name(s: Session, workspace_id: int, user_name: str, user_id: str | None) -> None:
    taken = s.scalars(select(ScimUser.id).where(ScimUser.workspace_id == workspace_id, ScimUser.user_key == key_of(user_name))).first()
    if taken is not None and taken != user_id:
        raise Conflict(f"A User with userName {user_name[:100]!r} already exists here (id {taken}). Update that one instead.", state="uniqueness")


def _locked_user(s: Session, grant: Grant, user_id: str, expected_version: int | None) -> ScimUser:
    user = s.scalars(select(ScimUser).where(ScimUser.id == user_id).with_for_update()).one_or_none()
    if user is None or user.workspace_id != grant.workspace_id:
        raise NotFound(f"There is no User {user_id[:40]!r} here.")
    if expected_version is not None and user.version != expected_version:
        raise Conflict(f"The User changed since version {expected_version} (it is at {user.version}). Read it again, then retry.", state="version")
    return user


# -- bringing membership in line ------------------------------------------------------------


def wanted_role(s: Session, workspace_id: int, user: ScimUser) -> Role | None:
    """The role the identity provider's groups give an active user here, or None."""
    maps = {r.name_key: r.role for r in s.scalars(select(ScimRoleMap).where(ScimRoleMap.workspace_id == workspace_id))}
    if not maps or user.active is False:
        return None
    groups = s.scalars(select(ScimGroup.name_key).join(ScimGroupMember, ScimGroupMember.group_id == ScimGroup.id).where(ScimGroupMember.user_id == user.id))
    roles = {maps[k] for k in groups if k in maps} | ({maps[EVERYONE]} if EVERYONE in maps else set())
    return next((r for r in PRECEDENCE if r in roles), None)


def settle(s: Session, actor: Actor, ws: Workspace, user: ScimUser) -> None:
    """Make the person's membership what the identity provider says it should be. The caller holds the workspace lock."""
    member = _member_for(s, ws, user)
    if user.active is False:
        if member is not None and member.status is MemberStatus.ACTIVE:
            # as a deactivated Slack account, but here only: the token speaks for this workspace
            directory.suspend_person(s, ws.team_id, member.slack_user_id, SUSPENDED_BY_IDP, by=actor, member_id=member.id)
        _close_invitation(s, actor, ws, user, why="deactivated in the identity provider")
        return
    role = wanted_role(s, ws.id, user)
    if role is None:
        if member is not None and member.status is MemberStatus.ACTIVE and user.provisioned:
            remove_member(s, actor, ws.id, member.id)
            user.provisioned = False
        _close_invitation(s, actor, ws, user, why="in no group mapped to a role")
        return
    if member is not None and member.status is MemberStatus.ACTIVE:
        if member.role is not role:
            apply_role_change(s, actor, ws, member, role)
        _close_invitation(s, actor, ws, user, member=member)
        return
    if member is not None and member.status is MemberStatus.SUSPENDED:
        return  # an Admin restores a suspended member; the identity provider does not
    slack_id = (member.slack_user_id if member is not None else None) or user.slack_user_id
    if slack_id is not None or member is not None:
        made = add_member(s, actor, ws.id, role=role, slack_user_id=slack_id, email=user.email, why="provisioned by SCIM")
        user.member_id, user.provisioned = made.id, True
        _close_invitation(s, actor, ws, user, member=made)
        return
    if user.email is not None:
        _invite(s, actor, ws, user, role)


def settle_group_members(s: Session, actor: Actor, ws: Workspace, name_key: str) -> None:
    """A mapping changed: everyone it may concern (the group's members; for ``*`` everyone) is settled again."""
    query = select(ScimUser).where(ScimUser.workspace_id == ws.id)
    if name_key != EVERYONE:
        query = query.join(ScimGroupMember, ScimGroupMember.user_id == ScimUser.id).join(ScimGroup, ScimGroup.id == ScimGroupMember.group_id).where(ScimGroup.name_key == name_key)
    for user in s.scalars(query.order_by(ScimUser.created_at, ScimUser.id)).unique().all():
        settle(s, actor, ws, user)


def _member_for(s: Session, ws: Workspace, user: ScimUser) -> Member | None:
    """The membership this person has (or had) here: the one linked, else by Slack id, else by e-mail."""
    member = s.get(Member, user.member_id) if user.member_id else None
    if member is None and user.slack_user_id:
        member = s.scalars(select(Member).where(Member.workspace_id == ws.id, Member.slack_user_id == user.slack_user_id)).one_or_none()
    if member is None and user.email:
        member = s.scalars(select(Member).where(Member.workspace_id == ws.id, Member.email == user.email).order_by(Member.status, Member.id).limit(1)).first()
    if member is not None and member.workspace_id == ws.id:
        user.member_id = member.id
        return member
    return None


def _remove(s: Session, actor: Actor, ws: Workspace, member: Member) -> None:
    if member.status is MemberStatus.ACTIVE:
        remove_member(s, actor, ws.id, member.id)
        return
    # Suspended: remove_member takes active members only; the end is the same (keys revoked, gone).
    keys = list(s.scalars(select(ApiKey).where(ApiKey.member_id == member.id, ApiKey.status != KeyStatus.REVOKED)))
    revoke_key_rows(s, actor, ws, keys, reason="member removed")
    member.status, member.removed_at = MemberStatus.REMOVED, utcnow()
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="member.remove", resource=f"member:{member.label}", details={"role": member.role.value, "revoked_keys": len(keys), "was": "suspended"})


def _invite(s: Session, actor: Actor, ws: Workspace, user: ScimUser, role: Role) -> None:
    """Not in Slack yet (as far as Purser knows): an e-mail invitation, and a worker to look for them."""
    inv = s.get(Invitation, user.invitation_id) if user.invitation_id else None
    resource = f"member:{user.email}"
    if inv is not None and inv.status is InvitationStatus.PENDING and inv.expires_at > utcnow():
        if inv.role is not role:
            check_role_cap(s, ws, role, actor, resource)
            audit.record(s, workspace_id=ws.id, actor=actor.label, action="invitation.role", resource=f"invitation:{inv.id}", details={"from": inv.role.value, "to": role.value})
            inv.role = role
        return
    check_role_cap(s, ws, role, actor, resource)
    inv = Invitation(workspace_id=ws.id, invitee_email=user.email, role=role, inviter_id=None, expires_at=utcnow() + INVITATION_TTL)
    s.add(inv)
    s.flush()
    user.invitation_id = inv.id
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="member.invite", resource=f"invitation:{inv.id}", details={"invitee": user.email, "role": role.value, "via": "scim"})
    outbox.emit(s, ActionKind.SCIM_LOOKUP, workspace_id=ws.id, payload={"scim_user_id": user.id, "attempt": 0})


def _close_invitation(s: Session, actor: Actor, ws: Workspace, user: ScimUser, *, member: Member | None = None, why: str | None = None) -> None:
    """The person's pending invitation is accepted (they are a member now) or withdrawn (``why``)."""
    inv = s.get(Invitation, user.invitation_id) if user.invitation_id else None
    if inv is None or inv.status is not InvitationStatus.PENDING:
        return
    inv.decided_at = utcnow()
    if member is not None:
        inv.status, inv.member_id = InvitationStatus.ACCEPTED, member.id
        audit.record(s, workspace_id=ws.id, actor=actor.label, action="invitation.accept", resource=f"invitation:{inv.id}", details={"role": member.role.value, "member": member.label, "via": "scim"})
    else:
        inv.status = InvitationStatus.CANCELLED
        audit.record(s, workspace_id=ws.id, actor=actor.label, action="invitation.cancel", resource=f"invitation:{inv.id}", details={"invitee": inv.invitee, "why": why})


# -- the worker's side ----------------------------------------------------------------------

WORKER = Actor.operator("scim")


def waiting_lookup(s: Session, scim_user_id: str) -> str | None:
    """The e-mail to look up in Slack, while the person's invitation still waits for them."""
    user = s.get(ScimUser, scim_user_id)
    inv = s.get(Invitation, user.invitation_id) if user is not None and user.invitation_id else None
    if inv is None or inv.status is not InvitationStatus.PENDING or inv.expires_at <= utcnow():
        return None
    return user.email


def found_in_slack(s: Session, scim_user_id: str, slack_user_id: str) -> tuple[str, str, str] | None:
    """Slack knows the address now: the person joins. Returns (Slack user, role, workspace) to welcome them, if they joined."""
    user = s.get(ScimUser, scim_user_id)
    if user is None:
        return None
    ws = load_workspace(s, user.workspace_id, lock=True)
    user.slack_user_id = slack_user_id
    settle(s, WORKER, ws, user)
    member = s.get(Member, user.member_id) if user.member_id else None
    if member is None or member.status is not MemberStatus.ACTIVE:
        return None
    return slack_user_id, member.role.title, ws.slug


def look_again(s: Session, action_id: str, workspace_id: int, scim_user_id: str, attempt: int) -> None:
    """Not in Slack yet: this lookup is done, the next one waits longer (15 minutes, doubling, a day at most)."""
    outbox.complete(s, action_id)
    wait = min(LOOKUP_FIRST_WAIT * (2 ** min(attempt, 10)), LOOKUP_LONGEST_WAIT)
    outbox.emit(s, ActionKind.SCIM_LOOKUP, workspace_id=workspace_id, payload={"scim_user_id": scim_user_id, "attempt": attempt + 1}, run_after=utcnow() + wait)


def tell_admins(s: Session, workspace_id: int, detail: str, asked_by: str) -> None:
    """A provisioning request was refused by the rules (a role cap): the Admins hear what and why (the refusal itself is audited)."""
    outbox.emit(s, ActionKind.SCIM_REFUSED, workspace_id=workspace_id, payload={"detail": detail[:1000], "asked_by": asked_by[:80]})


def admins_to_tell(s: Session, workspace_id: int) -> tuple[str, list[str]]:
    ws = s.get(Workspace, workspace_id)
    admins = s.scalars(select(Member.slack_user_id).where(Member.workspace_id == workspace_id, Member.role == Role.ADMIN, Member.status == MemberStatus.ACTIVE, Member.slack_user_id.is_not(None)).order_by(Member.id))
    return ws.slug, list(admins)


def joined_slack(s: Session, team_id: str, email: str | None) -> int:
    """``team_join``: someone the identity provider provisioned, waiting for a Slack account, has one now.

    Their look-up is asked for at once (rather than at its next retry, up to a day away);
    the worker then finds them by e-mail and they join with their mapped role.
    """
    if not email:
        return 0
    waiting = s.scalars(
        select(ScimUser).join(Workspace, Workspace.id == ScimUser.workspace_id).where(Workspace.team_id == team_id, func.lower(ScimUser.email) == email.strip().lower())
    ).all()
    asked = 0
    for user in waiting:
        if waiting_lookup(s, user.id) is not None:
            outbox.emit(s, ActionKind.SCIM_LOOKUP, workspace_id=user.workspace_id, payload={"scim_user_id": user.id, "attempt": 0})
            asked += 1
    return asked
