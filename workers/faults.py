"""Named crash points, so tests can prove that a worker dying mid-action loses and doubles nothing."""

from __future__ import annotations


class InjectedCrash(BaseException):
    """Stands for the process dying: BaseException, so no handler tidies up after it."""


def crash_point(faults: set[str], name: str) -> None:
    if name in faults:
        raise InjectedCrash(name)
