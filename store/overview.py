"""Read operations for what a person sees of all their workspaces at once: App Home and `list`.

Plain data, permission-checked through the one table in ``store.permissions``: a seat
carries keys only for a role that may hold keys, and requests only for one that may
decide them. The Slack layer renders it and queries nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from store.approval_rules import APPROVER_ROLES
from store.approvals import PolicyView, describe_policy
from store.budgets import BudgetLine, budget_overview
from store.models import ApiKey, ChannelBinding, Member, Request, Workspace
from store.permissions import Actor, Permission, can
from store.types import KeyStatus, MemberStatus, RequestState, WorkspaceStatus
from store.views import KeyView, RequestView, describe_key, describe_request


@dataclass(frozen=True)
class Seat:
    """One workspace as one member sees it."""

    slug: str
    environment: str
    role: str  # the role's title, as people read it
    status: str
    #: None when the role holds no keys; else the member's live keys (at most ``keys_shown``)
    keys: list[KeyView] | None = None
    #: None when the role decides no requests; else the ones waiting (at most ``pending_shown``)
    pending: list[RequestView] | None = None
    budgets: tuple[BudgetLine, ...] = ()
    workspace_id: int | None = None
    member_id: int | None = None
    sees_all: bool = False  # may see the whole workspace's spend (else only their own keys')
    policy: PolicyView | None = None  # who approves which requests there


def _memberships(s: Session, team_id: str, slack_user_id: str) -> list[tuple[Member, Workspace]]:
    return list(
        s.execute(
            select(Member, Workspace)
            .join(Workspace, Workspace.id == Member.workspace_id)
            .where(Member.slack_user_id == slack_user_id, Member.status == MemberStatus.ACTIVE, Workspace.team_id == team_id, Workspace.status != WorkspaceStatus.DELETED)
            .order_by(Workspace.slug)
        ).all()
    )


def workspaces_of(s: Session, team_id: str, slack_user_id: str) -> list[Seat]:
    """The workspaces someone is an active member of, with their role in each: no detail."""
    return [Seat(ws.slug, ws.environment.value, m.role.title, ws.status.value) for m, ws in _memberships(s, team_id, slack_user_id)]


def home(s: Session, team_id: str, slack_user_id: str, *, most: int | None = None, keys_shown: int = 15, pending_shown: int = 10) -> list[Seat]:
    """Each workspace with what its member may see there: own keys, requests to decide, budgets."""
    actor = Actor.slack(slack_user_id)
    seats = []
    for member, ws in _memberships(s, team_id, slack_user_id)[:most]:
        keys = pending = None
        if can(member.role, Permission.CREATE_OWN_KEY):
            live = s.scalars(select(ApiKey.id).where(ApiKey.member_id == member.id, ApiKey.status != KeyStatus.REVOKED).order_by(ApiKey.id).limit(keys_shown))
            keys = [describe_key(s, key_id) for key_id in live]
        if can(member.role, Permission.DECIDE_REQUESTS):
            waiting = s.scalars(select(Request.id).where(Request.workspace_id == ws.id, Request.state == RequestState.PENDING).order_by(Request.id).limit(pending_shown))
            pending = [describe_request(s, request_id) for request_id in waiting]
        elif member.role in APPROVER_ROLES:
            # A Billing Manager decides only what a rule asked a Billing Manager for; which those are is in
            # each request's stored needs, read here rather than matched in SQL (JSON differs per database).
            waiting = s.scalars(
                select(Request.id).where(Request.workspace_id == ws.id, Request.state == RequestState.PENDING, Request.requester_id != member.id).order_by(Request.id).limit(50)
            )
            pending = [view for view in (describe_request(s, request_id) for request_id in waiting) if member.role.value in view.needs][:pending_shown]
        budgets = tuple(budget_overview(s, actor, ws.id))
        seats.append(
            Seat(ws.slug, ws.environment.value, member.role.title, ws.status.value, keys, pending, budgets, ws.id, member.id, can(member.role, Permission.VIEW_ALL_USAGE), describe_policy(s, ws))
        )
    return seats


@dataclass(frozen=True)
class Choice:
    """Which workspace a command means (``id``, ``slug``), or why there is none: the candidates."""

    id: int | None
    slug: str | None = None
    named_missing: bool = False
    mine: tuple[str, ...] = ()


def choose_workspace(s: Session, team_id: str, slack_user_id: str, channel_id: str | None, named: str | None) -> Choice:
    """The named one; else the channel's; else the only one the person is in."""
    live = select(Workspace).where(Workspace.team_id == team_id, Workspace.status != WorkspaceStatus.DELETED)
    if named:
        ws = s.scalars(live.where(Workspace.slug == named.strip().lower())).one_or_none()
        return Choice(ws.id, ws.slug) if ws is not None else Choice(None, named_missing=True)
    mine = list(s.scalars(live.join(Member).where(Member.slack_user_id == slack_user_id, Member.status == MemberStatus.ACTIVE).order_by(Workspace.slug)))
    if channel_id:
        binding = s.get(ChannelBinding, (team_id, channel_id))
        if binding is not None:
            ws = s.get(Workspace, binding.workspace_id)
            if ws is not None and ws.status is not WorkspaceStatus.DELETED:
                return Choice(ws.id, ws.slug)
        # a workspace's own approvals / alerts / audit channel speaks for it
        bound = list(
            s.scalars(live.where(or_(Workspace.approvals_channel == channel_id, Workspace.alerts_channel == channel_id, Workspace.audit_channel == channel_id)))
        )
        if len(bound) == 1:
            return Choice(bound[0].id, bound[0].slug)
    if len(mine) == 1:
        return Choice(mine[0].id, mine[0].slug)
    return Choice(None, mine=tuple(w.slug for w in mine))
