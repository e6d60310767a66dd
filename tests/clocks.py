"""Every test runs on a clock it sets: a pytest plugin.

Money lives on periods, so a test that reads "now" must not pass on some days and fail on
others. The whole run starts at ``STEADY``, a fixed mid-month weekday far from any period's
boundary (session and module fixtures included), and ticks from there. Then:

- ``@pytest.mark.calendar`` (period-sensitive: budgets, alerts, forecasts, rollover, key
  limits, expiries, digests): run once under each of ``INSTANTS`` — the first second of a
  month, the last second of a month, a leap day, the last second of a year, and the
  machine's real now (the crossing into 1 January is a test of its own, moving its
  clock). The instant is in the test's id, and a failure names it.
- ``pytestmark = pytest.mark.real_clock`` (a module): tests that talk to processes they start
  (gunicorn, `purser run`, nginx, Chromium) share the machine's clock with them, since a
  Slack signature or a token made under one clock and checked under another is refused.

A calendar test's clock is held still at its instant (``tick=False``), so the test runs at
that instant whichever of its steps are slow; a test about crossing a boundary moves its
``clock`` itself (``clock.move_to``, ``clock.shift``). Every other clock ticks from STEADY:
workers, retries and timeouts need time to pass, and waits in tests are measured on the
monotonic clock, which time-machine leaves alone.

``PURSER_TEST_START`` (an ISO instant) starts the run's clock there instead of at STEADY,
and the real-now instant is then that clock: the whole in-process suite on another date.
The real-clock modules keep the machine's clock, which their processes share.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import pytest
import time_machine

UTC = timezone.utc

#: the instants a calendar test runs under; None is the real (machine's) now
INSTANTS: dict[str, datetime | None] = {
    "month-start": datetime(2027, 3, 1, 0, 0, 0, tzinfo=UTC),
    "month-end": datetime(2027, 4, 30, 23, 59, 59, tzinfo=UTC),
    "leap-day": datetime(2028, 2, 29, 12, 0, 0, tzinfo=UTC),
    "new-year": datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    "now": None,
}

#: where a test that depends on "now" but not on where it falls in a period runs
STEADY = datetime(2027, 6, 16, 12, 0, 0, tzinfo=UTC)


class _RunClock:
    """The run's own clock: at STEADY, set aside while a real-clock module runs."""

    def __init__(self) -> None:
        self.traveller: time_machine.travel | None = None

    def start(self, at: datetime) -> None:
        self.traveller = time_machine.travel(at, tick=True)
        self.traveller.start()

    def set_aside(self) -> datetime | None:
        """Back to the machine's clock; returns where the run's clock had got to."""
        if self.traveller is None:
            return None
        reached = datetime.now(UTC)
        self.traveller.stop()
        self.traveller = None
        return reached

    def stop(self) -> None:
        self.set_aside()


_run = _RunClock()
#: where the run's clock starts: PURSER_TEST_START, or STEADY
_START = os.environ.get("PURSER_TEST_START")
RUN_STARTS_AT = datetime.fromisoformat(_START.replace("Z", "+00:00")) if _START else STEADY


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "calendar: period-sensitive; runs under every instant of tests.clocks.INSTANTS")
    config.addinivalue_line("markers", "real_clock: shares the machine's clock with another process; no travel")


def pytest_report_header(config: pytest.Config) -> str:
    return f"clock: the machine says {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}; the run's clock starts at {RUN_STARTS_AT:%Y-%m-%dT%H:%M:%SZ}; calendar instants {', '.join(INSTANTS)}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("calendar") is not None:
        metafunc.fixturenames.append("instant")
        metafunc.parametrize("instant", list(INSTANTS), indirect=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    started = getattr(item, "_clock_started", None)
    if report.failed and started is not None:
        report.sections.append(("clock", f"this test's clock started at {started} and ticked from there"))
    return report


@pytest.fixture(scope="session", autouse=True)
def _run_clock():
    _run.start(RUN_STARTS_AT)
    yield
    _run.stop()


@pytest.fixture(scope="module", autouse=True)
def _module_clock(request, _run_clock):
    if request.node.get_closest_marker("real_clock") is None:
        yield
        return
    reached = _run.set_aside()
    began = time.monotonic()  # time-machine leaves the monotonic clock alone
    yield
    if reached is not None:  # on from where it was, as far as the module took: the run's time never goes back
        _run.start(reached + timedelta(seconds=time.monotonic() - began))


def _machine_now() -> datetime:
    if _START:  # the run was started on another date: "now" is that run's now
        return datetime.now(UTC)
    if time_machine.escape_hatch.is_travelling():
        return time_machine.escape_hatch.datetime.datetime.now(UTC)
    return datetime.now(UTC)


@pytest.fixture
def instant(request) -> str:
    """The calendar instant's name (``now`` when no parametrization asked for one)."""
    return getattr(request, "param", "now")


@pytest.fixture(autouse=True)
def clock(request, _module_clock):
    """The test's clock (a time-machine Traveller): held at its calendar instant, else ticking on from the run's; None on a real-clock module."""
    if request.node.get_closest_marker("real_clock") is not None:
        request.node._clock_started = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} (the machine's clock)"
        yield None
        return
    if request.node.get_closest_marker("calendar") is None:
        request.node._clock_started = f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} (the run's clock, from {RUN_STARTS_AT:%Y-%m-%dT%H:%M:%SZ})"
        # A clock of the test's own, on from the run's: moving it moves nothing after the test.
        with time_machine.travel(datetime.now(UTC), tick=True) as traveller:
            yield traveller
        return
    name = request.getfixturevalue("instant")
    # The real now is the machine's, read past the run's own clock.
    at = INSTANTS[name] or _machine_now()
    request.node._clock_started = f"{at:%Y-%m-%dT%H:%M:%SZ} ({name})"
    # Held still at the instant: the test runs at that instant wherever its steps fall, and a
    # test about crossing a boundary moves the clock itself (clock.move_to, clock.shift).
    with time_machine.travel(at, tick=False) as traveller:
        yield traveller
