"""The models a workspace's keys can call, as `/ai-models` lists them, filtered by the model policy.

A catalog is a list of dicts shaped like OpenRouter's ``GET /models`` items: at least
``id``, ``name`` and ``pricing`` (``{"prompt": "0.0000025", "completion": "0.00001"}``, USD
per token as strings). A workspace on the local provider lists the models of Purser's price
table (store.pricing); one on OpenRouter, OpenRouter's (read by a worker: it needs the network).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from store.policy import ModelPolicy, allows, qualify
from store.pricing import prices

_PER_MILLION = Decimal(1_000_000)


def price_file_models() -> list[dict[str, Any]]:
    """The price table's models, named as a policy names them (``gpt-4o`` is ``openai/gpt-4o``)."""
    return [
        {"id": qualify(name), "name": name, "pricing": {"prompt": str(prompt / _PER_MILLION), "completion": str(completion / _PER_MILLION)}}
        for name, (prompt, completion) in sorted(prices().items())
    ]


@dataclass(frozen=True)
class Listing:
    allowed: list[dict[str, Any]]  # by id
    total: int  # how many the catalog holds, allowed or not


def filtered(policy: ModelPolicy, catalog: list[dict[str, Any]]) -> Listing:
    """What the policy allows of a catalog; items without a usable id are left out."""
    usable = [item for item in catalog if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"].strip()]
    allowed = [item for item in usable if allows(policy, item["id"], zdr_capable=_zdr(item))]
    return Listing(sorted(allowed, key=lambda item: item["id"]), len(usable))


def _zdr(item: dict[str, Any]) -> bool | None:
    # OpenRouter's list does not say per model; a catalog that does is believed, else it is not known.
    value = item.get("zdr")
    return value if isinstance(value, bool) else None
