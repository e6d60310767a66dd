"""Read models: what the bot and the workers show about a request, a key or a workspace, as plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, joinedload

from store.approval_rules import needs_of
from store.approvals import given
from store.errors import NotFound
from store.models import ApiKey, Invitation, Member, Project, Request, Workspace
from store.standing import effective_budget
from store.totals import spent
from store.types import Scope


@dataclass(frozen=True)
class RequestView:
    id: int
    kind: str
    state: str
    workspace_id: int
    workspace: str
    environment: str
    requester: str | None  # Slack user id
    requester_role: str
    payload: dict[str, Any]
    reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    auto_approved: bool
    approvals_channel: str | None
    project_budget_left: int | None  # micro-dollars left this period, when the request names a budgeted project
    created_at: datetime
    deciders: tuple[str, ...] = ()  # Slack ids of the members who may decide it (never the requester)
    #: approvers per role its policy asked for (role value → count), in the order shown
    needs: dict[str, int] = field(default_factory=lambda: {"admin": 1})
    #: the approvals given so far: (Slack user id, role value then held), oldest first
    approved_by: tuple[tuple[str | None, str], ...] = ()


def describe_request(s: Session, request_id: int, *, deciders: bool = True) -> RequestView:
    """``deciders=False``: a decided request's message names no one who may still decide it, so they are not read."""
    # One SELECT for the request and both people, rather than one each.
    req = s.get(Request, request_id, options=[joinedload(Request.requester), joinedload(Request.decided_by)])
    if req is None:
        raise NotFound(f"There is no request #{request_id}.")
    return request_view(s, req, s.get(Workspace, req.workspace_id), deciders=deciders)


def request_view(s: Session, req: Request, ws: Workspace, *, deciders: bool = True) -> RequestView:
    """The view of a request already loaded with its requester and decider (``describe_request``)."""
    left = None
    project_id = req.payload.get("project_id")
    if project_id:
        proj = s.get(Project, project_id)
        if proj is not None and proj.budget_micros is not None:
            left = effective_budget(s, proj) - spent(s, Scope.PROJECT, proj.id, proj.budget_period)
    needs = needs_of(req.approval_needs)
    return RequestView(
        id=req.id,
        kind=req.kind.value,
        state=req.state.value,
        workspace_id=ws.id,
        workspace=ws.slug,
        environment=ws.environment.value,
        requester=req.requester.slack_user_id,
        requester_role=req.requester.role.value,
        payload=dict(req.payload),
        reason=req.reason,
        decided_by=req.decided_by.slack_user_id if req.decided_by else None,
        decided_at=req.decided_at,
        note=req.decision_note,
        auto_approved=req.auto_approved,
        approvals_channel=ws.approvals_channel,
        project_budget_left=left,
        created_at=req.created_at,
        deciders=_deciders(s, ws.id, req.requester_id, needs) if deciders else (),
        needs={role.value: n for role, n in needs.items()},
        # one approver decides most requests, and the decision names them: read only when several are needed
        approved_by=tuple((slack_id, role.value) for _, role, slack_id in given(s, req.id)) if sum(needs.values()) > 1 else (),
    )


def _deciders(s: Session, workspace_id: int, requester_id: int, needs: dict) -> tuple[str, ...]:
    from sqlalchemy import select

    from store.models import Member
    from store.types import MemberStatus

    return tuple(
        s.scalars(
            select(Member.slack_user_id)
            .where(Member.workspace_id == workspace_id, Member.role.in_(list(needs)), Member.status == MemberStatus.ACTIVE, Member.id != requester_id, Member.slack_user_id.is_not(None))
            .order_by(Member.id)
        )
    )


@dataclass(frozen=True)
class KeyView:
    id: int
    name: str
    prefix: str
    owner: str | None
    workspace: str
    project: str | None
    limit_micros: int | None
    limit_period: str
    expires_at: datetime | None
    status: str
    spent_micros: int  # this period's spend, against the key's own limit period
    held: str | None = None  # why a key that is not revoked or disabled cannot be used now, in plain words


def describe_key(s: Session, key_id: int) -> KeyView:
    key = s.get(ApiKey, key_id, options=[joinedload(ApiKey.member), joinedload(ApiKey.project)])  # one SELECT for all three
    if key is None:
        raise NotFound(f"There is no key #{key_id}.")
    ws = s.get(Workspace, key.workspace_id)
    return KeyView(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        owner=key.member.slack_user_id,
        workspace=ws.slug,
        project=key.project.slug if key.project else None,
        limit_micros=key.limit_micros,
        limit_period=key.limit_period.value,
        expires_at=key.expires_at,
        status=key.status.value,
        spent_micros=spent(s, Scope.KEY, key.id, key.limit_period),
        held=_held(s, key, ws),
    )


def _held(s: Session, key: ApiKey, ws: Workspace) -> str | None:
    """What stops an active key now, from its standing (store.standing): the owner's role, a pause, its expiry."""
    from store.standing import key_itself, key_standing, project_hold_now, workspace_hold_now
    from store.types import KeyStatus, WorkspaceStatus, utcnow

    if key.status is not KeyStatus.ACTIVE:
        return None
    itself = key_itself(key.status, key.member.status, key.member.role, ws.status is WorkspaceStatus.DELETED)
    if not itself.usable:
        return itself.message.removeprefix("This key's ").rstrip(".")
    if not key_standing(itself, key.expires_at, utcnow()).usable:
        return f"its lease ended at {key.expires_at:%Y-%m-%d %H:%M} UTC"
    hold = workspace_hold_now(s, ws)
    if hold == "cap":
        return f"the spending cap of `{ws.slug}` is spent"
    if hold == "credit":
        return f"the credit pool of `{ws.slug}` is empty"
    if key.project is not None:
        project = project_hold_now(s, key.project)
        if project == "budget":
            return f"project `{key.project.slug}` has spent its budget"
        if project == "manual":
            return f"project `{key.project.slug}` is paused by an admin"
    return None


@dataclass(frozen=True)
class InvitationView:
    id: int
    workspace: str
    environment: str
    role: str
    invitee_slack_id: str | None
    invitee_email: str | None
    inviter: str | None
    status: str
    expires_at: datetime


def describe_invitation(s: Session, invitation_id: int) -> InvitationView:
    inv = s.get(Invitation, invitation_id)
    if inv is None:
        raise NotFound(f"There is no invitation #{invitation_id}.")
    ws = s.get(Workspace, inv.workspace_id)
    inviter = s.get(Member, inv.inviter_id) if inv.inviter_id else None
    return InvitationView(
        id=inv.id,
        workspace=ws.slug,
        environment=ws.environment.value,
        role=inv.role.value,
        invitee_slack_id=inv.invitee_slack_id,
        invitee_email=inv.invitee_email,
        inviter=inviter.slack_user_id if inviter else None,
        status=inv.status.value,
        expires_at=inv.expires_at,
    )
