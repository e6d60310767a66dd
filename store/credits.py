"""The shared credit pool: a ledger of top-ups and spend, and a running balance."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import audit
from store.errors import InvalidInput
from store.models import CreditEntry, Request, Workspace
from store.money import MAX_MICROS, format_money
from store.permissions import Actor, Permission, authorize, load_workspace
from store.requests import open_request, requester_member
from store.standing import reconcile_workspace
from store.types import RequestKind


def add_credit(s: Session, actor: Actor, workspace_id: int, amount_micros: int, note: str | None = None) -> CreditEntry:
    ws = load_workspace(s, workspace_id, lock=True)
    member = authorize(s, actor, ws, Permission.MANAGE_CREDIT, resource=f"workspace:{ws.slug}", attempted="credit.add")
    return apply_topup(s, actor, ws, amount_micros, member_id=member.id if member else None, note=note)


def apply_topup(s: Session, actor: Actor, ws: Workspace, amount: int, *, member_id: int | None, note: str | None = None, via_request: int | None = None) -> CreditEntry:
    if amount <= 0:
        raise InvalidInput("A top-up must be more than $0.00.")
    if ws.credit_balance_micros + amount > MAX_MICROS:
        raise InvalidInput(f"That would take the pool above {format_money(MAX_MICROS)}, the most Purser holds.")
    ws.credit_balance_micros += amount
    ws.credit_funded = True
    entry = CreditEntry(workspace_id=ws.id, kind="topup", amount_micros=amount, balance_after_micros=ws.credit_balance_micros, member_id=member_id, note=(note or "")[:200] or None)
    s.add(entry)
    details = {"amount_micros": amount, "balance_micros": ws.credit_balance_micros}
    if via_request:
        details["request"] = via_request
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="credit.add", resource=f"workspace:{ws.slug}", details=details)
    # Resumes only what the pool held back: a spent cap keeps the workspace paused (and says so).
    reconcile_workspace(s, actor.label, ws, "credit added")
    s.flush()
    return entry


def request_topup(s: Session, actor: Actor, workspace_id: int, amount_micros: int, reason: str | None = None) -> Request:
    ws = load_workspace(s, workspace_id)
    me = requester_member(s, actor, ws, Permission.MANAGE_CREDIT, "request.credit_topup")
    if amount_micros <= 0:
        raise InvalidInput("A top-up must be more than $0.00.")
    return open_request(s, ws, me, RequestKind.CREDIT_TOPUP, {"amount_micros": amount_micros}, reason=reason)


def apply_topup_request(s: Session, actor: Actor, ws: Workspace, req: Request) -> None:
    apply_topup(s, actor, ws, req.payload["amount_micros"], member_id=None, note=f"request #{req.id}", via_request=req.id)


@dataclass(frozen=True)
class Balance:
    balance_micros: int
    funded: bool
    entries: list[CreditEntry]


def credit_balance(s: Session, actor: Actor, workspace_id: int, *, entries: int = 10) -> Balance:
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.MANAGE_CREDIT, resource=f"workspace:{ws.slug}", attempted="credit.view")
    recent = list(s.scalars(select(CreditEntry).where(CreditEntry.workspace_id == ws.id).order_by(CreditEntry.id.desc()).limit(entries)))
    return Balance(ws.credit_balance_micros, ws.credit_funded, recent)
