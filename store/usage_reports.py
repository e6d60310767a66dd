"""Usage reports: a period's spend split by project, member, key or model, as far as the asker's role may see.

Read from the hourly rows (store.spend_series), never by scanning the events. A Developer
sees their own keys' spend; Viewers, Billing Managers and Admins the whole workspace's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.errors import InvalidInput, NotFound, PermissionDenied
from store.models import Project, Workspace
from store.permissions import Actor, Permission, authorize, can, load_workspace, membership
from store.chart_data import PeriodSpend, period_spend
from store.spend_series import By, Slice, Window, breakdown, window
from store.types import WorkspaceStatus, utcnow


@dataclass(frozen=True)
class UsageReport:
    scope: str  # "yours" or "workspace"
    workspace_id: int
    workspace: str
    window: Window
    by: By
    total_micros: int
    rows: list[Slice]
    member_id: int | None = None  # whose keys, when the report is one member's
    project: str | None = None
    project_id: int | None = None

    @property
    def days(self) -> int:
        return max(1, round((self.window.upto - self.window.since) / timedelta(days=1)))


@dataclass(frozen=True)
class _Asked:
    """What a usage question covers, once the asker's role has been checked."""

    workspace_id: int
    workspace: str
    window: Window
    by: By
    own_only: bool
    member_id: int | None
    project: str | None
    project_id: int | None


def _asked(s: Session, actor: Actor, workspace_id: int, *, project: str | None, mine: bool, days: int | None, period: str, by: str, now: datetime) -> _Asked:
    try:
        split = By(by.strip().lower())
    except ValueError:
        raise InvalidInput(f"`{by[:20]}` is not a breakdown: use project, member, key or model.") from None
    if days is not None:
        if not 1 <= days <= 366:
            raise InvalidInput("Look back between 1 and 366 days.")
        since = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
        w = Window(f"last {days} days", since, now + timedelta(hours=1), now)
    else:
        w = window(period, now)
    ws = load_workspace(s, workspace_id)
    me = membership(s, actor, ws.id)
    own_only = mine
    if not mine:
        try:
            authorize(s, actor, ws, Permission.VIEW_ALL_USAGE, resource=f"workspace:{ws.slug}", attempted="usage.view_all")
        except PermissionDenied:
            if me is None:
                raise
            own_only = True  # a Developer asking for "usage" gets their own
    if own_only:
        me = authorize(s, actor, ws, Permission.VIEW_OWN_USAGE, resource=f"workspace:{ws.slug}", attempted="usage.view_own")
    project_id = None
    if project:
        slug = project.strip().lower()
        project_id = s.scalar(select(Project.id).where(Project.workspace_id == ws.id, Project.slug == slug))
        if project_id is None:
            raise NotFound(f"There is no project `{slug[:40]}` in `{ws.slug}`. `/ai-budget show` lists the projects.")
    member_id = me.id if own_only and me is not None else None
    return _Asked(ws.id, ws.slug, w, split, own_only, member_id, project and project.strip().lower(), project_id)


def usage_report(
    s: Session,
    actor: Actor,
    workspace_id: int,
    *,
    project: str | None = None,
    mine: bool = False,
    days: int | None = None,
    period: str = "month",
    by: str = "project",
    now: datetime | None = None,
) -> UsageReport:
    """Spend in ``period`` (or the last ``days``): one's own, or (Admin, Viewer, Billing) the whole workspace's."""
    q = _asked(s, actor, workspace_id, project=project, mine=mine, days=days, period=period, by=by, now=now or utcnow())
    rows = breakdown(s, q.workspace_id, q.window.since, q.window.until, q.by, member_id=q.member_id, project_id=q.project_id)
    return UsageReport("yours" if q.own_only else "workspace", q.workspace_id, q.workspace, q.window, q.by, sum(r.amount_micros for r in rows), rows, q.member_id, q.project, q.project_id)


def usage_chart(
    s: Session, actor: Actor, workspace_id: int, *, project: str | None = None, mine: bool = False, days: int | None = None, period: str = "month", by: str = "project", now: datetime | None = None
) -> tuple[str, PeriodSpend] | None:
    """The figures of the chart an /ai-usage asked for (and the workspace's slug), as the asker stands now.

    None when they no longer see that spend — left, or lost the role that showed them the
    whole workspace — and then nothing is audited: they asked nothing now.
    """
    standing = viewpoint(s, actor, workspace_id)
    if standing is None or (not mine and not standing[0]):
        return None
    q = _asked(s, actor, workspace_id, project=project, mine=mine, days=days, period=period, by=by, now=now or utcnow())
    return q.workspace, period_spend(s, q.workspace_id, q.window, q.by, member_id=q.member_id, project_id=q.project_id)


def viewpoint(s: Session, actor: Actor, workspace_id: int) -> tuple[bool, int] | None:
    """(sees the whole workspace's spend, member id) for an active member of a live workspace, else None.

    For work done later on someone's behalf (a chart a worker draws): it reads their standing
    as it is now and audits nothing — they asked nothing now, so there is nothing to deny.
    """
    ws = s.get(Workspace, workspace_id)
    if ws is None or ws.status is WorkspaceStatus.DELETED:
        return None
    me = membership(s, actor, ws.id)
    if me is None:
        return None
    return can(me.role, Permission.VIEW_ALL_USAGE), me.id
