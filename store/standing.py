"""Whether a key may be used, derived from the facts in one place.

A key's standing is never kept as a flag that each path sets and clears: it follows from
the facts — the key's status and its lease (``expires_at``), its owner's role and membership, its project's
manual pause and budget against this period's spend, its workspace's cap against this
period's spend and its credit pool. `/v1/authz`, provisioning, the provider's enable and
disable, and every path that changes one of those facts ask these functions.

The stored pause flags of projects and workspaces (``status``, ``paused_reason``) are what
was last *announced*; ``reconcile_project`` and ``reconcile_workspace`` bring them in line
with what the facts say, emitting the pause or resume only when the two differ; the
``*_row`` functions at the end write those flags and announce the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.models import ApiKey, Member, Project, Workspace
from store.models_raises import BudgetRaise
from store.money import format_money
from store.permissions import MATRIX, Permission
from store.totals import spent
from store.types import ActionKind, KeyStatus, MemberStatus, ProjectStatus, Role, Scope, WorkspaceStatus, utcnow


def may_hold_keys(role: Role) -> bool:
    """Only the roles that may create keys have API and model access (the seed's matrix)."""
    return role in MATRIX[Permission.CREATE_OWN_KEY].allowed


def workspace_hold(cap_micros: int | None, cap_spent: int, funded: bool, balance_micros: int) -> str | None:
    """What holds a workspace's spending back: "cap", "credit" or nothing.

    The cap comes first: a top-up does not lift it, so it is the one to name.
    """
    if cap_micros is not None and cap_spent >= cap_micros:
        return "cap"
    if funded and balance_micros <= 0:
        return "credit"
    return None


def project_hold(manual_reason: str | None, budget_micros: int | None, spent_micros: int) -> str | None:
    """What holds a project back: "manual" (an Admin paused it), "budget" (spent ≥ budget) or nothing."""
    if manual_reason is not None:
        return "manual"
    if budget_micros is not None and spent_micros >= budget_micros:
        return "budget"
    return None


@dataclass(frozen=True)
class KeyStanding:
    """``reason`` is None for a key in good standing, else a short word a gateway hears."""

    reason: str | None
    message: str = ""

    @property
    def usable(self) -> bool:
        return self.reason is None


def key_itself(status: KeyStatus, owner_status: MemberStatus, owner_role: Role, workspace_deleted: bool) -> KeyStanding:
    """The part of the standing that no money or network changes: the key and its owner."""
    if status is KeyStatus.REVOKED:
        return KeyStanding("revoked", "This key is revoked.")
    if status is KeyStatus.DISABLED:
        return KeyStanding("disabled", "This key is disabled.")
    if owner_status is MemberStatus.SUSPENDED:
        return KeyStanding("owner_suspended", "This key's owner's Slack account was deactivated; an Admin can restore them.")
    if owner_status is not MemberStatus.ACTIVE:
        return KeyStanding("owner_removed", "This key's owner is no longer a member of the workspace.")
    if workspace_deleted:
        return KeyStanding("workspace_deleted", "This key's workspace was deleted.")
    if not may_hold_keys(owner_role):
        return KeyStanding("owner_role", f"This key's owner is now a {owner_role.title}, a role without API access.")
    return KeyStanding(None)


def lease_standing(expires_at: datetime | None, now: datetime) -> KeyStanding:
    """A key's lease on time: from its end on (that instant included), the key is expired."""
    if expires_at is not None and expires_at <= now:
        return KeyStanding("expired", f"This key's lease ended at {expires_at:%Y-%m-%d %H:%M} UTC; ask for a new key.")
    return KeyStanding(None)


def key_standing(itself: KeyStanding, expires_at: datetime | None, now: datetime) -> KeyStanding:
    """The key's own standing: what ``key_itself`` says first (a revoked key is revoked, not expired),
    then its lease. ``itself`` may come from a cache; the lease is always judged at ``now``."""
    return itself if not itself.usable else lease_standing(expires_at, now)


# -- facts read from the store ---------------------------------------------------------------


def workspace_hold_now(s: Session, ws: Workspace, now: datetime | None = None) -> str | None:
    cap_spent = spent(s, Scope.WORKSPACE, ws.id, ws.cap_period, now) if ws.cap_micros is not None else 0
    return workspace_hold(ws.cap_micros, cap_spent, ws.credit_funded, ws.credit_balance_micros)


def raised(s: Session, project_ids: list[int], now: datetime | None = None) -> dict[int, int]:
    """What the temporary raises in force at ``now`` add to each project's budget (absent: nothing).

    A raise is a fact with an end, read against the clock: it stops counting the moment it
    ends, whether or not the clock has announced that yet (store.raises.end_raises).
    """
    if not project_ids:
        return {}
    now = now or utcnow()
    rows = s.execute(
        select(BudgetRaise.project_id, func.sum(BudgetRaise.amount_micros))
        .where(BudgetRaise.project_id.in_(project_ids), BudgetRaise.ends_at > now, BudgetRaise.starts_at <= now)
        .group_by(BudgetRaise.project_id)
    )
    return {project_id: int(total) for project_id, total in rows}


def effective_budget(s: Session, proj: Project, now: datetime | None = None) -> int | None:
    """The limit a project's spend is held to now: its budget plus the raises in force (None: no budget, no limit)."""
    if proj.budget_micros is None:
        return None
    return proj.budget_micros + raised(s, [proj.id], now).get(proj.id, 0)


def project_hold_now(s: Session, proj: Project, now: datetime | None = None) -> str | None:
    manual = proj.paused_reason if proj.status is ProjectStatus.PAUSED and proj.paused_by == "manual" else None
    limit = proj.budget_micros
    used = spent(s, Scope.PROJECT, proj.id, proj.budget_period, now) if limit is not None else 0
    if limit is not None and used >= limit:
        # Raises only add, so they matter only once the budget as set is spent: most checks
        # (every /v1/authz cache miss) read no raise at all.
        limit = effective_budget(s, proj, now)
    return project_hold(manual, limit, used)


def key_enabled(s: Session, key: ApiKey, now: datetime | None = None) -> bool:
    """Should the provider let this key spend now? The same facts as `/v1/authz`, less the caller's address."""
    now = now or utcnow()
    owner = s.get(Member, key.member_id)
    ws = s.get(Workspace, key.workspace_id)
    itself = key_itself(key.status, owner.status, owner.role, ws.status is WorkspaceStatus.DELETED)
    if not key_standing(itself, key.expires_at, now).usable:
        return False
    if workspace_hold_now(s, ws, now) is not None:
        return False
    return key.project_id is None or project_hold_now(s, s.get(Project, key.project_id), now) is None


# -- bringing the announced flags in line with the facts --------------------------------------


def reconcile_workspace(s: Session, actor_label: str, ws: Workspace, why: str, now: datetime | None = None) -> str | None:
    """Pause, resume or re-label the workspace as its facts say; returns the hold in force."""
    if ws.status is WorkspaceStatus.DELETED:
        return None
    want = workspace_hold_now(s, ws, now)
    have = ws.paused_reason if ws.status is WorkspaceStatus.PAUSED else None
    if want == have:
        return want
    if want is None:
        resume_workspace_row(s, actor_label, ws, why)
    elif have is None:
        pause_workspace_row(s, actor_label, ws, want)
    else:
        relabel_workspace_pause(s, actor_label, ws, want)
    return want


def reconcile_project(s: Session, actor_label: str, ws: Workspace, proj: Project, why: str, now: datetime | None = None) -> str | None:
    """Pause or resume a project for its budget as its spend says (a manual pause is left to an Admin)."""
    want = project_hold_now(s, proj, now)
    have = proj.paused_by if proj.status is ProjectStatus.PAUSED else None
    if want == have or have == "manual":
        return have
    if want is None:
        resume_project_row(s, actor_label, ws, proj, why)
    else:
        pause_project_row(s, actor_label, ws, proj, budget_spent_reason(proj.budget_micros, effective_budget(s, proj, now)), by="budget")
    return want


def budget_spent_reason(budget: int, limit: int) -> str:
    """Why a project is paused for its budget, naming the raises when they were part of the limit."""
    if limit == budget:
        return f"budget of {format_money(budget)} spent"
    return f"budget of {format_money(budget)} and raises of {format_money(limit - budget)} spent"


# -- announcing a pause or a resume: the stored flags, audited, and the outbox told -------------


def pause_project_row(s: Session, actor_label: str, ws: Workspace, proj: Project, reason: str, *, by: str) -> bool:
    """Pause one project (idempotent). Returns False when it was already paused."""
    if proj.status is ProjectStatus.PAUSED:
        return False
    proj.status, proj.paused_reason, proj.paused_by = ProjectStatus.PAUSED, reason, by
    audit.record(s, workspace_id=ws.id, actor=actor_label, action="project.pause", resource=f"project:{proj.slug}", details={"reason": reason, "by": by})
    outbox.emit(s, ActionKind.PAUSE_PROJECT, workspace_id=ws.id, payload={"project_id": proj.id, "reason": reason})
    return True


def resume_project_row(s: Session, actor_label: str, ws: Workspace, proj: Project, why: str) -> None:
    proj.status, proj.paused_reason, proj.paused_by = ProjectStatus.ACTIVE, None, None
    audit.record(s, workspace_id=ws.id, actor=actor_label, action="project.resume", resource=f"project:{proj.slug}", details={"why": why})
    outbox.emit(s, ActionKind.RESUME_PROJECT, workspace_id=ws.id, payload={"project_id": proj.id, "why": why})


def pause_workspace_row(s: Session, actor_label: str, ws: Workspace, reason: str) -> bool:
    """``reason`` is "cap" or "credit": what has to change for the workspace to resume."""
    if ws.status is not WorkspaceStatus.ACTIVE:
        return False
    ws.status, ws.paused_reason = WorkspaceStatus.PAUSED, reason
    audit.record(s, workspace_id=ws.id, actor=actor_label, action="workspace.pause", resource=f"workspace:{ws.slug}", details={"reason": reason})
    outbox.emit(s, ActionKind.PAUSE_WORKSPACE, workspace_id=ws.id, payload={"workspace_id": ws.id, "reason": reason})
    return True


def relabel_workspace_pause(s: Session, actor_label: str, ws: Workspace, reason: str) -> None:
    """A paused workspace now held back by the other thing (the cap, or the pool): say so."""
    ws.paused_reason = reason
    audit.record(s, workspace_id=ws.id, actor=actor_label, action="workspace.pause", resource=f"workspace:{ws.slug}", details={"reason": reason})
    outbox.emit(s, ActionKind.PAUSE_WORKSPACE, workspace_id=ws.id, payload={"workspace_id": ws.id, "reason": reason})


def resume_workspace_row(s: Session, actor_label: str, ws: Workspace, why: str) -> None:
    ws.status, ws.paused_reason = WorkspaceStatus.ACTIVE, None
    audit.record(s, workspace_id=ws.id, actor=actor_label, action="workspace.resume", resource=f"workspace:{ws.slug}", details={"why": why})
    outbox.emit(s, ActionKind.RESUME_WORKSPACE, workspace_id=ws.id, payload={"workspace_id": ws.id, "why": why})
