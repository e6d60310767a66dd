"""Spend charts drawn as PNG images for Slack (their data and alt text: bot.chart_text).

``SpendChart`` is a period's spend per series (project, member or model): stacked daily
bars above, the cumulative total against the limits and the forecast below.
``HourlyChart`` is the last days' spend hour by hour against its usual level, with the
hour that spiked marked.

Rendering uses matplotlib's ``Figure`` on the Agg canvas, never pyplot: pyplot keeps
global state, and workers render in threads. Labels are people's text, so every ``$`` is
escaped and none is read as mathtext. Money is integer micro-dollars until the plot
converts it; the same chart renders to the same bytes.
"""

from __future__ import annotations

import io
from datetime import timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from bot.chart_text import MAX_SERIES, OTHER, HourlyChart, SpendChart, describe_hourly, describe_spend, dollars_text, period_text, plain, ranked, short_day
from store.money import MICROS_PER_DOLLAR

# Drawing and describing go together for the callers: one import for both.
__all__ = ["HourlyChart", "SpendChart", "describe_hourly", "describe_spend", "render_hourly", "render_spend"]

SIZE = (10, 7)  # inches at DPI: 1000 × 700 px, readable in Slack's preview and full size
DPI = 100
# Colour-blind-safe (Okabe–Ito) with a grey kept for "other".
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
OTHER_COLOUR = "#9E9E9E"
LIMIT_COLOURS = ("#C62828", "#6A1B9A", "#EF6C00", "#37474F")
SPENT_COLOUR = "#1D1C1D"
TITLE_SIZE, LABEL_SIZE, TICK_SIZE = 15, 11, 10


def _money_axis(axis, span_micros: int) -> None:
    cents = span_micros < 10 * MICROS_PER_DOLLAR  # a small scale needs cents to tell its ticks apart
    axis.set_major_formatter(FuncFormatter(lambda v, _: plain(f"${v:,.2f}" if cents else f"${v:,.0f}")))
    axis.set_major_locator(MaxNLocator(nbins=6, min_n_ticks=3))


def _figure() -> tuple[Figure, FigureCanvasAgg]:
    fig = Figure(figsize=SIZE, dpi=DPI, facecolor="white")
    return fig, FigureCanvasAgg(fig)


def _png(fig: Figure, canvas: FigureCanvasAgg) -> bytes:
    out = io.BytesIO()
    # No software version or date in the file: the same chart is the same bytes.
    canvas.print_png(out, metadata={"Software": None})
    return out.getvalue()


def _bars(ax, heights: list[float], bottoms: list[float], width: float, colours: str | list[str], label: str | None = None) -> None:
    """Bars at x = 0.5, 1.5, …: one collection rather than a patch per bar (Axes.bar), several times faster to draw."""
    edge = (1 - width) / 2
    boxes = [[(i + edge, b), (i + edge, b + h), (i + 1 - edge, b + h), (i + 1 - edge, b)] for i, (h, b) in enumerate(zip(heights, bottoms))]
    ax.add_collection(PolyCollection(boxes, facecolors=colours, linewidths=0, label=label), autolim=False)


