"""Money is an integer count of micro-dollars: parsed once, formatted once."""

from __future__ import annotations

import re
from decimal import Decimal

from store.errors import InvalidInput

MICROS_PER_DOLLAR = 1_000_000
# A billion dollars is far beyond any budget a team sets; anything larger is a typo.
MAX_MICROS = 1_000_000_000 * MICROS_PER_DOLLAR
_MAX_DOLLARS = Decimal(MAX_MICROS) / MICROS_PER_DOLLAR
_ONE_MICRO = Decimal(1) / MICROS_PER_DOLLAR

# as exponents, so scaling is exact: multiplying would round past 28 digits
_SUFFIXES = {"": "", "k": "e3", "m": "e6"}
_SHAPE = re.compile(r"^\$?(?P<number>[0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[km]?)$", re.I)
_GROUPED = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3})*(?:\.[0-9]*)?$")


def parse_money(text: str | int | float | Decimal) -> int:
    """Turn what a person types (``$12.50``, ``12.5``, ``1,200``, ``50k``) into micro-dollars."""
    if isinstance(text, bool):
        raise InvalidInput("An amount must be a number of dollars, like $12.50.")
    if isinstance(text, int):
        if abs(text) > MAX_MICROS:  # refused unechoed: str() raises on ints past 4,300 digits
            raise InvalidInput(f"That number is too large: the most Purser accepts is {format_money(MAX_MICROS)}.")
        return _from_decimal(Decimal(text), str(text))
    if isinstance(text, (float, Decimal)):
        return _from_decimal(Decimal(str(text)), str(text))
    raw = str(text).strip().replace(" ", "")
    if raw.startswith("-") or raw.startswith("$-"):
        raise InvalidInput(f"“{_clip(text)}” is negative: amounts must be zero or more.")
    match = _SHAPE.match(raw)
    if not match:
        raise InvalidInput(f"“{_clip(text)}” is not an amount of money. Write it like $12.50, 12.5, 1,200 or 50k.")
    number = match.group("number")
    if "," in number and not _GROUPED.match(number):
        raise InvalidInput(f"“{_clip(text)}” has commas in odd places. Write it like 1,200 or 1200.")
    value = Decimal(number.replace(",", "") + _SUFFIXES[match.group("suffix").lower()])
    return _from_decimal(value, str(text))


def _from_decimal(value: Decimal, shown: str) -> int:
    if not value.is_finite():
        raise InvalidInput(f"“{_clip(shown)}” is not a finite amount.")
    if value < 0:
        raise InvalidInput(f"“{_clip(shown)}” is negative: amounts must be zero or more.")
    # Compare before any arithmetic: Decimal arithmetic rounds to 28 digits (so a 7th
    # decimal far enough out would vanish) and overflows on absurd exponents.
    if value > _MAX_DOLLARS:
        raise InvalidInput(f"“{_clip(shown)}” is too large: the most Purser accepts is {format_money(MAX_MICROS)}.")
    rounded = value.quantize(_ONE_MICRO)
    if rounded != value:
        raise InvalidInput(f"“{_clip(shown)}” has more than 6 decimal places; Purser counts to the millionth of a dollar.")
    return int(rounded * MICROS_PER_DOLLAR)


def _clip(text: object) -> str:
    shown = str(text)
    return shown if len(shown) <= 40 else shown[:37] + "…"


def format_money(micros: int) -> str:
    """``12_500_000`` → ``$12.50``; sub-cent amounts keep their digits (``$0.000123``)."""
    sign = "-" if micros < 0 else ""
    dollars, rest = divmod(abs(int(micros)), MICROS_PER_DOLLAR)
    fraction = f"{rest:06d}".rstrip("0")
    fraction = fraction.ljust(2, "0")
    return f"{sign}${dollars:,}.{fraction}"


def dollars(micros: int) -> Decimal:
    """Micro-dollars as an exact Decimal number of dollars (for providers that speak USD)."""
    return Decimal(int(micros)) / MICROS_PER_DOLLAR


def share_percent(spent: int, limit: int) -> int:
    """Whole percent of a limit spent, rounded down so 79.9 % never reads as 80 %."""
    if limit <= 0:
        return 100
    return spent * 100 // limit
