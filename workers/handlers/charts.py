"""Charts drawn off the request path: an /ai-usage breakdown's, sent to the asker's DM, and App Home's.

Drawing takes a few hundred milliseconds, longer than Slack gives a command or an event,
so the web process asks and a worker draws. Each is uploaded once under its ref; the
figures are read again here, with the asker's role as it is now.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.chart_text import describe_spend, spend_chart
from bot.charts import render_spend
from bot.context import Asker
from bot.home import home_view
from store import outbox, usage_reports
from store.chart_data import period_spend
from store.errors import DomainError
from store.spend_series import By, window
from store.outbox import Claimed
from store.permissions import Actor
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def usage_chart(rt: Runtime, a: Claimed) -> None:
    p = a.payload
    try:
        report = rt.db.run(usage_reports.usage_report, Actor.slack(p["user"]), a.workspace_id, project=p.get("project"), mine=p.get("mine", False), days=p.get("days"), period=p.get("period") or "month", by=p.get("by", "project"))
    except DomainError as exc:  # the asker left, or lost the role, since asking: nothing to draw for them
        log.info("usage chart for %s not drawn: %s", p["user"], exc)
        rt.db.run(outbox.complete, a.id)
        return
    data = rt.db.run(period_spend, report.workspace_id, report.window, report.by, member_id=report.member_id, project_id=report.project_id)
    if rt.slack is not None:
        chart = spend_chart(data)
        png = render_spend(chart)
        rt.slack.upload_dm(f"usage-chart:{a.id}", [p["user"]], filename=f"purser-{report.workspace}-{report.window.since:%Y-%m-%d}.png", content=png, alt_text=describe_spend(chart), title=data.title)
    rt.db.run(outbox.complete, a.id)


def home_chart(rt: Runtime, a: Claimed) -> None:
    """This hour's chart for one person's App Home (uploaded privately, shown by its file id), then the Home again."""
    p = a.payload
    if rt.slack is None:
        rt.db.run(outbox.complete, a.id)
        return
    asker = Asker(p["team"], p["user"])
    report = rt.db.run(usage_reports.usage_report, asker.actor, a.workspace_id, period="month", by="project")
    data = rt.db.run(period_spend, report.workspace_id, report.window, report.by, member_id=report.member_id)
    chart = spend_chart(data)
    rt.slack.upload(p["ref"], None, filename=f"purser-{report.workspace}-home.png", content=render_spend(chart), alt_text=describe_spend(chart), title=data.title)
    rt.slack.client.views_publish(user_id=asker.user_id, view=home_view(rt.db, asker))
    rt.db.run(outbox.complete, a.id)


def post_week_chart(rt: Runtime, workspace_id: int, channel: str, thread_ts: str, ref: str, until: datetime) -> None:
    """The weekly digest's picture: this month so far by project, with its budgets and forecast, in the digest's thread."""
    at = until - timedelta(microseconds=1)  # the digest covers up to midnight: the chart shows the month that day was in
    data = rt.db.run(period_spend, workspace_id, window("month", at), By.PROJECT)
    chart = spend_chart(data)
    rt.slack.upload(f"{ref}:chart", channel, filename=f"purser-week-{until:%Y-%m-%d}.png", content=render_spend(chart), alt_text=describe_spend(chart), title=data.title, thread_ts=thread_ts)
