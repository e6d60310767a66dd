"""What a call cost when a gateway reports tokens instead of dollars.

Prices are USD per million tokens (prompt, completion). The table holds a few common
models; PURSER_MODEL_PRICES names a JSON file ({"model": [prompt, completion], …}) that
adds to or replaces it. A model with no price is refused: send amount_usd instead.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache

from store.errors import InvalidInput
from store.money import MAX_MICROS, MICROS_PER_DOLLAR

DEFAULT_PRICES: dict[str, tuple[str, str]] = {
    "gpt-4o": ("2.50", "10.00"),
    "gpt-4o-mini": ("0.15", "0.60"),
    "gpt-4.1": ("2.00", "8.00"),
    "gpt-4.1-mini": ("0.40", "1.60"),
    "claude-3-5-sonnet": ("3.00", "15.00"),
    "claude-3-5-haiku": ("0.80", "4.00"),
    "mistral-small": ("0.20", "0.60"),
}


_price_file: str | None = None


def use_price_file(path: str | None) -> None:
    """Prices from this JSON file (model → [prompt, completion] per million tokens) over the defaults."""
    global _price_file
    _price_file = path
    prices.cache_clear()


@lru_cache
def prices() -> dict[str, tuple[Decimal, Decimal]]:
    table = {m: (Decimal(p), Decimal(c)) for m, (p, c) in DEFAULT_PRICES.items()}
    path = _price_file
    if path:
        with open(path) as fh:
            table.update({m: (Decimal(str(p)), Decimal(str(c))) for m, (p, c) in json.load(fh).items()})
    return table


def usd_to_micros(value) -> int:
    """A gateway's USD figure, rounded half-up to the micro-dollar (providers report finer fractions)."""
    if isinstance(value, bool):
        raise InvalidInput("amount_usd must be a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput("amount_usd must be a number") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidInput("amount_usd must be a finite number from 0")
    # Compared before scaling: $1e22 would not fit the decimal context's 28 digits (InvalidOperation).
    if amount > Decimal(MAX_MICROS) / MICROS_PER_DOLLAR:
        raise InvalidInput("amount_usd is absurdly large")
    micros = int((amount * MICROS_PER_DOLLAR).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return micros


def cost_of(model: str, prompt_tokens: int, completion_tokens: int) -> int:
    price = prices().get((model or "").strip())
    if price is None:
        # Providers prefix models ("openai/gpt-4o"): try the name after the last slash.
        price = prices().get((model or "").rsplit("/", 1)[-1])
    if price is None:
        raise InvalidInput(f"no price is known for model {model[:60]!r}; send amount_usd")
    for n in (prompt_tokens, completion_tokens):
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n < 2**31:
            raise InvalidInput("token counts must be whole numbers from 0")
    usd = (price[0] * prompt_tokens + price[1] * completion_tokens) / Decimal(1_000_000)
    return usd_to_micros(usd)
