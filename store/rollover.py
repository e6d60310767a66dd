"""Period rollover: at a new budget or cap period, what the spent one paused resumes."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import outbox
from store.models import Project, Workspace
from store.standing import reconcile_project, reconcile_workspace
from store.types import ActionKind, ProjectStatus, WorkspaceStatus, utcnow


def roll_over_periods(s: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """New period: what a spent budget paused resumes once this period's spend is under it.

    Totals need no reset (they are keyed by period start) and alerts re-arm the same way.
    """
    now = now or utcnow()
    resumed: dict[int, list[str]] = defaultdict(list)

    for proj in s.scalars(select(Project).where(Project.status == ProjectStatus.PAUSED, Project.paused_by == "budget").with_for_update(skip_locked=True)):
        ws = s.get(Workspace, proj.workspace_id)
        if reconcile_project(s, "system:clock", ws, proj, "a new budget period began", now) is None:
            resumed[ws.id].append(f"project `{proj.slug}`")
    for ws in s.scalars(select(Workspace).where(Workspace.status == WorkspaceStatus.PAUSED, Workspace.paused_reason == "cap").with_for_update(skip_locked=True)):
        # A new cap period lifts the cap, not an empty pool: the workspace then stays paused for credit.
        if reconcile_workspace(s, "system:clock", ws, "a new cap period began", now) is None:
            resumed[ws.id].append("the workspace cap")
    announced = []
    for workspace_id, what in resumed.items():
        outbox.emit(s, ActionKind.ANNOUNCE_ROLLOVER, workspace_id=workspace_id, payload={"resumed": what})
        announced.append({"workspace_id": workspace_id, "resumed": what})
    return announced
