"""Temporary budget raises: asked for, granted when an Admin approves, ended by the clock.

`/ai-budget raise search +$200 --for 3d --reason "…"` opens a ``budget_raise`` request.
Approved, it becomes a row of ``budget_raises`` that counts from the approval for the
duration asked: the project's limit is then its budget plus every raise in force
(store.standing.effective_budget), so a project its budget paused resumes at once, and
the raise applies against whichever period's spend the budget is read against — a raise
granted on the 30th for three days still counts on the 1st, against the new month's
spend. Nothing is set when a raise starts or cleared when it ends: the end is a time, and
every check reads it against the clock. The clock's ``end_raises`` only notices the
raises that have ended, brings the project's announced pause in line (a project now over
its budget pauses), audits ``budget.raise_end`` and announces it, each once.

A raise holds room in the workspace cap while it lasts, as a budget does: granting one
that would take the budgets and raises past the cap is refused with the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.budgets import find_project
from store.errors import InvalidInput, LimitReached
from store.models import Project, Request, Workspace
from store.models_raises import BudgetRaise
from store.money import format_money
from store.permissions import Actor, Permission, denial, load_workspace
from store.requests import open_request, requester_member
from store.standing import raised, reconcile_project
from store.types import ActionKind, RequestKind, WorkspaceStatus, utcnow

#: a raise lasts at least an hour; past a month it is a budget change, which `/ai-budget request` asks for
MIN_HOURS, MAX_HOURS = 1, 31 * 24


def request_budget_raise(s: Session, actor: Actor, workspace_id: int, slug: str, amount_micros: int, hours: int, *, reason: str | None = None) -> Request:
    """Ask the Admins for ``amount_micros`` more on a project's budget for ``hours`` from when it is approved."""
    ws = load_workspace(s, workspace_id)
    me = requester_member(s, actor, ws, Permission.CONFIGURE, "request.budget_raise")
    proj = find_project(s, ws, slug)
    if amount_micros <= 0:
        raise InvalidInput("A raise is an amount above zero, like +$200.")
    if not MIN_HOURS <= hours <= MAX_HOURS:
        raise InvalidInput(f"A temporary raise lasts from 1 hour to {MAX_HOURS // 24} days; for longer, ask for a new budget instead.")
    if proj.budget_micros is None:
        raise InvalidInput(f"`{proj.slug}` has no budget to raise: its spend is not limited. Nothing needs asking for.")
    if not (reason or "").strip():
        raise InvalidInput('Say why the budget should be raised: --reason "…". Admins decide on it.')
    payload = {
        "project_id": proj.id,
        "project": proj.slug,
        "amount_micros": amount_micros,
        "hours": hours,
        "current_micros": proj.budget_micros,
        "period": proj.budget_period.value,
    }
    return open_request(s, ws, me, RequestKind.BUDGET_RAISE, payload, reason=reason)


def apply_raise_request(s: Session, actor: Actor, ws: Workspace, req: Request) -> None:
    """Approved (store.decisions): the raise counts from now, and what the project's budget paused resumes if it now fits."""
    proj = s.scalars(select(Project).where(Project.id == req.payload["project_id"]).with_for_update()).one()
    amount, now = req.payload["amount_micros"], utcnow()
    _check_fits_cap(s, actor, ws, proj, amount)
    grant = BudgetRaise(
        workspace_id=ws.id,
        project_id=proj.id,
        amount_micros=amount,
        starts_at=now,
        ends_at=now + timedelta(hours=req.payload["hours"]),
        request_id=req.id,
        granted_by=actor.label,
        reason=req.reason,
    )
    s.add(grant)
    s.flush()
    details = {"raise": grant.id, "amount_micros": amount, "until": grant.ends_at.isoformat(), "budget_micros": proj.budget_micros, "request": req.id}
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="budget.raise", resource=f"project:{proj.slug}", details=details)
    outbox.emit(s, ActionKind.ANNOUNCE_RAISE, workspace_id=ws.id, payload={"raise_id": grant.id, "event": "start"})
    reconcile_project(s, actor.label, ws, proj, f"a temporary raise of {format_money(amount)} until {grant.ends_at:%Y-%m-%d %H:%M} UTC")


