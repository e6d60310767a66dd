"""Deleting a workspace: what it would do, for the person to confirm, and doing it.

Its live keys are revoked with it and what was waiting (requests, invitations) is
withdrawn; the audit log, usage and history stay.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import Conflict, InvalidInput
from store.keys import revoke_key_rows
from store.models import ApiKey, Invitation, Member, Request, Workspace
from store.permissions import Actor, Permission, authorize, load_workspace
from store.types import ActionKind, InvitationStatus, KeyStatus, MemberStatus, RequestState, WorkspaceStatus, utcnow


@dataclass(frozen=True)
class Deleted:
    workspace: Workspace
    revoked_keys: int
    cancelled_requests: int = 0
    cancelled_invitations: int = 0


@dataclass(frozen=True)
class DeletionPreview:
    slug: str
    live_keys: int
    members: int
    pending_requests: int
    pending_invitations: int

    def describe(self) -> str:
        return (
            f"Deleting `{self.slug}` revokes its {self.live_keys} live key(s) at once (at the provider too), "
            f"ends the access of its {self.members} member(s) and withdraws {self.pending_requests} pending request(s) "
            f"and {self.pending_invitations} invitation(s). Its audit log, usage and history are kept. It cannot be undone."
        )


def preview_deletion(s: Session, actor: Actor, workspace_id: int) -> DeletionPreview:
    """What deleting the workspace would do, for the person to confirm (only an Admin may ask)."""
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.DELETE_WORKSPACE, resource=f"workspace:{ws.slug}", attempted="workspace.delete")
    count = lambda stmt: s.scalar(stmt.with_only_columns(func.count())) or 0  # noqa: E731
    return DeletionPreview(
        ws.slug,
        count(select(ApiKey).where(ApiKey.workspace_id == ws.id, ApiKey.status != KeyStatus.REVOKED)),
        count(select(Member).where(Member.workspace_id == ws.id, Member.status == MemberStatus.ACTIVE)),
        count(select(Request).where(Request.workspace_id == ws.id, Request.state == RequestState.PENDING)),
        count(select(Invitation).where(Invitation.workspace_id == ws.id, Invitation.status == InvitationStatus.PENDING)),
    )


def delete_workspace(s: Session, actor: Actor, workspace_id: int, *, force: bool = False, confirm: str | None = None) -> Deleted:
    """Refused while keys are live, unless forced or confirmed by typing the workspace's name — then every
    live key is revoked with it, and what was waiting (requests, invitations) is withdrawn. History stays."""
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.DELETE_WORKSPACE, resource=f"workspace:{ws.slug}", attempted="workspace.delete")
    if confirm is not None and confirm.strip().lower() != ws.slug:
        raise InvalidInput(f"The confirmation “{confirm}” is not the workspace's name; type `{ws.slug}` exactly to delete it.")
    force = force or confirm is not None
    live = list(s.scalars(select(ApiKey).where(ApiKey.workspace_id == ws.id, ApiKey.status != KeyStatus.REVOKED)))
    if live and not force:
        raise Conflict(
            f"`{ws.slug}` still has {len(live)} active API key(s). Revoke them first, or delete with --force to revoke them all."
        )
    revoke_key_rows(s, actor, ws, live, reason="workspace deleted")
    now = utcnow()
    requests = list(s.scalars(select(Request).where(Request.workspace_id == ws.id, Request.state == RequestState.PENDING)))
    for req in requests:
        req.state, req.decided_at, req.decision_note = RequestState.CANCELLED, now, "the workspace was deleted"
        audit.record(s, workspace_id=ws.id, actor=actor.label, action="request.cancel", resource=f"request:{req.id}", details={"kind": req.kind.value, "why": "workspace deleted"})
        outbox.emit(s, ActionKind.REQUEST_DECIDED, workspace_id=ws.id, request_id=req.id, payload={"request_id": req.id})
    invitations = list(s.scalars(select(Invitation).where(Invitation.workspace_id == ws.id, Invitation.status == InvitationStatus.PENDING)))
    for inv in invitations:
        inv.status, inv.decided_at = InvitationStatus.CANCELLED, now
        audit.record(s, workspace_id=ws.id, actor=actor.label, action="invitation.cancel", resource=f"invitation:{inv.id}", details={"invitee": inv.invitee, "why": "workspace deleted"})
    ws.status = WorkspaceStatus.DELETED
    ws.deleted_at = now
    details = {"forced": force, "revoked_keys": len(live)}
    if requests or invitations:
        details.update(cancelled_requests=len(requests), cancelled_invitations=len(invitations))
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="workspace.delete", resource=f"workspace:{ws.slug}", details=details)
    return Deleted(ws, len(live), len(requests), len(invitations))
