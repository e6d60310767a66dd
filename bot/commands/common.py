"""What every command shares: the workspace it acts on and the amounts people type."""

from __future__ import annotations

import re

from bot.parser import Parsed, UsageError
from bot.context import Asker, pick_workspace
from store.db import Database
from store.money import parse_money

_DAYS = re.compile(r"^(\d{1,4})\s*([dw]?)$", re.I)
_HOURS = re.compile(r"^(\d{1,4})\s*([hd])$", re.IGNORECASE)


def workspace_id(db: Database, asker: Asker, parsed: Parsed) -> int:
    return db.run(lambda s: pick_workspace(s, asker, parsed.options.get("workspace")).id)


def workspace_of(db: Database, asker: Asker, parsed: Parsed):
    return db.run(lambda s: pick_workspace(s, asker, parsed.options.get("workspace")))


def amount(text: str | None, what: str = "amount") -> int:
    if text is None:
        raise UsageError(f"Give the {what}, like $50.")
    return parse_money(text)


_LEASE = re.compile(r"^(\d{1,7})\s*(m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)?$", re.IGNORECASE)
_MINUTES = {"m": 1, "h": 60, "d": 1440, "w": 10080}
MAX_LEASE_DAYS = 3650


def lease_minutes(text: str | None) -> int | None:
    """`90m`, `8h`, `3d`, `2w` (or `30`, days, as `--expires` always took) → minutes."""
    if text is None:
        return None
    m = _LEASE.match(text.strip())
    if not m:
        raise UsageError(f"“{text[:20]}” is not a length of time. Write it like 90m, 8h, 3d or 2w.")
    n = int(m.group(1)) * _MINUTES[(m.group(2) or "d")[0].lower()]
    if n < 60:
        # the last warning before a lease ends comes an hour ahead
        raise UsageError(f"A key's lease is at least 1 hour; {text.strip()[:20]} is shorter.")
    if n > MAX_LEASE_DAYS * 1440:
        raise UsageError(f"A key's lease is at most {MAX_LEASE_DAYS} days (10 years); {text.strip()[:20]} is longer. Leave it out for your role's preset.")
    return n


def days(text: str | None) -> int | None:
    """`7d`, `2w` or `30` → days."""
    if text is None:
        return None
    m = _DAYS.match(text.strip())
    if not m:
        raise UsageError(f"“{text[:20]}” is not a duration. Write it like 7d, 2w or 30.")
    n = int(m.group(1)) * (7 if m.group(2).lower() == "w" else 1)
    if n < 1:
        raise UsageError("A duration is at least one day.")
    return n


def hours(text: str | None, example: str) -> int:
    """`12h` or `3d` → hours. The unit is required: a bare number could be either."""
    if text is None:
        raise UsageError(f"Say for how long, in hours or days: {example}.")
    m = _HOURS.match(text.strip())
    if not m:
        raise UsageError(f"“{text[:20]}” is not a duration. Write it in hours or days, like 12h or 3d.")
    n = int(m.group(1)) * (24 if m.group(2).lower() == "d" else 1)
    if n < 1:
        raise UsageError("A duration is at least one hour.")
    return n


def one_of(word: str | None, choices: tuple[str, ...], what: str) -> str:
    if word is None or word.lower() not in choices:
        raise UsageError(f"Say which {what}: {', '.join(choices)}.")
    return word.lower()