def _check_fits_cap(s: Session, actor: Actor, ws: Workspace, proj: Project, amount: int) -> None:
    if ws.cap_micros is None:
        return
    projects = list(s.scalars(select(Project.id).where(Project.workspace_id == ws.id, Project.budget_micros.is_not(None))))
    budgets = int(s.scalar(select(func.coalesce(func.sum(Project.budget_micros), 0)).where(Project.workspace_id == ws.id)) or 0)
    held = budgets + sum(raised(s, projects).values())
    if held + amount > ws.cap_micros:
        raise LimitReached(
            f"Project budgets and raises must fit inside the workspace cap of {format_money(ws.cap_micros)}: they hold {format_money(held)} now, "
            f"so a raise on `{proj.slug}` can be at most {format_money(max(ws.cap_micros - held, 0))}, not {format_money(amount)}. "
            "Raise the cap first, or deny this and ask for less.",
            denial=denial(ws.id, actor, "budget.raise", f"project:{proj.slug}", reason="over cap", cap=ws.cap_micros, held=held, asked=amount),
        )


def end_raises(s: Session, now: datetime | None = None) -> int:
    """The clock's job: each raise that has ended, audited and announced once, its project's pause brought in line.

    The raise stopped counting when it ended, whether or not this has run (every check reads
    its end against the clock); this records that it did, and pauses a project now over its
    budget. Idempotent: a raise whose end is recorded is not looked at again.
    """
    now = now or utcnow()
    due = list(
        s.scalars(select(BudgetRaise).where(BudgetRaise.ended_at.is_(None), BudgetRaise.ends_at <= now).order_by(BudgetRaise.id).with_for_update(skip_locked=True))
    )
    for grant in due:
        ws = s.get(Workspace, grant.workspace_id, with_for_update=True)  # the workspace first, as every path that changes it
        proj = s.get(Project, grant.project_id, with_for_update=True)
        grant.ended_at = now
        details = {"raise": grant.id, "amount_micros": grant.amount_micros, "ended": grant.ends_at.isoformat(), "budget_micros": proj.budget_micros, "request": grant.request_id}
        audit.record(s, workspace_id=ws.id, actor="system:clock", action="budget.raise_end", resource=f"project:{proj.slug}", details=details)
        if ws.status is WorkspaceStatus.DELETED:
            continue  # its keys are revoked and its channels hear nothing more
        reconcile_project(s, "system:clock", ws, proj, "a temporary raise ended", now)
        outbox.emit(s, ActionKind.ANNOUNCE_RAISE, workspace_id=ws.id, payload={"raise_id": grant.id, "event": "end"})
    return len(due)


@dataclass(frozen=True)
class RaiseNotice:
    """What the alerts channel is told of a raise that began or ended."""

    workspace: str
    project: str
    amount_micros: int
    ends_at: datetime
    budget_micros: int | None  # the project's budget as set
    limit_micros: int | None  # its limit in force when read: the budget and the raises still in force
    period: str
    granted_by: str
    request_id: int | None


def raise_notice(s: Session, raise_id: int, now: datetime | None = None) -> RaiseNotice:
    grant = s.get(BudgetRaise, raise_id)
    proj = s.get(Project, grant.project_id)
    ws = s.get(Workspace, grant.workspace_id)
    extra = raised(s, [proj.id], now).get(proj.id, 0)
    limit = None if proj.budget_micros is None else proj.budget_micros + extra
    return RaiseNotice(ws.slug, proj.slug, grant.amount_micros, grant.ends_at, proj.budget_micros, limit, proj.budget_period.value, grant.granted_by, grant.request_id)
