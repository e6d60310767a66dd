"""App Home's chart: which drawing to show a person, and asking a worker for this hour's.

A chart is drawn at most once an hour for each workspace and viewpoint (the whole
workspace's spend, or one member's own keys'), uploaded as a private file whose id is
kept under the chart's ref in slack_messages; the Home shows the latest one drawn this
month while the next is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import outbox
from store.chart_data import PeriodSpend, period_spend
from store.messages import POSTING
from store.models import Action, SlackMessage
from store.overview import Seat
from store.spend_series import By, window
from store.types import ActionKind, ActionStatus


@dataclass(frozen=True)
class HomeChart:
    file_id: str
    drawn_hour: int  # the UTC hour it was drawn in
    data: PeriodSpend  # what it shows, as of now: for its alt text


def chart_ref(seat: Seat, at: datetime) -> str:
    """The ref of a seat's chart drawn in the hour of ``at``: the whole workspace's, or the member's own keys'."""
    whose = "all" if seat.sees_all else f"m{seat.member_id}"
    return f"home-chart:{seat.workspace_id}:{whose}:{at:%Y%m%d%H}"


def home_charts(s: Session, team_id: str, user_id: str, seats: list[Seat], now: datetime) -> dict[int, HomeChart]:
    """Each seat's latest chart drawn this month; this hour's asked for where it is missing and not already asked for."""
    out = {}
    for seat in seats:
        ref = chart_ref(seat, now)
        month = ref.rsplit(":", 1)[0] + f":{now:%Y%m}"
        drawn = s.scalars(select(SlackMessage).where(SlackMessage.ref.like(month + "%"), SlackMessage.ts != POSTING).order_by(SlackMessage.ref.desc()).limit(1)).first()
        if drawn is None or drawn.ref != ref:
            waiting = s.scalars(select(Action.payload).where(Action.kind == ActionKind.HOME_CHART.value, Action.workspace_id == seat.workspace_id, Action.status == ActionStatus.PENDING))
            if not any(p.get("ref") == ref for p in waiting):
                outbox.emit(s, ActionKind.HOME_CHART, workspace_id=seat.workspace_id, payload={"team": team_id, "user": user_id, "ref": ref, "whole": seat.sees_all})
        if drawn is not None:
            data = period_spend(s, seat.workspace_id, window("month", now), By.PROJECT, member_id=None if seat.sees_all else seat.member_id)
            out[seat.workspace_id] = HomeChart(drawn.ts, int(drawn.ref[-2:]), data)
    return out
