"""Workspaces linked to OpenRouter's: the link itself, the cap as its budget, leases and guardrails."""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.blocks import alerts as blocks
from store import links, outbox
from store.policy import OPEN, effective
from store.models import ApiKey, Project, Workspace
from store.outbox import Claimed
from store.types import KeyStatus
from workers import quota
from workers.handlers import completes
from workers.providers.base import PermanentProviderError
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def rebalance_leases(rt: Runtime, a: Claimed) -> None:
    """A budget, pool or key changed: bring the workspace's leases in line at once."""
    quota.rebalance(rt, a.workspace_id)
    rt.db.run(outbox.complete, a.id)


def apply_cap(rt: Runtime, a: Claimed) -> None:
    """A new cap: OpenRouter's workspace budget follows it where the organisation has them; the leases at once."""
    news = mirror_cap(rt, a.workspace_id)
    quota.rebalance(rt, a.workspace_id)
    if news == "unavailable":
        with rt.db.session() as s:
            slug = s.get(Workspace, a.workspace_id).slug
        _tell(rt, a, blocks.budgets_notice(slug))
    else:
        rt.db.run(outbox.complete, a.id)


def link_workspace(rt: Runtime, a: Claimed) -> None:
    """Adopt the OpenRouter workspace of this slug, or create it; then mirror the cap."""
    slug = a.payload["slug"]
    with rt.db.session() as s:
        ws = s.get(Workspace, a.workspace_id)
        name, ours, current = ws.name, ws.slug, ws.provider_slug
    if current != slug:  # linked elsewhere since: that link's own action carries it out
        rt.db.run(outbox.complete, a.id)
        return
    provider = rt.provider("openrouter")
    found = provider.find_workspace(slug)
    made = found or provider.create_workspace(name=name[:100], slug=slug)
    if rt.db.run(links.linked, a.workspace_id, slug, made["id"], adopted=found is not None) is None:
        rt.db.run(outbox.complete, a.id)
        return
    mirror_cap(rt, a.workspace_id)
    with rt.db.session() as s:
        budgets = s.get(Workspace, a.workspace_id).provider_budgets
    _tell(rt, a, blocks.linked(ours, slug, found is not None, budgets))


def mirror_cap(rt: Runtime, workspace_id: int) -> str | None:
    """Keep the cap as the linked OpenRouter workspace's budget; returns the budgets' state when it is news.

    An organisation without workspace budgets answers 4xx: that is learned once, and the
    cap is then held by the leases alone (store.links.budgets_learned).
    """
    with rt.db.session() as s:
        ws = s.get(Workspace, workspace_id)
        ref, state, want = ws.provider_ref, ws.provider_budgets, links.cap_to_mirror(ws)
        on_openrouter = ws.provider == "openrouter"
    if not on_openrouter or ref is None or state == "unavailable":
        return None
    provider = rt.provider("openrouter")
    try:
        for interval in sorted(set(links.INTERVALS.values()) - ({want[0]} if want else set())):
            provider.delete_workspace_budget(ref, interval)  # a cap period changed: the old interval's budget goes
        if want is not None:
            provider.put_workspace_budget(ref, want[0], want[1])
    except PermanentProviderError as exc:
        if getattr(exc, "status", None) not in (400, 402, 403, 404):
            raise
        log.info("OpenRouter keeps no workspace budgets for this organisation (%s): the leases hold the cap", exc)
        return "unavailable" if rt.db.run(links.budgets_learned, workspace_id, "unavailable") else None
    return "mirrored" if rt.db.run(links.budgets_learned, workspace_id, "mirrored") else None


def apply_model_policy(rt: Runtime, a: Claimed) -> None:
    """One guardrail per project (and one for keys outside projects) carries the policy to its keys."""
    workspace_id, project_id = a.workspace_id, a.payload.get("project_id")
    with rt.db.session() as s:
        ws = s.get(Workspace, workspace_id)
        proj = s.get(Project, project_id) if project_id else None
        policy = effective(ws, proj)
        guardrail = proj.provider_guardrail_ref if proj is not None else ws.provider_guardrail_ref
        linked_ref, name = ws.provider_ref, f"purser-{ws.slug}" + (f"-{proj.slug}" if proj is not None else "")
        hashes = list(
            s.scalars(
                select(ApiKey.provider_ref).where(
                    ApiKey.workspace_id == workspace_id,
                    ApiKey.project_id == project_id if project_id else ApiKey.project_id.is_(None),
                    ApiKey.provider == "openrouter",
                    ApiKey.status != KeyStatus.REVOKED,
                    ApiKey.provider_ref.is_not(None),
                )
            )
        )
        on_openrouter = ws.provider == "openrouter" or bool(hashes)
    # None lists allow every model; an empty one allows none (the provider refuses to send that: a guardrail cannot say it)
    fields = {
        "allowed_models": None if policy.models is None else list(policy.models),
        "allowed_providers": None if policy.providers is None else list(policy.providers),
        "enforce_zdr": policy.zdr,
    }
    if not on_openrouter or (guardrail is None and policy == OPEN):
        rt.db.run(outbox.complete, a.id)  # nothing to carry: every model is allowed, and no guardrail exists
        return
    provider = rt.provider("openrouter")
    if guardrail is None:
        # An earlier attempt may have made it and died before storing it: it carries this name.
        same = [g for g in provider.list_guardrails(workspace_id=linked_ref) if g.get("name") == name]
        guardrail = same[0]["id"] if same else provider.create_guardrail(name=name, workspace_id=linked_ref, **fields)["id"]
        rt.db.run(links.guardrail_made, workspace_id, project_id, guardrail)
    else:
        provider.update_guardrail(guardrail, **fields)
    if hashes:
        provider.assign_guardrail_keys(guardrail, hashes)
    rt.db.run(outbox.complete, a.id)


def _tell(rt: Runtime, a: Claimed, text_blocks) -> None:
    with rt.db.session() as s:
        channel = s.get(Workspace, a.workspace_id).alerts_channel
    if rt.slack is not None and channel:
        text, message = text_blocks
        rt.slack.post(f"action:{a.id}", channel, text, message, also=completes(a))
    else:
        rt.db.run(outbox.complete, a.id)
