"""Deciding a request: the compare-and-set approval or denial, and applying what was approved.

Each kind of request is applied by the module that opened it; the table below maps one
to the other. Those modules import store.requests to open their requests, so this
module, which imports them all, sits above them: nothing in the store imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.orm import Session

from store import approvals, audit, budgets, credits, invitations, keys, leases, members, outbox, policy, raises
from store.errors import Conflict, InvalidInput
from store.models import Request, Workspace
from store.permissions import Actor
from store.requests import check_decider
from store.types import ActionKind, RequestKind, RequestState, Role, utcnow


@dataclass(frozen=True)
class Decision:
    request: Request
    approved: bool
    #: approvers per role the request still waits for after this approval; empty once decided
    still_needed: dict[Role, int] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return not self.still_needed


def decide_request(s: Session, actor: Actor, request_id: int, *, approve: bool, note: str | None = None) -> Decision:
    """Approve or deny. Compare-and-set under the row lock: the second decider gets a Conflict naming the first.

    An approval is recorded as a row (store.approvals); the request is approved once its policy's
    approvers are all there, each person counting once. A denial by anyone who may decide ends it.
    Purser itself (the operator's CLI) decides outright.
    """
    ws, req, decider = check_decider(s, actor, request_id, approve=approve, lock=True)
    verb = "approve" if approve else "deny"
    now = utcnow()
    if req.expires_at <= now:  # the clock's expiry job records it; a refusal changes nothing
        raise Conflict(f"Request #{req.id} expired on {req.expires_at:%Y-%m-%d %H:%M} UTC; ask again.", state="expired")
    note = (note or "").strip()[:500] or None
    if not approve and decider is not None and not note:
        raise InvalidInput("Say why you deny it: the person who asked will read the reason.")
    if approve and decider is not None:
        waiting = approvals.record_approval(s, req, decider)
        if waiting:
            audit.record(
                s,
                workspace_id=ws.id,
                actor=actor.label,
                action="request.approval",
                resource=f"request:{req.id}",
                details={"kind": req.kind.value, "role": decider.role.value, "still_needed": {r.value: n for r, n in waiting.items()}},
            )
            # the approval message shows who approved and who is still needed
            outbox.emit(s, ActionKind.REQUEST_PROGRESS, workspace_id=ws.id, request_id=req.id, payload={"request_id": req.id})
            return Decision(req, True, waiting)
    req.state = RequestState.APPROVED if approve else RequestState.DENIED
    req.decided_by_id = decider.id if decider else None
    req.decided_at = now
    req.decision_note = note
    audit.record(
        s,
        workspace_id=ws.id,
        actor=actor.label,
        action=f"request.{verb}",
        resource=f"request:{req.id}",
        details={"kind": req.kind.value, "requester": req.requester.label, **({"note": req.decision_note} if req.decision_note else {})},
    )
    if approve:
        _APPLIERS[req.kind](s, actor, ws, req)
    if not (approve and req.kind is RequestKind.KEY):
        # An approved key's provision_key shows the decision on the approval message itself, before
        # it makes the key, and its DM to the owner says who approved: one action rather than two.
        outbox.emit(s, ActionKind.REQUEST_DECIDED, workspace_id=ws.id, request_id=req.id, payload={"request_id": req.id})
    return Decision(req, approve)


#: what applies an approved request of each kind
_APPLIERS: dict[RequestKind, Callable[[Session, Actor, Workspace, Request], None]] = {
    RequestKind.KEY: keys.apply_key_request,
    RequestKind.INVITE: invitations.apply_invite_request,
    RequestKind.BUDGET_CHANGE: budgets.apply_budget_request,
    RequestKind.BUDGET_RAISE: raises.apply_raise_request,
    RequestKind.CAP_CHANGE: budgets.apply_cap_request,
    RequestKind.ROLE_CHANGE: members.apply_role_change_request,
    RequestKind.CREDIT_TOPUP: credits.apply_topup_request,
    RequestKind.MODEL_ACCESS: policy.apply_model_request,
    RequestKind.KEY_EXTEND: leases.apply_extend_request,
}
