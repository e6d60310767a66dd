"""Spend and hourly charts render to PNG images Slack can show, from any data, and their alt text says what they show."""

from __future__ import annotations

import io
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from PIL import Image

from bot.charts import MAX_ALT, MAX_SERIES, HourlyChart, SpendChart, describe_hourly, describe_spend, folded, render_hourly, render_spend

PNG = b"\x89PNG\r\n\x1a\n"
DOLLAR = 1_000_000


def image(png: bytes) -> Image.Image:
    assert png.startswith(PNG)
    assert 5_000 < len(png) < 400_000  # a chart, not a blank page nor a photograph
    picture = Image.open(io.BytesIO(png))
    picture.verify()
    picture = Image.open(io.BytesIO(png))
    assert picture.format == "PNG"
    assert 900 <= picture.width <= 1200 and 600 <= picture.height <= 900
    return picture


def month(first: date, today: date, series: dict[str, int], **more) -> SpendChart:
    """A period from ``first`` to the month's end, each series spending its amount every day up to ``today``."""
    end = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    days = (today - first).days + 1
    return SpendChart(more.pop("title", "Spend"), first, end, today, {label: [each] * days for label, each in series.items()}, **more)


def test_a_month_with_limits_and_a_forecast_renders_and_is_described():
    chart = month(date(2027, 3, 1), date(2027, 3, 20), {"search": 120 * DOLLAR, "chatbot": 30 * DOLLAR, "evals": 5 * DOLLAR}, title="Spend in acme",
                  limits=[("Budget", 4_000 * DOLLAR), ("Cap", 5_000 * DOLLAR)], forecast_micros=4_805 * DOLLAR)  # fmt: skip
    assert image(render_spend(chart)).size == (1000, 700)
    alt = describe_spend(chart)
    assert "$3,100" in alt  # 20 days × $155
    assert "search $2,400" in alt and "chatbot $600," in alt and "evals $100." in alt  # whole dollars from $100
    assert "Budget $4,000 (77% used)" in alt and "Cap $5,000" in alt
    assert "Forecast: $4,805 by Mar 31, over Budget." in alt
    assert len(alt) <= MAX_ALT


def test_nothing_spent_still_renders_a_chart_that_says_so():
    chart = month(date(2027, 6, 1), date(2027, 6, 1), {}, limits=[("Budget", 100 * DOLLAR)])
    image(render_spend(chart))
    assert "Nothing spent so far." in describe_spend(chart)
    zeros = month(date(2027, 6, 1), date(2027, 6, 16), {"idle": 0})
    image(render_spend(zeros))
    assert "Nothing spent so far." in describe_spend(zeros) and "idle" not in describe_spend(zeros)


def test_one_series_on_its_first_day():
    chart = month(date(2027, 6, 1), date(2027, 6, 1), {"only": 12_340_000}, forecast_micros=370 * DOLLAR)
    image(render_spend(chart))
    assert "Spent so far: $12.34." in describe_spend(chart)


def test_more_than_eight_series_are_folded_into_other():
    series = {f"project-{n:02d}": (n + 1) * DOLLAR for n in range(14)}
    chart = month(date(2027, 6, 1), date(2027, 6, 16), series)
    shown = folded(chart.daily, chart.days_with_data)
    assert len(shown) == MAX_SERIES and shown[-1][0] == "other"
    assert [label for label, _ in shown[:3]] == ["project-13", "project-12", "project-11"]
    assert sum(sum(v) for _, v in shown) == chart.total  # folding loses nothing
    image(render_spend(chart))
    assert "and 9 more" in describe_spend(chart)


def test_a_dollar_sign_in_a_label_is_text_not_mathtext():
    chart = month(date(2027, 6, 1), date(2027, 6, 10), {"$cheap$ model": DOLLAR, "a $ b $ c": 2 * DOLLAR, "$\\frac{1}{0}$": DOLLAR},
                  title="Costs in $ and $$", limits=[("$x$ cap", 100 * DOLLAR)])  # fmt: skip
    image(render_spend(chart))  # mathtext would have failed on \frac{1}{0}'s stray braces or drawn it as a fraction
    assert "$cheap$ model $10.00" in describe_spend(chart)
    hourly = HourlyChart("Spike in $team$", [datetime(2027, 6, 16, h, tzinfo=timezone.utc) for h in range(3)], [1, 2, 3], [1, 1, 1])
    image(render_hourly(hourly))


