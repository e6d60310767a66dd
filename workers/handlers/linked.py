"""Workspaces linked to the provider's: the link itself, quota leases and model-policy guardrails."""

from __future__ import annotations

from store import outbox
from store.outbox import Claimed
from workers.runtime import Runtime


def rebalance_leases(rt: Runtime, a: Claimed) -> None:
    rt.db.run(outbox.complete, a.id)


def apply_model_policy(rt: Runtime, a: Claimed) -> None:
    rt.db.run(outbox.complete, a.id)


def link_workspace(rt: Runtime, a: Claimed) -> None:
    rt.db.run(outbox.complete, a.id)
