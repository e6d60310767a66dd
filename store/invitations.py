"""Invitations: by Slack user or e-mail, a role, seven days to accept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import Conflict, DomainError, InvalidInput, NotFound, NotYours
from store.members import check_email, check_role_cap, check_slack_user
from store.models import Invitation, Member, Request, Workspace
from store.permissions import Actor, Permission, authorize, denial, load_workspace, membership
from store.requests import open_request, requester_member
from store.types import ActionKind, InvitationStatus, MemberStatus, ROLE_CAPS, RequestKind, Role, utcnow

INVITATION_TTL = timedelta(days=7)
MAX_BULK = 50


@dataclass(frozen=True)
class InviteResult:
    invitee: str
    outcome: str  # invited | requested | already_member | already_invited | invalid | role_full
    message: str
    invitation_id: int | None = None


def _invitee(raw: str) -> tuple[str | None, str | None]:
    raw = raw.strip()
    if "@" in raw:
        return None, check_email(raw)
    return check_slack_user(raw), None


def invite(s: Session, actor: Actor, workspace_id: int, invitees: list[str], role: Role | str = Role.DEVELOPER) -> list[InviteResult]:
    """Invite one or many. Admins invite at once; a Developer's invitation becomes a request. One result per person."""
    role = Role.parse(role) if isinstance(role, str) else role
    if not invitees:
        raise InvalidInput("Name who to invite: @someone or an e-mail address (several are fine).")
    if len(invitees) > MAX_BULK:
        raise InvalidInput(f"Invite at most {MAX_BULK} people at a time; you named {len(invitees)}.")
    ws = load_workspace(s, workspace_id, lock=True)
    me = membership(s, actor, ws.id)
    if me is not None and me.role is not Role.ADMIN:
        requester = requester_member(s, actor, ws, Permission.MANAGE_MEMBERS, "member.invite")
        return _invite_by_request(s, ws, requester, invitees, role)
    inviter = authorize(s, actor, ws, Permission.MANAGE_MEMBERS, resource=f"workspace:{ws.slug}", attempted="member.invite")
    return [_invite_one(s, actor, ws, raw, role, inviter) for raw in dict.fromkeys(invitees)]


def _invite_one(s: Session, actor: Actor, ws: Workspace, raw: str, role: Role, inviter: Member | None, via_request: int | None = None) -> InviteResult:
    shown = raw.strip()[:60]
    try:
        slack_id, email = _invitee(raw)
    except InvalidInput as exc:
        return InviteResult(shown, "invalid", exc.message)
    who = slack_id or email
    member = s.scalars(
        select(Member).where(Member.workspace_id == ws.id, Member.status == MemberStatus.ACTIVE, _same_person(Member.slack_user_id, Member.email, slack_id, email))
    ).first()
    if member is not None:
        return InviteResult(who, "already_member", f"{who} is already a {member.role.title} of `{ws.slug}`.")
    pending = s.scalars(
        select(Invitation).where(
            Invitation.workspace_id == ws.id,
            Invitation.status == InvitationStatus.PENDING,
            Invitation.expires_at > utcnow(),
            _same_person(Invitation.invitee_slack_id, Invitation.invitee_email, slack_id, email),
        )
    ).first()
    if pending is not None:
        return InviteResult(who, "already_invited", f"{who} already has an invitation waiting (until {pending.expires_at:%Y-%m-%d}).", pending.id)
    cap = ROLE_CAPS.get(role)
    if cap is not None:
        try:
            check_role_cap(s, ws, role, actor, f"member:{who}")
        except DomainError as exc:
            return InviteResult(who, "role_full", exc.message)
    inv = Invitation(workspace_id=ws.id, invitee_slack_id=slack_id, invitee_email=email, role=role, inviter_id=inviter.id if inviter else None, expires_at=utcnow() + INVITATION_TTL)
    s.add(inv)
    s.flush()
    details = {"role": role.value}
    if via_request:
        details["request"] = via_request
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="member.invite", resource=f"invitation:{inv.id}", details={"invitee": who, **details})
    outbox.emit(s, ActionKind.SEND_INVITATION, workspace_id=ws.id, payload={"invitation_id": inv.id})
    if slack_id is None:  # whether anyone in Slack has this address is known only when the worker looks
        return InviteResult(who, "invited", f"Inviting {who} as {role.title}: Purser will look for them in Slack by this e-mail and DM them the invitation (good for 7 days). If nobody here has that address, you will be told and the invitation withdrawn.", inv.id)
    return InviteResult(who, "invited", f"Invited {who} as {role.title}; the invitation is good for 7 days.", inv.id)


def _same_person(slack_column, email_column, slack_id: str | None, email: str | None):
    # Compare only the identifier given: `column == None` would match everyone without one.
    return slack_column == slack_id if slack_id is not None else email_column == email


def _invite_by_request(s: Session, ws: Workspace, requester: Member, invitees: list[str], role: Role) -> list[InviteResult]:
    results, valid = [], []
    for raw in dict.fromkeys(invitees):
        try:
            slack_id, email = _invitee(raw)
            valid.append(slack_id or email)
        except InvalidInput as exc:
            results.append(InviteResult(raw.strip()[:60], "invalid", exc.message))
    if valid:
        req = open_request(s, ws, requester, RequestKind.INVITE, {"invitees": valid, "role": role.value})
        results.extend(InviteResult(who, "requested", f"Asked the admins to invite {who} as {role.title} (request #{req.id}).") for who in valid)
    return results


def apply_invite_request(s: Session, actor: Actor, ws: Workspace, req: Request) -> None:
    decider = membership(s, actor, ws.id)
    for who in req.payload["invitees"]:
        _invite_one(s, actor, ws, who, Role(req.payload["role"]), decider, via_request=req.id)


