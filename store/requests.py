"""Requests: opening one, who may ask and who may decide, cancelling and expiring them.

Deciding one, and applying what was approved, is store.decisions: it calls into every
module that opens requests, and each of those imports this one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from store import approvals, audit, outbox
from store.approval_rules import facts_of, needs_of
from store.errors import Conflict, NotFound, PermissionDenied
from store.models import Member, Request, Workspace
from store.permissions import Actor, MATRIX, Permission, authorize, denial, load_workspace, membership, roles_text
from store.types import ActionKind, RequestKind, RequestState, Role, WorkspaceStatus, utcnow

#: pending requests nobody decided lapse after this long
REQUEST_TTL = timedelta(days=7)


def open_request(
    s: Session,
    ws: Workspace,
    requester: Member,
    kind: RequestKind,
    payload: dict[str, Any],
    *,
    reason: str | None = None,
    within_preset: bool = False,
) -> Request:
    """Record a request under the workspace's approval policy: what its rule needs is kept on it.

    A rule that approves at once leaves the request approved (only key requests: the rules
    refuse `automatic` for any other kind); the caller applies it, as only it knows how.
    """
    rule = approvals.rule_for(s, ws, facts_of(kind, payload, requester.role, within_preset=within_preset))
    req = Request(
        workspace_id=ws.id,
        kind=kind,
        requester_id=requester.id,
        payload=payload,
        reason=(reason or "").strip()[:500] or None,
        approval_needs={role.value: n for role, n in rule.needs},
        expires_at=utcnow() + REQUEST_TTL,
    )
    s.add(req)
    s.flush()
    audit.record(
        s,
        workspace_id=ws.id,
        actor=f"slack:{requester.slack_user_id}" if requester.slack_user_id else f"member:{requester.id}",
        action="request.open",
        resource=f"request:{req.id}",
        details={"kind": kind.value, **payload, **({"reason": req.reason} if req.reason else {}), **({} if rule.automatic else {"needs": req.approval_needs})},
    )
    # Posts the approval message, unless policy approves it in this same transaction.
    outbox.emit(s, ActionKind.REQUEST_OPENED, workspace_id=ws.id, request_id=req.id, payload={"request_id": req.id})
    if rule.automatic and kind in (RequestKind.KEY, RequestKind.KEY_EXTEND):
        approve_automatically(s, ws, req, rule.automatic_note())
    return req


def approve_automatically(s: Session, ws: Workspace, req: Request, why: str) -> Request:
    """Policy approves at once (a rule of the workspace's approval policy, like a key within the role's preset).

    The caller applies the request: only keys are approved by policy, and store.keys applies its own.
    """
    req.state = RequestState.APPROVED
    req.auto_approved = True
    req.decided_at = utcnow()
    req.decision_note = why
    audit.record(s, workspace_id=ws.id, actor="system:policy", action="request.approve", resource=f"request:{req.id}", details={"kind": req.kind.value, "auto": why})
    return req


def check_decider(s: Session, actor: Actor, request_id: int, *, approve: bool = True, lock: bool = False) -> tuple[Workspace, Request, Member | None]:
    """May this actor decide this request now? Raises what a click by the wrong person or a late click should hear."""
    if lock:
        # The workspace is locked first, as every path that changes it does, found through the
        # request without loading it: the request is read once, under its own lock, after.
        ws_id = select(Request.workspace_id).where(Request.id == request_id).scalar_subquery()
        ws = s.scalars(select(Workspace).where(Workspace.id == ws_id, Workspace.status != WorkspaceStatus.DELETED).with_for_update(key_share=True)).one_or_none()
        if ws is None:
            raise NotFound(f"There is no request #{request_id}.")
    else:
        req = s.get(Request, request_id)
        if req is None:
            raise NotFound(f"There is no request #{request_id}.")
        ws = load_workspace(s, req.workspace_id)
    verb = "approve" if approve else "deny"
    decider = None if actor.is_system else membership(s, actor, ws.id)
    if not actor.is_system and decider is None:
        # Say nothing about a workspace the clicker is not in, not even whether the request exists.
        authorize(s, actor, ws, Permission.DECIDE_REQUESTS, resource=f"request:{request_id}", attempted=f"request.{verb}")
    if lock:  # with its requester, whom the decision's audit event names: one SELECT rather than two
        req = s.scalars(
            select(Request).where(Request.id == request_id).options(joinedload(Request.requester)).with_for_update(of=Request).execution_options(populate_existing=True)
        ).one()
    if decider is not None:
        _may_decide(ws, actor, req, decider, verb)
    if req.state is not RequestState.PENDING:
        raise _already_decided(req)
    if decider is not None and decider.id == req.requester_id:
        raise PermissionDenied(
            "You cannot decide your own request; another Admin has to.",
            needed=("admin",),
            denial=denial(ws.id, actor, f"request.{verb}", f"request:{req.id}", reason="own request"),
        )
    return ws, req, decider


def _may_decide(ws: Workspace, actor: Actor, req: Request, decider: Member, verb: str) -> None:
    """Whoever holds a role the request's policy asks approvers of may approve or deny it (Admins always:
    every rule with approvers names one); Purser itself is not subject to the policy."""
    # a request approved at once needed nobody; who may decide it is then, as ever, the Admins
    roles = set(needs_of(req.approval_needs)) or {Role.ADMIN}
    if decider.role in roles:
        return
    who = roles_text(roles)
    raise PermissionDenied(
        f"Only {'an' if who[0] in 'AEIOU' else 'a'} {who} can approve or deny {'requests' if roles == {Role.ADMIN} else 'this request'}; you are a {decider.role.title}.",
        needed=tuple(r.value for r in roles),
        denial=denial(ws.id, actor, f"request.{verb}", f"request:{req.id}", reason="role"),
    )


def _already_decided(req: Request) -> Conflict:
    who = req.decided_by.label if req.decided_by else ("Purser's policy" if req.auto_approved else "Purser")
    when = f" at {req.decided_at:%H:%M} UTC on {req.decided_at:%Y-%m-%d}" if req.decided_at else ""
    return Conflict(
        f"Request #{req.id} was already {req.state.value} by {who}{when}.",
        decided_by=req.decided_by.slack_user_id if req.decided_by else None,
        decided_at=req.decided_at,
        state=req.state.value,
    )


def _expire(s: Session, ws: Workspace, req: Request) -> None:
    req.state, req.decided_at = RequestState.EXPIRED, utcnow()
    audit.record(s, workspace_id=ws.id, actor="system:clock", action="request.expire", resource=f"request:{req.id}", details={"kind": req.kind.value})
    outbox.emit(s, ActionKind.REQUEST_DECIDED, workspace_id=ws.id, request_id=req.id, payload={"request_id": req.id})


def expire_requests(s: Session, now: datetime | None = None) -> int:
    """Lapse pending requests past their expiry (the clock calls this)."""
    now = now or utcnow()
    stale = list(s.scalars(select(Request).where(Request.state == RequestState.PENDING, Request.expires_at <= now).with_for_update(skip_locked=True)))
    for req in stale:
        _expire(s, s.get(Workspace, req.workspace_id), req)
    return len(stale)


def pending_requests(s: Session, actor: Actor, workspace_id: int) -> list[Request]:
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.DECIDE_REQUESTS, resource=f"workspace:{ws.slug}", attempted="request.list")
    return list(s.scalars(select(Request).where(Request.workspace_id == ws.id, Request.state == RequestState.PENDING).order_by(Request.id)))


def requester_member(s: Session, actor: Actor, ws: Workspace, permission: Permission, attempted: str) -> Member:
    """The member asking, if their role may ask for this (or do it: admins may file requests too)."""
    me = membership(s, actor, ws.id)
    rule = MATRIX[permission]
    if me is not None and (me.role in rule.may_request or me.role in rule.allowed):
        return me
    who = roles_text(rule.may_request | rule.allowed)
    message = (
        "You are not a member of that workspace. Ask one of its admins to invite you."
        if me is None
        else f"Only {'an' if who[0] in 'AEIOU' else 'a'} {who} can ask for this; you are a {me.role.title}."
    )
    raise PermissionDenied(message, needed=tuple(r.value for r in rule.may_request | rule.allowed), denial=denial(ws.id, actor, attempted, f"workspace:{ws.slug}", reason="role" if me else "not a member"))


def cancel_extensions(s: Session, workspace_id: int, key_ids: list[int], *, actor: str, why: str) -> None:
    """Close the pending extensions of keys that changed hands, were revoked or were held back: approving one later would move an end nobody asked for."""
    if not key_ids:
        return
    pending = s.scalars(
        select(Request)
        .where(Request.workspace_id == workspace_id, Request.kind == RequestKind.KEY_EXTEND, Request.state == RequestState.PENDING, Request.payload["key_id"].as_integer().in_(key_ids))
        .order_by(Request.id)
        .with_for_update()
    )
    for req in pending:
        req.state, req.decided_at, req.decision_note = RequestState.CANCELLED, utcnow(), why
        audit.record(s, workspace_id=workspace_id, actor=actor, action="request.cancel", resource=f"request:{req.id}", details={"kind": req.kind.value, "why": why})
        outbox.emit(s, ActionKind.REQUEST_DECIDED, workspace_id=workspace_id, request_id=req.id, payload={"request_id": req.id})
