"""What a chart shows, in words and figures: the charts' data (SpendChart, HourlyChart) and
their alt text, without drawing anything.

bot.charts draws them; this half imports no plotting library, so the web process (App
Home's alt text) can describe a chart a worker drew without loading matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

#: at most this many series get a colour of their own; the rest are folded into "other"
MAX_SERIES = 8
OTHER = "other"
#: Slack's limit on a file's alt text (files.getUploadURLExternal's alt_txt)
MAX_ALT = 1000


@dataclass(frozen=True)
class SpendChart:
    title: str
    start: date  # first day of the period shown
    end: date  # the day after the period's last day
    today: date  # last day with data (inclusive); start <= today < end
    daily: dict[str, list[int]]  # series label -> micro-dollars spent each day, start..today inclusive
    limits: list[tuple[str, int]] = ()  # (label, micro-dollars) in force for the whole period
    forecast_micros: int | None = None  # projected period total at ``end``

    def __post_init__(self) -> None:
        if not self.start <= self.today < self.end:
            raise ValueError(f"a spend chart needs start <= today < end, not {self.start}, {self.today}, {self.end}")
        days = self.days_with_data
        for label, values in self.daily.items():
            if len(values) != days:
                raise ValueError(f"series {label!r} has {len(values)} days, not {days} ({self.start} to {self.today})")

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def days_with_data(self) -> int:
        return (self.today - self.start).days + 1

    @property
    def total(self) -> int:
        return sum(sum(values) for values in self.daily.values())


@dataclass(frozen=True)
class HourlyChart:
    title: str
    hours: list[datetime]  # hour starts (UTC, aware), oldest first
    spent: list[int]  # micro-dollars in each hour
    baseline: list[int]  # the usual spend for that hour (trailing median for the same hour of the week)
    flagged: datetime | None = None  # the hour that spiked, highlighted

    def __post_init__(self) -> None:
        if not len(self.hours) == len(self.spent) == len(self.baseline):
            raise ValueError(f"an hourly chart needs as many hours as amounts: {len(self.hours)}, {len(self.spent)}, {len(self.baseline)}")


def plain(text: str) -> str:
    """``text`` exactly as written: an escaped ``$`` is never the start of mathtext."""
    return text.replace("$", r"\$")


def dollars_text(micros: int) -> str:
    """Whole dollars from $100 (``$1,234``), cents below (``$12.50``): how people read amounts aloud."""
    cents = (abs(int(micros)) + 5_000) // 10_000
    sign = "-" if micros < 0 and cents else ""
    return f"{sign}${cents // 100:,}" if cents >= 100_00 else f"{sign}${cents // 100}.{cents % 100:02d}"


def short_day(day: date) -> str:
    return f"{day:%b} {day.day}"


def period_text(chart: SpendChart) -> str:
    last = chart.end - timedelta(days=1)
    return f"{short_day(chart.start)} – {short_day(last)}, {last.year}"


def ranked(daily: dict[str, list[int]]) -> list[str]:
    """Series labels by what they spent, most first; ties in label order, so the same data draws the same chart."""
    return sorted(daily, key=lambda label: (-sum(daily[label]), label))


def _fit(parts: list[str], limit: int = MAX_ALT) -> str:
    """The sentences joined, cut at a whole sentence (and then a word) to stay within Slack's limit."""
    text = " ".join(p for p in parts if p)
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


def describe_spend(chart: SpendChart) -> str:
    """Alt text: the period, the total so far, the biggest series with amounts, the limits and the forecast."""
    total = chart.total
    head = f"{chart.title}. {period_text(chart)}, day {chart.days_with_data} of {chart.days}."
    if not total:
        spent = "Nothing spent so far."
    else:
        spent = f"Spent so far: {dollars_text(total)}."
    order = [label for label in ranked(chart.daily) if sum(chart.daily[label])]
    shown, rest = order[:5], order[5:]
    by = ", ".join(f"{label} {dollars_text(sum(chart.daily[label]))}" for label in shown)
    if rest:
        by += f", and {len(rest)} more {dollars_text(sum(sum(chart.daily[label]) for label in rest))}"
    series = f"Biggest: {by}." if by else ""
    limits = "; ".join(f"{label} {dollars_text(micros)} ({_share(total, micros)} used)" for label, micros in chart.limits)
    forecast = ""
    if chart.forecast_micros is not None:
        over = [label for label, micros in chart.limits if chart.forecast_micros > micros]
        forecast = f"Forecast: {dollars_text(chart.forecast_micros)} by {short_day(chart.end - timedelta(days=1))}" + (f", over {', '.join(over)}." if over else ".")
    return _fit([head, spent, series, f"Limits: {limits}." if limits else "", forecast])


def _share(spent: int, limit: int) -> str:
    return f"{spent * 100 // limit}%" if limit > 0 else "all"


def describe_hourly(chart: HourlyChart) -> str:
    """Alt text: the window, what was spent against the usual, and the flagged hour with its amounts."""
    if not chart.hours:
        return _fit([f"{chart.title}. No hours to show."])
    first, last = chart.hours[0], chart.hours[-1]
    head = f"{chart.title}. Spend each hour from {first:%a %d %b %H:00} to {last:%a %d %b %H:00} UTC."
    spent = f"Spent: {dollars_text(sum(chart.spent))}, against a usual {dollars_text(sum(chart.baseline))} for those hours."
    flagged = ""
    if chart.flagged in chart.hours:
        i = chart.hours.index(chart.flagged)
        usual = chart.baseline[i]
        times = f", {chart.spent[i] / usual:.1f} times the usual {dollars_text(usual)}" if usual > 0 else f", where {dollars_text(usual)} is usual"
        flagged = f"The hour of {chart.flagged:%a %d %b %H:00} UTC spent {dollars_text(chart.spent[i])}{times}."
    peak = max(range(len(chart.spent)), key=lambda i: (chart.spent[i], -i))
    most = f"Most in one hour: {dollars_text(chart.spent[peak])} at {chart.hours[peak]:%a %H:00}." if chart.spent[peak] else "Nothing was spent."
    return _fit([head, spent, flagged, most])


def spend_chart(data) -> SpendChart:
    """A store.chart_data.PeriodSpend as the chart that draws it."""
    return SpendChart(data.title, data.start, data.end, data.today, data.daily, data.limits, data.forecast_micros)
