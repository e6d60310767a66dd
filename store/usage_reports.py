"""Usage reports: spend over the last days, by key, member and project."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.errors import InvalidInput, PermissionDenied
from store.models import ApiKey, Member, Project, UsageEvent
from store.permissions import Actor, Permission, authorize, load_workspace, membership
from store.types import utcnow


@dataclass(frozen=True)
class UsageRow:
    label: str
    amount_micros: int
    events: int


@dataclass(frozen=True)
class UsageReport:
    scope: str
    days: int
    total_micros: int
    rows: list[UsageRow]


def usage_report(s: Session, actor: Actor, workspace_id: int, *, project: str | None = None, mine: bool = False, days: int = 30) -> UsageReport:
    """Spend over the last ``days``: one's own, or (Admin, Viewer, Billing) the whole workspace's."""
    if not 1 <= days <= 366:
        raise InvalidInput("Look back between 1 and 366 days.")
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
    since = utcnow() - timedelta(days=days)
    stmt = select(ApiKey.name, Member.slack_user_id, Member.email, Project.slug, func.sum(UsageEvent.amount_micros), func.count()).select_from(UsageEvent)
    stmt = stmt.join(ApiKey, ApiKey.id == UsageEvent.key_id).join(Member, Member.id == ApiKey.member_id).outerjoin(Project, Project.id == UsageEvent.project_id)
    stmt = stmt.where(UsageEvent.workspace_id == ws.id, UsageEvent.occurred_at >= since)
    if own_only and me is not None:
        stmt = stmt.where(ApiKey.member_id == me.id)
    if project:
        stmt = stmt.where(Project.slug == project.strip().lower())
    stmt = stmt.group_by(ApiKey.name, Member.slack_user_id, Member.email, Project.slug).order_by(func.sum(UsageEvent.amount_micros).desc())
    rows = [
        UsageRow(f"{key} ({slack or email}) · {proj or 'no project'}", int(total or 0), int(n))
        for key, slack, email, proj, total, n in s.execute(stmt)
    ]
    return UsageReport("yours" if own_only else "workspace", days, sum(r.amount_micros for r in rows), rows)