def test_a_leap_year_february_and_a_31_day_month():
    leap = month(date(2028, 2, 1), date(2028, 2, 29), {"a": DOLLAR, "b": 2 * DOLLAR}, forecast_micros=87 * DOLLAR)
    assert leap.days == 29 and leap.days_with_data == 29
    image(render_spend(leap))
    assert "Feb 1 – Feb 29, 2028, day 29 of 29" in describe_spend(leap)
    long = month(date(2027, 12, 1), date(2027, 12, 31), {"a": DOLLAR}, forecast_micros=31 * DOLLAR)
    assert long.days == 31
    image(render_spend(long))
    assert "Dec 1 – Dec 31, 2027, day 31 of 31" in describe_spend(long)


def test_inconsistent_charts_are_refused():
    with pytest.raises(ValueError):
        SpendChart("x", date(2027, 6, 1), date(2027, 7, 1), date(2027, 7, 1), {})
    with pytest.raises(ValueError):
        SpendChart("x", date(2027, 6, 1), date(2027, 7, 1), date(2027, 6, 3), {"a": [1, 2]})
    with pytest.raises(ValueError):
        HourlyChart("x", [datetime(2027, 6, 1, tzinfo=timezone.utc)], [1], [])


def test_the_alt_text_stays_within_slacks_limit():
    series = {f"a-project-with-a-rather-long-name-{n:03d}": n * DOLLAR for n in range(1, 60)}
    chart = month(date(2027, 6, 1), date(2027, 6, 16), series, title="T" * 300, limits=[(f"limit {n} " * 5, n * 1000 * DOLLAR) for n in range(1, 30)])
    alt = describe_spend(chart)
    assert len(alt) <= MAX_ALT and alt.startswith("T" * 300)


def week_of_hours(spike_at: int | None) -> HourlyChart:
    start = datetime(2027, 6, 9, tzinfo=timezone.utc)
    hours = [start + timedelta(hours=h) for h in range(7 * 24)]
    baseline = [(2 + h % 24 // 6) * DOLLAR for h in range(len(hours))]
    spent = list(baseline)
    if spike_at is not None:
        spent[spike_at] = 45 * DOLLAR
    return HourlyChart("Spend in acme, hour by hour", hours, spent, baseline, hours[spike_at] if spike_at is not None else None)


def test_the_hourly_chart_marks_the_spike():
    chart = week_of_hours(150)
    image(render_hourly(chart))
    alt = describe_hourly(chart)
    assert "The hour of Tue 15 Jun 06:00 UTC spent $45.00, 15.0 times the usual $3.00." in alt
    assert "Most in one hour: $45.00" in alt


def test_the_hourly_chart_with_no_hours_or_no_spike():
    image(render_hourly(HourlyChart("Quiet", [], [], [])))
    assert "No hours to show." in describe_hourly(HourlyChart("Quiet", [], [], []))
    image(render_hourly(week_of_hours(None)))


def test_the_same_chart_is_the_same_bytes_even_rendered_in_threads_at_once():
    chart = month(date(2027, 3, 1), date(2027, 3, 20), {f"p{n}": n * DOLLAR for n in range(1, 10)}, limits=[("Budget", 2_000 * DOLLAR)], forecast_micros=1_500 * DOLLAR)
    hourly = week_of_hours(100)
    expected = render_spend(chart), render_hourly(hourly)
    got: list[tuple[bytes, bytes]] = []

    def render() -> None:
        for _ in range(3):
            got.append((render_spend(chart), render_hourly(hourly)))

    threads = [threading.Thread(target=render) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 9 and all(g == expected for g in got)
