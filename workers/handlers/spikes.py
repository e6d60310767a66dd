"""A spend spike told to the alerts channel: the text first, then its hourly chart under it."""

from __future__ import annotations

import logging

from bot.blocks import spikes as blocks
from bot.charts import describe_hourly, render_hourly
from store import outbox
from store.outbox import Claimed
from store.spike_views import spike_notice
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def post_spike(rt: Runtime, a: Claimed) -> None:
    with rt.db.session() as s:
        notice = spike_notice(s, a.workspace_id, a.payload, rt.spike_rule.weeks)
    if rt.slack is None or not notice.channel:
        rt.db.run(outbox.complete, a.id)
        return
    text, message = blocks.spike_alert(notice)
    channel, ts = rt.slack.post(f"action:{a.id}", notice.channel, text, message, edit=False)
    # The chart only illustrates the alert: whatever goes wrong with it, the text has been
    # posted and the action completes (a retry would not post the text again, but Slack's
    # trouble with a file should not hold the alert's action open either).
    try:
        chart = blocks.hourly_chart(notice)
        rt.slack.upload(
            f"action:{a.id}:chart", channel, filename=f"spike-{notice.hour:%Y%m%d-%H}.png", content=render_hourly(chart),
            alt_text=describe_hourly(chart), title=chart.title, thread_ts=ts,
        )  # fmt: skip
    except Exception:
        log.exception("the chart of spike alert %s could not be posted; the alert itself was", a.id)
    rt.db.run(outbox.complete, a.id)
