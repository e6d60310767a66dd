"""Who still works here: Slack's own signals (a deactivated account) and the reconciliation that catches missed ones.

A person whose Slack account is deactivated is *suspended* in every workspace of the team
at once: their keys stop (the standing of a suspended owner's key is "owner_suspended",
and the provider disables them), what they asked for is cancelled, the invitations they
sent are withdrawn, and the Admins of each workspace are told in one message with a
Restore button. Nothing restores them by itself: a reactivated account waits for an
Admin, under the usual rules (role caps included). Every change is audited as done by the
directory, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import Conflict
from store.members import check_role_cap
from store.models import ApiKey, AuditEvent, Invitation, Member, Request, Workspace
from store.permissions import Actor, Permission, authorize
from store.types import ActionKind, InvitationStatus, KeyStatus, MemberStatus, RequestState, WorkspaceStatus, utcnow
from store.workspaces import load_workspace

DIRECTORY = Actor.operator("slack-directory")


@dataclass(frozen=True)
class Person:
    """One entry of Slack's directory (``users.list``), as far as Purser needs it."""

    slack_user_id: str
    deactivated: bool


@dataclass
class Suspended:
    workspaces: list[int] = field(default_factory=list)
    keys: int = 0
    requests: int = 0
    invitations: int = 0


def suspend_person(s: Session, team_id: str, slack_user_id: str | None, reason: str, *, by: Actor = DIRECTORY, member_id: int | None = None) -> Suspended:
    """Suspend every active membership of this Slack user in the team's workspaces (idempotent); ``member_id``: that one only (SCIM)."""
    out = Suspended()
    now = utcnow()
    members = list(
        s.scalars(
            select(Member)
            .join(Workspace, Workspace.id == Member.workspace_id)
            .where(Workspace.team_id == team_id, Workspace.status != WorkspaceStatus.DELETED, Member.slack_user_id == slack_user_id, Member.status == MemberStatus.ACTIVE)
            .where(*([Member.id == member_id] if member_id is not None else []))
            .order_by(Member.workspace_id)
            .with_for_update(of=Member)
        )
    )
    for member in members:
        ws = s.get(Workspace, member.workspace_id)
        member.status = MemberStatus.SUSPENDED
        keys = list(s.scalars(select(ApiKey.id).where(ApiKey.member_id == member.id, ApiKey.status != KeyStatus.REVOKED)))
        if keys:  # their standing now says "owner_suspended": the provider disables them too
            outbox.emit(s, ActionKind.SYNC_KEY_STATE, workspace_id=ws.id, payload={"key_ids": keys})
        asked = list(s.scalars(select(Request).where(Request.requester_id == member.id, Request.state == RequestState.PENDING).with_for_update()))
        for req in asked:
            req.state, req.decided_at, req.decision_note = RequestState.CANCELLED, now, "the requester's Slack account was deactivated"
            audit.record(s, workspace_id=ws.id, actor=by.label, action="request.cancel", resource=f"request:{req.id}", details={"kind": req.kind.value, "why": reason})
            outbox.emit(s, ActionKind.REQUEST_DECIDED, workspace_id=ws.id, request_id=req.id, payload={"request_id": req.id})
        sent = list(s.scalars(select(Invitation).where(Invitation.inviter_id == member.id, Invitation.status == InvitationStatus.PENDING).with_for_update()))
        for inv in sent:
            inv.status, inv.decided_at = InvitationStatus.CANCELLED, now
            audit.record(s, workspace_id=ws.id, actor=by.label, action="invitation.cancel", resource=f"invitation:{inv.id}", details={"invitee": inv.invitee, "why": reason})
        audit.record(
            s,
            workspace_id=ws.id,
            actor=by.label,
            action="member.suspend",
            resource=f"member:{member.label}",
            details={"role": member.role.value, "reason": reason, "keys_stopped": len(keys), "requests_cancelled": len(asked), "invitations_withdrawn": len(sent)},
        )
        outbox.emit(s, ActionKind.MEMBER_SUSPENDED, workspace_id=ws.id, payload={"member_id": member.id, "reason": reason})
        out.workspaces.append(ws.id)
        out.keys += len(keys)
        out.requests += len(asked)
        out.invitations += len(sent)
    return out


def restore_member(s: Session, actor: Actor, workspace_id: int, member_id: int) -> Member:
    """An Admin brings a suspended member back: the role's cap holds, and their keys work again."""
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.MANAGE_MEMBERS, resource=f"member:{member_id}", attempted="member.restore")
    member = s.get(Member, member_id, with_for_update=True)
    if member is None or member.workspace_id != ws.id or member.status is not MemberStatus.SUSPENDED:
        raise Conflict("That person is not suspended here (restored already, or removed): nothing to restore.")
    check_role_cap(s, ws, member.role, actor, f"member:{member.label}")
    member.status = MemberStatus.ACTIVE
    keys = list(s.scalars(select(ApiKey.id).where(ApiKey.member_id == member.id, ApiKey.status != KeyStatus.REVOKED)))
    if keys:
        outbox.emit(s, ActionKind.SYNC_KEY_STATE, workspace_id=ws.id, payload={"key_ids": keys})
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="member.restore", resource=f"member:{member.label}", details={"role": member.role.value, "keys": len(keys)})
    return member


def reconcile(s: Session, team_id: str, people: list[Person], *, complete: bool) -> list[str]:
    """Apply what the directory says that events may have missed; returns who was suspended.

    Only on a complete listing: a partial one (Slack failed halfway, a rate limit gave up)
    changes nothing. And only an account the listing says is deactivated counts: someone
    missing from it is not taken for gone.
    """
    if not complete:
        return []
    gone = {p.slack_user_id for p in people if p.deactivated}
    if not gone:
        return []
    active = set(
        s.scalars(
            select(Member.slack_user_id)
            .join(Workspace, Workspace.id == Member.workspace_id)
            .where(Workspace.team_id == team_id, Workspace.status != WorkspaceStatus.DELETED, Member.status == MemberStatus.ACTIVE, Member.slack_user_id.in_(sorted(gone)))
        )
    )
    for user in sorted(active):
        suspend_person(s, team_id, user, "Slack account deactivated (found by the directory sync)")
    return sorted(active)


def workspace_of(s: Session, member_id: int) -> int:
    member = s.get(Member, member_id)
    if member is None:
        raise Conflict("That membership no longer exists: nothing to restore.")
    return member.workspace_id


def notice_of(s: Session, member_id: int) -> tuple[int, str | None, str, str, str, int]:
    """What the Admins' suspension notice shows: (member id, Slack user, role, workspace, reason, live keys)."""
    member = s.get(Member, member_id)
    ws = s.get(Workspace, member.workspace_id)
    last = s.scalars(
        select(AuditEvent).where(AuditEvent.workspace_id == ws.id, AuditEvent.action == "member.suspend", AuditEvent.resource == f"member:{member.label}").order_by(AuditEvent.id.desc()).limit(1)
    ).first()
    keys = s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.member_id == member.id, ApiKey.status != KeyStatus.REVOKED))
    return member.id, member.slack_user_id, member.role.title, ws.slug, (last.details or {}).get("reason", "suspended") if last else "suspended", keys

