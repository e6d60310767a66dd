"""What a spike alert shows: who spiked, how far the project's budget is, and the hours for its chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from store.models import ApiKey, Member, Project, Workspace
from store.spend_series import hourly
from store.spikes import HOUR, WEEK, lineage, muted_keys, usual_hour
from store.totals import spent
from store.types import Period, Scope

#: the hours a spike's chart shows, the flagged one last
CHART_HOURS = 48


@dataclass(frozen=True)
class SpikeNotice:
    workspace: str
    channel: str | None
    scope: str  # "key" or "project"
    hour: datetime  # the hour that spiked (its start, UTC)
    window: str  # "hour" or "day"
    spent_hour: int
    usual_hour: int
    spent_day: int
    usual_day: int
    multiple: float
    key_id: int  # the key named (and muted by the buttons): the scope's, or the project's biggest spender
    key_name: str
    key_owner: str | None  # their Slack user id
    project: str | None  # the project's slug (the key's project for a key)
    budget_micros: int | None  # the project's budget, if it has one
    budget_period: Period | None
    budget_spent_micros: int  # this period's spend against it
    # the chart: the last CHART_HOURS hours of the scope, and the usual for each
    hours: list[datetime]
    spent: list[int]
    usual: list[int]


def spike_notice(s: Session, workspace_id: int, p: dict[str, Any], weeks: int) -> SpikeNotice:
    """The alert's facts from the POST_SPIKE payload, read as they stand now (names, budget) and as they were (the hours)."""
    ws = s.get(Workspace, workspace_id)
    key = s.get(ApiKey, p["key_id"])
    owner = s.get(Member, key.member_id)
    hour = datetime.fromisoformat(p["hour"])
    project_id = p["scope_id"] if p["scope"] == Scope.PROJECT.value else key.project_id
    project = s.get(Project, project_id) if project_id is not None else None
    budget_spent = spent(s, Scope.PROJECT, project.id, project.budget_period, hour + HOUR) if project is not None and project.budget_micros is not None else 0
    hours, amounts, usual = chart_series(s, workspace_id, Scope(p["scope"]), p["scope_id"], hour, weeks)
    return SpikeNotice(
        ws.slug, ws.alerts_channel, p["scope"], hour, p["window"], p["spent_hour"], p["usual_hour"], p["spent_day"], p["usual_day"], p["multiple"],
        key.id, key.name, owner.slack_user_id if owner else None, project.slug if project else None,
        project.budget_micros if project else None, project.budget_period if project and project.budget_micros is not None else None, budget_spent,
        hours, amounts, usual,
    )  # fmt: skip


def chart_series(s: Session, workspace_id: int, scope: Scope, scope_id: int, hour: datetime, weeks: int) -> tuple[list[datetime], list[int], list[int]]:
    """The CHART_HOURS hours up to ``hour``: what the scope spent in each, and its usual for that hour of the week."""
    first = hour - HOUR * (CHART_HOURS - 1)
    # What the check judged, drawn: a rotated key's hours are its successor's, and a project's
    # leave out the keys muted when it was checked.
    newest = lineage(s, workspace_id)
    muted = {newest(k) for k in muted_keys(s, workspace_id, hour + HOUR)}
    series: dict[datetime, int] = {}
    for at, key_id, project_id, amount in hourly(s, workspace_id, first - WEEK * weeks, hour + HOUR):
        key_id = newest(key_id)
        if (key_id == scope_id) if scope is Scope.KEY else (project_id == scope_id and key_id not in muted):
            series[at] = series.get(at, 0) + amount
    hours = [first + HOUR * n for n in range(CHART_HOURS)]
    return hours, [series.get(h, 0) for h in hours], [usual_hour(series, h, weeks) for h in hours]
