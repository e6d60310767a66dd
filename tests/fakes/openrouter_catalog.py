"""The fake OpenRouter's model catalog (the items of GET /models) and what a call to each model costs.

Prices are OpenRouter's: USD per token (``prompt``, ``completion``) and per request
(``request``), as decimal strings. ``purser/penny`` is the fake's own model: exactly $0.01 a
call whatever is sent, so a test can count calls in cents.
"""

from __future__ import annotations

import copy
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

MICROS = 1_000_000
#: the fake's answer has this many completion tokens (fewer if max_tokens says so)
COMPLETION_TOKENS = 8


def _model(model_id: str, name: str, prompt: str, completion: str, *, request: str = "0", tokenizer: str = "Other", context: int = 128_000) -> dict:
    return {
        "id": model_id,
        "canonical_slug": model_id,
        "name": name,
        "created": 1_720_000_000,
        "description": f"{name} (the fake OpenRouter's catalog)",
        "pricing": {"prompt": prompt, "completion": completion, "request": request, "image": "0"},
        "context_length": context,
        "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"], "tokenizer": tokenizer, "instruct_type": None},
        "top_provider": {"context_length": context, "max_completion_tokens": 16_384, "is_moderated": False},
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "top_p", "stop"],
        "default_parameters": None,
        "supported_voices": None,
        "links": {"details": f"/api/v1/models/{model_id}/endpoints"},
    }


CATALOG = [
    _model("openai/gpt-4o-mini", "OpenAI: GPT-4o-mini", "0.00000015", "0.0000006", tokenizer="GPT"),
    _model("anthropic/claude-3.5-haiku", "Anthropic: Claude 3.5 Haiku", "0.0000008", "0.000004", tokenizer="Claude", context=200_000),
    _model("purser/penny", "Purser: Penny (one cent a call)", "0", "0", request="0.01"),
]


def default_catalog() -> list[dict]:
    return copy.deepcopy(CATALOG)


def find(catalog: list[dict], model: str) -> dict | None:
    # OpenRouter accepts a model's slug or its canonical slug
    return next((m for m in catalog if model in (m["id"], m.get("canonical_slug"))), None)


def to_micros(usd: Any) -> int:
    return int((Decimal(str(usd)) * MICROS).to_integral_value(ROUND_HALF_UP))


def tokens(body: dict) -> tuple[int, int]:
    """(prompt, completion) tokens of a chat call: about four characters a token, as tokenizers go."""
    text = "".join(str(m.get("content", "")) for m in body.get("messages", []) if isinstance(m, dict))
    prompt = max(1, len(text) // 4)
    most = body.get("max_tokens") or body.get("max_completion_tokens") or COMPLETION_TOKENS
    return prompt, min(COMPLETION_TOKENS, int(most))


def cost_micros(model: dict, prompt_tokens: int, completion_tokens: int) -> int:
    pricing = model["pricing"]
    usd = Decimal(pricing.get("request", "0")) + Decimal(pricing["prompt"]) * prompt_tokens + Decimal(pricing["completion"]) * completion_tokens
    return to_micros(usd)
