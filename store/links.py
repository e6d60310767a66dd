"""Linking a Purser workspace to an OpenRouter workspace, and what the link learned.

Linking is asked for here (an Admin, or the operator) and carried out by a worker
(workers/handlers/linked.py): it finds the OpenRouter workspace by slug and adopts it, or
creates it, then mirrors the cap as its budget where the organisation has workspace
budgets. New keys are made there; the keys made before stay where they are.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import Conflict, InvalidInput
from store.models import Project, Workspace
from store.permissions import Actor
from store.types import ActionKind, Period
from store.workspaces import _configure

#: OpenRouter's workspace slug (its CreateWorkspaceRequest schema)
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
#: Purser's cap period as OpenRouter's budget interval
INTERVALS = {Period.DAILY: "daily", Period.WEEKLY: "weekly", Period.MONTHLY: "monthly", Period.NONE: "lifetime"}


def link_workspace(s: Session, actor: Actor, workspace_id: int, slug: str | None = None) -> Workspace:
    """Put the workspace on OpenRouter, linked to the OpenRouter workspace ``slug`` (default: its own slug)."""
    ws, _ = _configure(s, actor, workspace_id, "workspace.link")
    slug = (slug or ws.slug).strip().lower()
    if not SLUG.match(slug) or len(slug) > 50:
        raise InvalidInput(f"“{slug[:60]}” is not an OpenRouter workspace slug: use lowercase letters, digits and single dashes, at most 50.")
    if ws.provider_ref and ws.provider_slug == slug:
        raise Conflict(f"`{ws.slug}` is already linked to the OpenRouter workspace `{slug}`.")
    before = {"provider": ws.provider, "linked_to": ws.provider_slug}
    ws.provider, ws.provider_slug, ws.provider_ref, ws.provider_budgets = "openrouter", slug, None, None
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="workspace.link", resource=f"workspace:{ws.slug}", details={**before, "to": slug})
    outbox.emit(s, ActionKind.LINK_WORKSPACE, workspace_id=ws.id, payload={"slug": slug})
    return ws


def linked(s: Session, workspace_id: int, slug: str, provider_ref: str, *, adopted: bool) -> Workspace | None:
    """Store the OpenRouter workspace found or made for ``slug`` (unless the link moved on meanwhile)."""
    ws = s.get(Workspace, workspace_id, with_for_update=True)
    if ws.provider_slug != slug:
        return None
    ws.provider_ref = provider_ref
    audit.record(
        s,
        workspace_id=ws.id,
        actor="system:worker",
        action="workspace.linked",
        resource=f"workspace:{ws.slug}",
        details={"openrouter_workspace": provider_ref, "slug": slug, "adopted": adopted},
    )
    return ws


def budgets_learned(s: Session, workspace_id: int, state: str) -> bool:
    """Whether the organisation keeps workspace budgets ("mirrored") or has none ("unavailable").

    Returns True when this is news — the first time it is learned, or a change — so the
    workspace is told once, not at every cap change.
    """
    ws = s.get(Workspace, workspace_id, with_for_update=True)
    if ws.provider_budgets == state:
        return False
    ws.provider_budgets = state
    audit.record(s, workspace_id=ws.id, actor="system:worker", action="workspace.provider_budgets", resource=f"workspace:{ws.slug}", details={"state": state})
    return True


def cap_to_mirror(ws: Workspace) -> tuple[str, int] | None:
    """The OpenRouter budget the cap becomes: (interval, limit), or None to keep none."""
    if ws.cap_micros is None:
        return None
    return INTERVALS[ws.cap_period], ws.cap_micros


def guardrail_made(s: Session, workspace_id: int, project_id: int | None, guardrail_ref: str) -> None:
    """The guardrail carrying a project's policy (or the workspace's, for keys outside projects)."""
    ws = s.get(Workspace, workspace_id, with_for_update=True)
    proj = s.get(Project, project_id, with_for_update=True) if project_id else None
    (proj if proj is not None else ws).provider_guardrail_ref = guardrail_ref
    audit.record(
        s,
        workspace_id=ws.id,
        actor="system:worker",
        action="policy.guardrail",
        resource=f"project:{proj.slug}" if proj is not None else f"workspace:{ws.slug}",
        details={"guardrail": guardrail_ref},
    )