def accept_invitation(s: Session, invitation_id: int, *, slack_user_id: str, email: str | None = None) -> Member:
    """The invitee accepts: the role is provisioned, caps checked again at this moment."""
    email = email.strip().lower() if email else None
    inv = s.get(Invitation, invitation_id)
    _check_addressed(inv, slack_user_id, email, "invitation.accept")
    ws = load_workspace(s, inv.workspace_id, lock=True)
    inv = s.scalars(select(Invitation).where(Invitation.id == invitation_id).with_for_update().execution_options(populate_existing=True)).one()
    if inv.status is not InvitationStatus.PENDING:
        raise Conflict(f"This invitation was already {inv.status.value}.", state=inv.status.value)
    now = utcnow()
    if inv.expires_at <= now:  # the clock's expiry job records it; a refusal changes nothing
        raise Conflict(f"This invitation expired on {inv.expires_at:%Y-%m-%d}. Ask an admin of `{ws.slug}` for a new one.", state="expired")
    actor = Actor.slack(slack_user_id)
    existing = s.scalars(select(Member).where(Member.workspace_id == ws.id, Member.slack_user_id == slack_user_id)).one_or_none()
    if existing is not None and existing.status is MemberStatus.ACTIVE:
        raise Conflict(f"You are already a {existing.role.title} of `{ws.slug}`.")
    check_role_cap(s, ws, inv.role, actor, f"invitation:{inv.id}")
    if existing is not None:
        existing.status, existing.role, existing.removed_at = MemberStatus.ACTIVE, inv.role, None
        existing.email = email or inv.invitee_email or existing.email
        member = existing
    else:
        member = Member(workspace_id=ws.id, slack_user_id=slack_user_id, email=(email or inv.invitee_email), role=inv.role)
        s.add(member)
    s.flush()
    inv.status, inv.decided_at, inv.member_id = InvitationStatus.ACCEPTED, now, member.id
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="invitation.accept", resource=f"invitation:{inv.id}", details={"role": inv.role.value, "member": slack_user_id})
    return member


def decline_invitation(s: Session, invitation_id: int, *, slack_user_id: str, email: str | None = None) -> Invitation:
    inv = s.scalars(select(Invitation).where(Invitation.id == invitation_id).with_for_update()).one_or_none()
    _check_addressed(inv, slack_user_id, email, "invitation.decline")
    if inv.status is not InvitationStatus.PENDING:
        raise Conflict(f"This invitation was already {inv.status.value}.", state=inv.status.value)
    inv.status, inv.decided_at = InvitationStatus.DECLINED, utcnow()
    audit.record(s, workspace_id=inv.workspace_id, actor=f"slack:{slack_user_id}", action="invitation.decline", resource=f"invitation:{inv.id}", details={})
    return inv


def match_invitee(s: Session, invitation_id: int, slack_user_id: str) -> Invitation | None:
    """An e-mail invitation found its person in Slack: from now on only they can accept it."""
    inv = s.scalars(select(Invitation).where(Invitation.id == invitation_id).with_for_update()).one_or_none()
    if inv is None or inv.invitee_slack_id is not None or inv.status is not InvitationStatus.PENDING:
        return inv
    inv.invitee_slack_id = slack_user_id
    audit.record(s, workspace_id=inv.workspace_id, actor="system:worker", action="invitation.match", resource=f"invitation:{inv.id}", details={"email": inv.invitee_email, "member": slack_user_id})
    return inv


def undeliverable(s: Session, invitation_id: int, reason: str) -> Invitation | None:
    """The invitation could not reach its person: it is withdrawn, not left pending for nobody."""
    inv = s.scalars(select(Invitation).where(Invitation.id == invitation_id).with_for_update()).one_or_none()
    if inv is None or inv.status is not InvitationStatus.PENDING:
        return inv
    inv.status, inv.decided_at = InvitationStatus.CANCELLED, utcnow()
    audit.record(s, workspace_id=inv.workspace_id, actor="system:worker", action="invitation.undeliverable", resource=f"invitation:{inv.id}", details={"invitee": inv.invitee, "reason": reason[:500]})
    return inv


def _check_addressed(inv: Invitation | None, slack_user_id: str, email: str | None, attempted: str) -> None:
    if inv is None:
        raise NotFound("There is no invitation for you here.")
    if not _addressed_to(inv, slack_user_id, email):
        raise NotYours("There is no invitation for you here.", denial=denial(inv.workspace_id, Actor.slack(slack_user_id), attempted, f"invitation:{inv.id}", reason="not the invitee"))


def _addressed_to(inv: Invitation, slack_user_id: str, email: str | None) -> bool:
    if inv.invitee_slack_id is not None:
        return inv.invitee_slack_id == slack_user_id
    return email is not None and inv.invitee_email == email.strip().lower()


def expire_invitations(s: Session, now: datetime | None = None) -> int:
    now = now or utcnow()
    stale = list(s.scalars(select(Invitation).where(Invitation.status == InvitationStatus.PENDING, Invitation.expires_at <= now).with_for_update(skip_locked=True)))
    for inv in stale:
        inv.status = InvitationStatus.EXPIRED
        audit.record(s, workspace_id=inv.workspace_id, actor="system:clock", action="invitation.expire", resource=f"invitation:{inv.id}", details={"invitee": inv.invitee})
    return len(stale)


def pending_invitations_for(s: Session, slack_user_id: str, email: str | None = None) -> list[Invitation]:
    clauses = [Invitation.invitee_slack_id == slack_user_id]
    if email:
        clauses.append(Invitation.invitee_email == email.strip().lower())
    return list(s.scalars(select(Invitation).where(Invitation.status == InvitationStatus.PENDING, Invitation.expires_at > utcnow(), or_(*clauses))))
