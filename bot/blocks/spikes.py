"""A spend spike as the alerts channel hears it, with the Admins' mute buttons, and the chart's words."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.blocks.common import code, context, mention, money, section
from bot.charts import HourlyChart
from store.spike_views import SpikeNotice

MUTE_DAY = "spike_mute_day"
MUTE_WEEK = "spike_mute_week"
#: each mute button's hours (store.spikes.MUTE_HOURS)
MUTES = {MUTE_DAY: 24, MUTE_WEEK: 7 * 24}
MUTE_BLOCK = "spike_mute"


def _times(spent: int, usual: int) -> str:
    return f"{spent / usual:.1f}× its usual {money(usual)}" if usual > 0 else "where it usually spends nothing"


def _multiple(value: float) -> str:
    return f"{value:g}×"


def _who(n: SpikeNotice) -> str:
    if n.scope == "project":
        return f"Project {code(n.project)}"
    owner = f" ({mention(n.key_owner)}'s)" if n.key_owner else ""
    where = f" in project {code(n.project)}" if n.project else ""
    return f"Key {code(n.key_name)}{owner}{where}"


def _budget(n: SpikeNotice) -> str:
    if n.project is None:
        return "The key is in no project, so no project budget holds it back."
    if n.budget_micros is None:
        return f"Project {code(n.project)} has no budget: nothing stops this spend but the workspace's cap."
    share = n.budget_spent_micros * 100 // n.budget_micros if n.budget_micros else 100
    left = max(0, n.budget_micros - n.budget_spent_micros)
    return f"Project {code(n.project)} has used {money(n.budget_spent_micros)} of its {n.budget_period.value} budget of {money(n.budget_micros)} ({share}%); {money(left)} is left."


def hour_span(hour: datetime) -> str:
    return f"{hour:%a %-d %b} {hour:%H}:00–{(hour.hour + 1) % 24:02d}:00 UTC"


def spike_alert(n: SpikeNotice) -> tuple[str, list[Block]]:
    """The alert: who, how much against the usual and by what multiple, the budget, and the mute buttons."""
    hour_line = f"{money(n.spent_hour)} in the hour {hour_span(n.hour)}, {_times(n.spent_hour, n.usual_hour)} for that hour of the week"
    day_line = f"{money(n.spent_day)} in the 24 hours to then, {_times(n.spent_day, n.usual_day)} for those hours"
    first, second = (hour_line, day_line) if n.window == "hour" else (day_line, hour_line)
    spent, usual = (n.spent_hour, n.usual_hour) if n.window == "hour" else (n.spent_day, n.usual_day)
    text = f"Spend spike: {_who(n).replace('`', '')} spent {money(spent)} in the last {n.window}, {_times(spent, usual)}"
    source = "" if n.scope == "key" else f" Most of it came from key {code(n.key_name)}" + (f" of {mention(n.key_owner)}." if n.key_owner else ".")
    blocks: list[Block] = [
        section(f"📈 *Spend spike in {code(n.workspace)}.* {_who(n)} spent {first}; alerts go out above {_multiple(n.multiple)} the usual.{source}\nAlso: {second}."),
        section(_budget(n)),
        context(f"The usual is the median of the same hours in the previous weeks. An Admin can mute spike alerts for key {code(n.key_name)}; it is not announced again while muted."),
        ActionsBlock(
            block_id=f"{MUTE_BLOCK}:{n.key_id}",
            elements=[ButtonElement(text="Mute for 24 h", action_id=MUTE_DAY, value=str(n.key_id)), ButtonElement(text="Mute for 7 days", action_id=MUTE_WEEK, value=str(n.key_id))],
        ),
    ]
    return text, blocks


def muted_line(key_name: str, until: datetime, by: str) -> str:
    return f"🔕 {mention(by)} muted spike alerts for key {code(key_name)} until {until:%a %-d %b %H:%M} UTC."


def hourly_chart(n: SpikeNotice) -> HourlyChart:
    name = f"project {n.project}" if n.scope == "project" else f"key {n.key_name}"
    return HourlyChart(f"Spend each hour: {name} in {n.workspace}", n.hours, n.spent, n.usual, flagged=n.hour)