def _style(ax) -> None:
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(axis="y", color="#E0E0E0", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def folded(daily: dict[str, list[int]], days: int) -> list[tuple[str, list[int]]]:
    """The series biggest first, at most MAX_SERIES: beyond that the smallest add up to "other"."""
    order = ranked(daily)
    if len(order) <= MAX_SERIES:
        return [(label, daily[label]) for label in order]
    kept, rest = order[: MAX_SERIES - 1], order[MAX_SERIES - 1 :]
    other = [sum(daily[label][i] for label in rest) for i in range(days)]
    return [(label, daily[label]) for label in kept] + [(OTHER, other)]


def _legend(label: str, most: int = 22) -> str:
    # The legend sits in the margin right of the bars: a longer label would run off the image
    # (the alt text names every series in full).
    label = label if len(label) <= most else label[: most - 1] + "…"
    # matplotlib leaves a label starting with "_" out of the legend; a model may be named so.
    return "\u200b" + label if label.startswith("_") else label


def render_spend(chart: SpendChart) -> bytes:
    """The chart as PNG: daily bars by series above, the running total against limits and forecast below."""
    fig, canvas = _figure()
    bars, total = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 2), "hspace": 0.12})
    fig.subplots_adjust(left=0.1, right=0.76, top=0.9, bottom=0.08)
    fig.suptitle(plain(chart.title), fontsize=TITLE_SIZE, fontweight="bold", x=0.1, ha="left")
    days, seen = chart.days, chart.days_with_data
    fig.text(0.1, 0.925, plain(period_text(chart)), fontsize=LABEL_SIZE, color="#616061")
    for ax in (bars, total):
        _style(ax)
        ax.set_xlim(0, days)

    series = folded(chart.daily, seen)
    bottom = [0] * seen
    for n, (label, values) in enumerate(series):
        colour = OTHER_COLOUR if label == OTHER and n == len(series) - 1 and len(chart.daily) > MAX_SERIES else PALETTE[n % len(PALETTE)]
        heights = [v / MICROS_PER_DOLLAR for v in values]
        _bars(bars, heights, [b / MICROS_PER_DOLLAR for b in bottom], 0.8, colour, plain(_legend(label)))
        bottom = [b + v for b, v in zip(bottom, values)]
    daily_top = max(bottom, default=0)
    bars.set_ylim(0, max(daily_top, MICROS_PER_DOLLAR) / MICROS_PER_DOLLAR * 1.12)
    _money_axis(bars.yaxis, daily_top)
    bars.set_ylabel("Spent each day", fontsize=LABEL_SIZE)
    if series and chart.total:
        bars.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=TICK_SIZE, title="Biggest first", title_fontsize=TICK_SIZE, alignment="left")
    else:
        bars.text(0.5, 0.5, "Nothing was spent in this period so far.", transform=bars.transAxes, ha="center", va="center", fontsize=LABEL_SIZE + 2, color="#616061")

    # The running total at the end of each day, from nothing at the start of the period.
    running, sums = 0, [0]
    for day in range(seen):
        running += sum(values[day] for values in chart.daily.values())
        sums.append(running)
    total.plot(range(seen + 1), [s / MICROS_PER_DOLLAR for s in sums], color=SPENT_COLOUR, linewidth=2.2, label="Spent so far")
    total.plot([seen], [running / MICROS_PER_DOLLAR], marker="o", color=SPENT_COLOUR, markersize=5)
    top = running
    if chart.forecast_micros is not None:
        total.plot([seen, days], [running / MICROS_PER_DOLLAR, chart.forecast_micros / MICROS_PER_DOLLAR], linestyle="--", color=SPENT_COLOUR, linewidth=1.6, label="Forecast")
        top = max(top, chart.forecast_micros)
    for n, (label, micros) in enumerate(chart.limits):
        colour = LIMIT_COLOURS[n % len(LIMIT_COLOURS)]
        total.axhline(micros / MICROS_PER_DOLLAR, color=colour, linewidth=1.4, linestyle=(0, (6, 3)))
        total.annotate(plain(f"{label} {dollars_text(micros)}"), xy=(1.0, micros / MICROS_PER_DOLLAR), xycoords=("axes fraction", "data"),
                       xytext=(4, 0), textcoords="offset points", va="center", fontsize=TICK_SIZE, color=colour, annotation_clip=False)  # fmt: skip
        top = max(top, micros)
    total.set_ylim(0, max(top, MICROS_PER_DOLLAR) / MICROS_PER_DOLLAR * 1.15)
    _money_axis(total.yaxis, top)
    total.set_ylabel("Spent in the period", fontsize=LABEL_SIZE)
    total.legend(loc="upper left", frameon=False, fontsize=TICK_SIZE)

    step = 1 if days <= 10 else 2 if days <= 16 else 7
    ticks = list(range(0, days, step))
    total.set_xticks([t + 0.5 for t in ticks], [plain(short_day(chart.start + timedelta(days=t))) for t in ticks])
    if chart.today + timedelta(days=1) < chart.end:
        for ax in (bars, total):
            ax.axvspan(seen, days, color="#F5F5F5", zorder=0, linewidth=0)  # the days still to come
    return _png(fig, canvas)


def render_hourly(chart: HourlyChart) -> bytes:
    """The chart as PNG: spend each hour as bars, the usual spend as a line, the flagged hour in red."""
    fig, canvas = _figure()
    ax = fig.subplots()
    fig.subplots_adjust(left=0.1, right=0.97, top=0.88, bottom=0.12)
    fig.suptitle(plain(chart.title), fontsize=TITLE_SIZE, fontweight="bold", x=0.1, ha="left")
    _style(ax)
    n = len(chart.hours)
    flagged = chart.hours.index(chart.flagged) if chart.flagged in chart.hours else None
    colours = ["#C62828" if i == flagged else "#0072B2" for i in range(n)]
    _bars(ax, [s / MICROS_PER_DOLLAR for s in chart.spent], [0.0] * n, 0.9, colours, "Spent in the hour")
    if n:
        ax.step(range(n + 1), [b / MICROS_PER_DOLLAR for b in chart.baseline + chart.baseline[-1:]], where="post", color="#E69F00", linewidth=1.8, label="Usual for that hour")
    top = max(chart.spent + chart.baseline + [0])
    ax.set_xlim(0, max(n, 1))
    ax.set_ylim(0, max(top, MICROS_PER_DOLLAR // 100) / MICROS_PER_DOLLAR * 1.15)
    _money_axis(ax.yaxis, top)
    ax.set_ylabel("Spent each hour", fontsize=LABEL_SIZE)
    if flagged is not None:
        ax.annotate(plain(f"{chart.flagged:%a %H:00} UTC: {dollars_text(chart.spent[flagged])}"), xy=(flagged + 0.5, chart.spent[flagged] / MICROS_PER_DOLLAR),
                    xytext=(0, 8), textcoords="offset points", ha="center", fontsize=TICK_SIZE, color="#C62828")  # fmt: skip
    if n:
        # A tick at each midnight (UTC) in the window, or every few hours in a short one.
        ticks = [i for i, h in enumerate(chart.hours) if h.hour == 0] if n > 48 else list(range(0, n, max(1, n // 8)))
        ax.set_xticks(ticks, [plain(f"{chart.hours[i]:%a} {chart.hours[i].day}" if n > 48 else f"{chart.hours[i]:%a %H:00}") for i in ticks])
        ax.legend(loc="upper left", frameon=False, fontsize=TICK_SIZE)
    else:
        ax.set_xticks([])
        ax.text(0.5, 0.5, "No hours to show.", transform=ax.transAxes, ha="center", va="center", fontsize=LABEL_SIZE + 2, color="#616061")
    ax.set_xlabel("Hour (UTC)", fontsize=LABEL_SIZE)
    return _png(fig, canvas)
