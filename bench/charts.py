"""Chart rendering time: a month's spend chart and a week's hourly chart, in a worker thread while another thread renders too.

Workers render charts in their threads (the weekly digest, statements, spike alerts,
App Home), and one slow render holds up a worker. The spend chart is a realistic month
(31 days × 8 projects, a budget and a cap, a forecast); the hourly chart is 7 days of
hours with a flagged spike. One thread renders them alternately --renders times each and
times every render, while a second thread renders the same charts without pause, as a
second worker would on a 2-core machine (matplotlib holds the GIL for much of a render,
so the two contend). For reference, the same renders run first with no second thread.

It ends with one line, `charts: ratio R (target 1) met|MISSED`: R is the target (1 s) over
the slower chart's p99 under contention, so ≥ 1 is met. docs/benchmarks.md says what is measured and keeps the last figures.

    .venv/bin/python bench/charts.py [--renders 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ ships with the source, not the package

import matplotlib  # noqa: E402

from bench.common import at_most, load_text, percentile, verdict  # noqa: E402
from bot.charts import HourlyChart, SpendChart, describe_hourly, describe_spend, render_hourly, render_spend  # noqa: E402

TARGET_SECONDS = 1.0  # a render slower than this holds a worker up noticeably
DOLLAR = 1_000_000
PROJECTS = ("search", "support-bot", "data-pipeline", "summariser", "translation", "ml-research", "evals", "internal-tools")


def month_chart(rng: random.Random) -> SpendChart:
    """March: 31 days of 8 projects, each with its own level and weekday rhythm, a budget, a cap and a forecast."""
    start, end = date(2027, 3, 1), date(2027, 4, 1)
    days = (end - start).days
    daily = {}
    for n, project in enumerate(PROJECTS):
        level = (400 >> n) * DOLLAR + 5 * DOLLAR
        daily[project] = [int(level * (0.4 if (start + timedelta(days=d)).weekday() >= 5 else 1.0) * rng.uniform(0.6, 1.4)) for d in range(days)]
    total = sum(sum(v) for v in daily.values())
    return SpendChart("Spend in acme-prod · March 2027", start, end, end - timedelta(days=1), daily,
                      [("Budget", total * 9 // 10 // DOLLAR * DOLLAR), ("Cap", total * 6 // 5 // DOLLAR * DOLLAR)], total)  # fmt: skip


def week_of_hours(rng: random.Random) -> HourlyChart:
    """Seven days of hours, busier in working hours, with one hour at twelve times its usual."""
    first = datetime(2027, 6, 9, tzinfo=timezone.utc)
    hours = [first + timedelta(hours=h) for h in range(7 * 24)]
    baseline = [int((3 if 8 <= h.hour < 18 and h.weekday() < 5 else 1) * DOLLAR) for h in hours]
    spent = [int(b * rng.uniform(0.7, 1.3)) for b in baseline]
    spent[150] = baseline[150] * 12
    return HourlyChart("Spend in acme-prod, hour by hour", hours, spent, baseline, hours[150])


def timed(charts: list[tuple[str, object]], renders: int, stop: threading.Event | None = None) -> dict[str, list[float]]:
    """Each chart rendered ``renders`` times, alternately: the seconds of each render, by chart."""
    took: dict[str, list[float]] = {name: [] for name, _ in charts}
    for _ in range(renders):
        for name, chart in charts:
            began = time.perf_counter()
            (render_spend if isinstance(chart, SpendChart) else render_hourly)(chart)
            took[name].append(time.perf_counter() - began)
    if stop is not None:
        stop.set()
    return took


def other_worker(charts: list[tuple[str, object]], stop: threading.Event, done: list[int]) -> None:
    while not stop.is_set():
        for _, chart in charts:
            (render_spend if isinstance(chart, SpendChart) else render_hourly)(chart)
            done[0] += 1


def contended(charts: list[tuple[str, object]], renders: int) -> tuple[dict[str, list[float]], int]:
    """``timed`` in a worker thread while a second thread renders the same charts without pause."""
    stop, done, result = threading.Event(), [0], {}
    second = threading.Thread(target=other_worker, args=(charts, stop, done), daemon=True)
    first = threading.Thread(target=lambda: result.update(timed(charts, renders, stop)))
    second.start()
    first.start()
    first.join()
    second.join()
    return result, done[0]


def row(name: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"{name:<27}{len(ms):>7}{percentile(ms, 0.5):>9.0f}{percentile(ms, 0.99):>9.0f}{max(ms):>9.0f}{statistics.fmean(ms):>9.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=200, help="renders of each chart in the measured thread")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    rng = random.Random(args.seed)
    spend, hourly = month_chart(rng), week_of_hours(rng)
    charts = [("spend (31 d × 8)", spend), ("hourly (168 h)", hourly)]
    sizes = {name: len((render_spend if isinstance(c, SpendChart) else render_hourly)(c)) for name, c in charts}  # also warms fonts and caches
    print(f"load average at start {load_text(load)}; {os.cpu_count()} cores; Python {platform.python_version()}, matplotlib {matplotlib.__version__}")
    print("PNG sizes: " + ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in sizes.items()))
    print(f"alt text: {len(describe_spend(spend))} and {len(describe_hourly(hourly))} characters")

    cpu0, wall0 = time.process_time(), time.perf_counter()
    alone = timed(charts, max(10, args.renders // 4))
    busy, others = contended(charts, args.renders)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0

    print(f"\n{'render, ms':<27}{'n':>7}{'p50':>9}{'p99':>9}{'max':>9}{'mean':>9}")
    for name, _ in charts:
        print(row(f"{name}, alone", alone[name]))
    for name, _ in charts:
        print(row(f"{name}, 2 threads", busy[name]))
    print(f"(the second thread rendered {others} charts meanwhile; {cpu / wall:.2f} cores busy over {wall:.0f} s)")

    worst = max(percentile(busy[name], 0.99) for name, _ in charts)
    print(f"slowest p99 with two threads rendering: {worst * 1000:.0f} ms (target ≤ {TARGET_SECONDS * 1000:.0f} ms); load average at the end {load_text(os.getloadavg())}")
    return 0 if verdict("charts", [(f"slowest render p99 with two threads rendering: {worst * 1000:.0f} ms (≤ {TARGET_SECONDS * 1000:.0f} ms)", at_most(worst, TARGET_SECONDS))]) else 1


if __name__ == "__main__":
    sys.exit(main())
