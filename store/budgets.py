"""Projects, their budgets, and the workspace spending cap; pausing and resuming."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import LIST_PROJECTS, Conflict, InvalidInput, LimitReached, NotFound
from store.models import ApiKey, Project, Request, Workspace
from store.money import format_money, share_percent
from store.periods import parse_period
from store.permissions import Actor, Permission, authorize, can, denial, load_workspace
from store.requests import open_request, requester_member
from store.standing import effective_budget, pause_project_row, raised, reconcile_project, reconcile_workspace, resume_project_row
from store.totals import current_totals, spent
from store.types import ActionKind, KeyStatus, Period, ProjectStatus, RequestKind, Scope, WorkspaceStatus, utcnow
from store.workspaces import check_slug


def find_project(s: Session, ws: Workspace, slug: str, *, lock: bool = False) -> Project:
    stmt = select(Project).where(Project.workspace_id == ws.id, Project.slug == slug.strip().lower())
    if lock:
        stmt = stmt.with_for_update()
    proj = s.scalars(stmt).one_or_none()
    if proj is None:
        raise NotFound(f"`{ws.slug}` has no project called `{slug[:40].replace('`', '')}`.", see=LIST_PROJECTS)
    return proj


def _budgets_total(s: Session, ws: Workspace, *, except_id: int | None = None) -> tuple[int, int]:
    """What the projects may spend now: their budgets (but ``except_id``'s, which the caller adds), and the raises in force.

    A temporary raise holds room in the cap while it lasts, as a budget does (store.raises).
    """
    stmt = select(func.coalesce(func.sum(Project.budget_micros), 0)).where(Project.workspace_id == ws.id, Project.budget_micros.is_not(None))
    if except_id is not None:
        stmt = stmt.where(Project.id != except_id)
    ids = list(s.scalars(select(Project.id).where(Project.workspace_id == ws.id, Project.budget_micros.is_not(None))))
    return int(s.scalar(stmt) or 0), sum(raised(s, ids).values())


def _with_raises(raises: int) -> str:
    return f" (with {format_money(raises)} of temporary raises)" if raises else ""


def _check_fits(s: Session, actor: Actor, ws: Workspace, slug: str, budget: int | None, *, except_id: int | None = None) -> None:
    if budget is None or ws.cap_micros is None:
        return
    budgets, raises = _budgets_total(s, ws, except_id=except_id)
    others = budgets + raises
    if others + budget > ws.cap_micros:
        room = max(ws.cap_micros - others, 0)
        raise LimitReached(
            f"Project budgets must fit inside the workspace cap of {format_money(ws.cap_micros)}: the other projects "
            f"already hold {format_money(others)}{_with_raises(raises)}, so `{slug}` can have at most {format_money(room)}, not {format_money(budget)}. "
            "Raise the cap first or lower another project's budget.",
            denial=denial(ws.id, actor, "budget.set", f"project:{slug}", reason="over cap", cap=ws.cap_micros, others=others, asked=budget),
        )


def create_project(
    s: Session, actor: Actor, workspace_id: int, slug: str, *, budget_micros: int | None = None, period: Period | str = Period.MONTHLY
) -> Project:
    slug = check_slug(slug, "project")
    period = parse_period(period)
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.CONFIGURE, resource=f"project:{slug}", attempted="project.create")
    if s.scalars(select(Project.id).where(Project.workspace_id == ws.id, Project.slug == slug)).first():
        raise Conflict(f"`{ws.slug}` already has a project called `{slug}`.")
    _check_fits(s, actor, ws, slug, budget_micros)
    proj = Project(workspace_id=ws.id, slug=slug, budget_micros=budget_micros, budget_period=period)
    s.add(proj)
    s.flush()
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="project.create", resource=f"project:{slug}", details={"budget_micros": budget_micros, "period": period.value})
    return proj


def list_projects(s: Session, actor: Actor, workspace_id: int) -> list[Project]:
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.VIEW_OWN_USAGE, resource=f"workspace:{ws.slug}", attempted="project.list")
    return list(s.scalars(select(Project).where(Project.workspace_id == ws.id).order_by(Project.slug)))


def set_project_budget(
    s: Session, actor: Actor, workspace_id: int, slug: str, budget_micros: int | None, period: Period | str | None = None
) -> Project:
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.CONFIGURE, resource=f"project:{slug}", attempted="budget.set")
    return apply_budget(s, actor, ws, find_project(s, ws, slug, lock=True), budget_micros, parse_period(period) if period else None)


def apply_budget(s: Session, actor: Actor, ws: Workspace, proj: Project, budget: int | None, period: Period | None, *, via_request: int | None = None) -> Project:
    """Set a budget; pause or resume at once according to what has been spent this period."""
    _check_fits(s, actor, ws, proj.slug, budget, except_id=proj.id)
    old = {"budget_micros": proj.budget_micros, "period": proj.budget_period.value}
    proj.budget_micros = budget
    if period is not None:
        proj.budget_period = period
    details = {"from": old, "to": {"budget_micros": budget, "period": proj.budget_period.value}}
    if via_request:
        details["request"] = via_request
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="budget.set", resource=f"project:{proj.slug}", details=details)
    outbox.emit(s, ActionKind.APPLY_BUDGET, workspace_id=ws.id, payload={"project_id": proj.id})
    reconcile_project(s, actor.label, ws, proj, "budget raised above this period's spend")
    return proj


def request_budget_change(
    s: Session, actor: Actor, workspace_id: int, slug: str, budget_micros: int, period: Period | str | None = None, *, reason: str | None = None
) -> Request:
    ws = load_workspace(s, workspace_id)
    me = requester_member(s, actor, ws, Permission.CONFIGURE, "request.budget_change")
    proj = find_project(s, ws, slug)
    if not (reason or "").strip():
        raise InvalidInput('Say why the budget should change: --reason "…". Admins decide on it.')
    payload = {"project_id": proj.id, "project": proj.slug, "budget_micros": budget_micros, "period": parse_period(period).value if period else None, "current_micros": proj.budget_micros}
    return open_request(s, ws, me, RequestKind.BUDGET_CHANGE, payload, reason=reason)


def apply_budget_request(s: Session, actor: Actor, ws: Workspace, req: Request) -> None:
    proj = s.scalars(select(Project).where(Project.id == req.payload["project_id"]).with_for_update()).one()
    period = Period(req.payload["period"]) if req.payload.get("period") else None
    apply_budget(s, actor, ws, proj, req.payload["budget_micros"], period, via_request=req.id)


def set_workspace_cap(s: Session, actor: Actor, workspace_id: int, cap_micros: int | None, period: Period | str | None = None) -> Workspace:
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.CONFIGURE, resource=f"workspace:{ws.slug}", attempted="cap.set")
    return apply_cap(s, actor, ws, cap_micros, parse_period(period) if period else None)


def apply_cap(s: Session, actor: Actor, ws: Workspace, cap: int | None, period: Period | None, *, via_request: int | None = None) -> Workspace:
    if cap is not None:
        budgets, raises = _budgets_total(s, ws)
        held = budgets + raises
        if held > cap:
            biggest = s.execute(
                select(Project.slug, Project.budget_micros).where(Project.workspace_id == ws.id, Project.budget_micros.is_not(None)).order_by(Project.budget_micros.desc()).limit(3)
            ).all()
            listed = ", ".join(f"{slug} {format_money(b)}" for slug, b in biggest)
            raise LimitReached(
                f"The project budgets add up to {format_money(held)}{_with_raises(raises)}, more than the cap of {format_money(cap)} you asked for. "
                f"Lower some project budgets first ({listed}).",
                denial=denial(ws.id, actor, "cap.set", f"workspace:{ws.slug}", reason="below budgets", budgets=held, asked=cap),
            )
    old = {"cap_micros": ws.cap_micros, "period": ws.cap_period.value}
    ws.cap_micros = cap
    if period is not None:
        ws.cap_period = period
    details = {"from": old, "to": {"cap_micros": cap, "period": ws.cap_period.value}}
    if via_request:
        details["request"] = via_request
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="cap.set", resource=f"workspace:{ws.slug}", details=details)
    outbox.emit(s, ActionKind.APPLY_CAP, workspace_id=ws.id, payload={"workspace_id": ws.id})
    reconcile_workspace(s, actor.label, ws, "cap raised above this period's spend")
    return ws


def request_cap_change(s: Session, actor: Actor, workspace_id: int, cap_micros: int, period: Period | str | None = None, *, reason: str | None = None) -> Request:
    ws = load_workspace(s, workspace_id)
    me = requester_member(s, actor, ws, Permission.CONFIGURE, "request.cap_change")
    if not (reason or "").strip():
        raise InvalidInput('Say why the cap should change: --reason "…". Admins decide on it.')
    payload = {"cap_micros": cap_micros, "period": parse_period(period).value if period else None, "current_micros": ws.cap_micros}
    return open_request(s, ws, me, RequestKind.CAP_CHANGE, payload, reason=reason)


def apply_cap_request(s: Session, actor: Actor, ws: Workspace, req: Request) -> None:
    period = Period(req.payload["period"]) if req.payload.get("period") else None
    apply_cap(s, actor, ws, req.payload["cap_micros"], period, via_request=req.id)


def pause_project(s: Session, actor: Actor, workspace_id: int, slug: str, reason: str) -> Project:
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.CONFIGURE, resource=f"project:{slug}", attempted="project.pause")
    proj = find_project(s, ws, slug, lock=True)
    if proj.status is ProjectStatus.PAUSED:
        raise Conflict(f"`{proj.slug}` is already paused: “{proj.paused_reason or 'no reason given'}”.")
    if not (reason or "").strip():
        raise InvalidInput("Say why the project is paused; its members will read it.")
    pause_project_row(s, actor.label, ws, proj, reason.strip()[:200], by="manual")
    return proj


def resume_project(s: Session, actor: Actor, workspace_id: int, slug: str) -> Project:
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.CONFIGURE, resource=f"project:{slug}", attempted="project.resume")
    proj = find_project(s, ws, slug, lock=True)
    if proj.status is ProjectStatus.ACTIVE:
        raise Conflict(f"`{proj.slug}` is not paused.")
    limit = effective_budget(s, proj)
    if limit is not None and spent(s, Scope.PROJECT, proj.id, proj.budget_period) >= limit:
        raise LimitReached(
            f"`{proj.slug}` has spent its whole budget of {format_money(limit)} this period; raise the budget to resume it.",
            denial=denial(ws.id, actor, "project.resume", f"project:{proj.slug}", reason="budget spent"),
        )
    resume_project_row(s, actor.label, ws, proj, "resumed by an admin")
    return proj


@dataclass(frozen=True)
class BudgetLine:
    kind: str  # project | cap | credit
    name: str
    spent_micros: int
    limit_micros: int | None  # the limit in force: a project's budget and its raises
    period: Period
    paused: bool
    paused_reason: str | None
    raised_micros: int = 0  # what temporary raises add to ``limit_micros`` now

    @property
    def share(self) -> int | None:
        return None if self.limit_micros is None else share_percent(self.spent_micros, self.limit_micros)


def budget_overview(s: Session, actor: Actor, workspace_id: int, now: datetime | None = None) -> list[BudgetLine]:
    """Every budget of a workspace against this period's spend, paused ones first.

    Reads one running total per budget: its cost does not grow with usage history.
    """
    ws = load_workspace(s, workspace_id)
    me = authorize(s, actor, ws, Permission.VIEW_OWN_USAGE, resource=f"workspace:{ws.slug}", attempted="budget.show")
    lines = evaluate_budgets(s, ws, now)
    if me is None or can(me.role, Permission.VIEW_ALL_USAGE):
        return lines
    # A Developer sees the budgets of the projects they hold keys in; the workspace's spend is not theirs to see.
    theirs = set(s.scalars(select(Project.slug).join(ApiKey, ApiKey.project_id == Project.id).where(ApiKey.member_id == me.id, ApiKey.status != KeyStatus.REVOKED)))
    return [line for line in lines if line.kind == "project" and line.name in theirs]


def evaluate_budgets(s: Session, ws: Workspace, now: datetime | None = None) -> list[BudgetLine]:
    now = now or utcnow()
    projects = list(s.scalars(select(Project).where(Project.workspace_id == ws.id)))
    totals = current_totals(s, Scope.PROJECT, [(p.id, p.budget_period) for p in projects], now)
    extra = raised(s, [p.id for p in projects if p.budget_micros is not None], now)
    lines = [
        BudgetLine(
            "project", p.slug, totals.get((p.id, p.budget_period), 0), None if p.budget_micros is None else p.budget_micros + extra.get(p.id, 0),
            p.budget_period, p.status is ProjectStatus.PAUSED, p.paused_reason, extra.get(p.id, 0),
        )
        for p in projects
    ]
    cap_spent = spent(s, Scope.WORKSPACE, ws.id, ws.cap_period, now)
    lines.append(BudgetLine("cap", ws.slug, cap_spent, ws.cap_micros, ws.cap_period, ws.status is WorkspaceStatus.PAUSED and ws.paused_reason == "cap", ws.paused_reason))
    lines.sort(key=lambda line: (not line.paused, line.kind != "cap", line.name))
    return lines


def budget_project(s: Session, actor: Actor, workspace_id: int, slug: str, budget_micros: int | None, period: Period | str | None = None) -> tuple[Project, bool]:
    """Set a project's budget; a project not there yet is created with it. ``(project, created)``."""
    try:
        return set_project_budget(s, actor, workspace_id, slug, budget_micros, period), False
    except NotFound:  # raised before anything is written: the same transaction goes on to create it
        return create_project(s, actor, workspace_id, slug, budget_micros=budget_micros, period=period or Period.MONTHLY), True


@dataclass(frozen=True)
class CapChange:
    """A cap set at once (``request_id`` None), or asked for: a change given a reason goes to the Admins."""

    workspace: str
    cap_micros: int | None
    period: Period | None
    request_id: int | None = None


def change_cap(s: Session, actor: Actor, workspace_id: int, cap_micros: int | None, period: Period | str | None = None, *, reason: str | None = None) -> CapChange:
    if reason:
        req = request_cap_change(s, actor, workspace_id, cap_micros, period, reason=reason)
        return CapChange(load_workspace(s, workspace_id).slug, cap_micros, parse_period(period) if period else None, req.id)
    ws = set_workspace_cap(s, actor, workspace_id, cap_micros, period)
    return CapChange(ws.slug, ws.cap_micros, ws.cap_period)
