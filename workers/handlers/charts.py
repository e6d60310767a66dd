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
from store.spend_series import By, window
from store.outbox import Claimed
from store.permissions import Actor
from store.types import utcnow
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def usage_chart(rt: Runtime, a: Claimed) -> None:
    p = a.payload
    asked = dict(project=p.get("project"), mine=p.get("mine", False), days=p.get("days"), period=p.get("period") or "month", by=p.get("by", "project"))
    figures = rt.db.run(usage_reports.usage_chart, Actor.slack(p["user"]), a.workspace_id, **asked)
    if figures is None:
        log.info("usage chart for %s not drawn: they no longer see that spend", p["user"])
    elif rt.slack is not None:
        slug, data = figures
        chart = spend_chart(data)
        png = render_spend(chart)
        rt.slack.upload_dm(f"usage-chart:{a.id}", [p["user"]], filename=f"purser-{slug}-{data.start:%Y-%m-%d}.png", content=png, alt_text=describe_spend(chart), title=data.title)
    rt.db.run(outbox.complete, a.id)


def home_chart(rt: Runtime, a: Claimed) -> None:
    """This hour's chart for one person's App Home (uploaded privately, shown by its file id), then the Home again.

    The chart is the one its ref names — the whole workspace's or the member's own keys' —
    and is drawn only while the person still has that view: a demoted Admin's request
    must not file their own spend as the workspace's, nor a promoted-then-demoted
    Developer's the workspace's as their own.
    """
    p = a.payload
    asker = Asker(p["team"], p["user"])
    standing = rt.db.run(usage_reports.viewpoint, asker.actor, a.workspace_id)
    whole = p["whole"]
    if rt.slack is None or standing is None or standing[0] != whole:
        rt.db.run(outbox.complete, a.id)
        return
    data = rt.db.run(period_spend, a.workspace_id, window("month", utcnow()), By.PROJECT, member_id=None if whole else standing[1])
    chart = spend_chart(data)
    rt.slack.upload(p["ref"], None, filename=f"purser-home-{a.workspace_id}.png", content=render_spend(chart), alt_text=describe_spend(chart), title=data.title)
    rt.slack.client.views_publish(user_id=asker.user_id, view=home_view(rt.db, asker))
    rt.db.run(outbox.complete, a.id)


def post_week_chart(rt: Runtime, workspace_id: int, channel: str, thread_ts: str, ref: str, until: datetime) -> None:
    """The weekly digest's picture: this month so far by project, with its budgets and forecast, in the digest's thread."""
    at = until - timedelta(microseconds=1)  # the digest covers up to midnight: the chart shows the month that day was in
    data = rt.db.run(period_spend, workspace_id, window("month", at), By.PROJECT)
    chart = spend_chart(data)
    rt.slack.upload(f"{ref}:chart", channel, filename=f"purser-week-{until:%Y-%m-%d}.png", content=render_spend(chart), alt_text=describe_spend(chart), title=data.title, thread_ts=thread_ts)
