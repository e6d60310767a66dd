"""Adopting an existing OpenRouter organisation: its workspaces, budgets, keys and guardrails.

`purser openrouter import` reads the organisation (purser/adoption.py, GETs only) and hands
what it read to the store as plain figures (``OrgWorkspace`` …). ``plan_import``
(store/adoption_plan.py) says what the import would do and changes nothing: the dry run
prints it. ``adopt``, here, plans again in its
one transaction, with the Purser workspaces it reads locked, and carries the plan out —
each Purser workspace it touches gets an ``openrouter.import`` audit event and a
rebalance of its quota leases, so the adopted keys' limits at OpenRouter become leases
at once. What it adopted is Purser's from then on, so a second import adopts nothing.

Purser never learns an adopted key's secret. Its ``secret_hash`` is a marker no sha256
of a secret can equal (it is not 64 hex digits), so neither /v1/authz nor /v1/usage can
ever find the key by a secret; the key is known by its OpenRouter hash (``provider_ref``).
Its usage so far is its synced usage: past spend is not counted as new spend.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.adoption_plan import ImportPlan, OrgWorkspace, WorkspacePlan, plan_import
from store.budgets import apply_cap
from store.errors import InvalidInput
from store.members import add_member
from store.models import ApiKey, Member, Workspace
from store.permissions import Actor
from store.policy import apply_policy
from store.types import ActionKind, Environment, KeyStatus, Role
from store.workspaces import create_workspace


def adopt(s: Session, actor: Actor, org: list[OrgWorkspace], *, team_id: str, owner: str | None, environment: Environment | str) -> ImportPlan:
    """Carry out the plan in this transaction; refused, changing nothing, while it has problems."""
    plan = plan_import(s, org, team_id=team_id, owner=owner, environment=environment, lock=True)
    if plan.problems:
        raise InvalidInput(" ".join(p.text for p in plan.problems) + " Nothing was imported: name as owner an active member who may hold keys.")
    for wp in plan.workspaces:
        if wp.changes:
            _carry_out(s, actor, plan, wp, team_id)
    return plan


def adopted_secret_hash(key_hash: str) -> str:
    """What stands for an adopted key's secret hash: unique, and never a sha256 hex digest (so no secret finds it)."""
    return "openrouter:" + hashlib.sha256(f"openrouter-hash:{key_hash}".encode()).hexdigest()[:53]


def _carry_out(s: Session, actor: Actor, plan: ImportPlan, wp: WorkspacePlan, team_id: str) -> None:
    o = wp.org
    if wp.how == "create":
        ws = create_workspace(s, actor, slug=o.slug, name=o.name, environment=plan.environment, team_id=team_id)
        wp.workspace_id = ws.id
    else:
        ws = s.get(Workspace, wp.workspace_id)
    before = {"provider": ws.provider, "linked_to": ws.provider_slug, "budgets": ws.provider_budgets}
    ws.provider, ws.provider_slug, ws.provider_ref = "openrouter", o.slug, o.id
    if wp.budgets_state:
        ws.provider_budgets = wp.budgets_state
    made: list[ApiKey] = []
    if wp.keys:
        if wp.owner_joins:
            member = add_member(s, actor, ws.id, role=Role.ADMIN, slack_user_id=plan.owner, why="owns the keys adopted from OpenRouter")
        else:
            member = s.scalars(select(Member).where(Member.workspace_id == ws.id, Member.slack_user_id == plan.owner)).one()
        for ka in wp.keys:
            k = ka.key
            made.append(
                ApiKey(
                    workspace_id=ws.id,
                    member_id=member.id,
                    name=ka.name,
                    prefix=(k.label or "openrouter")[:24],
                    secret_hash=adopted_secret_hash(k.hash),
                    provider="openrouter",
                    provider_ref=k.hash,
                    limit_micros=ka.limit_micros,
                    limit_period=ka.period,
                    expires_at=k.expires_at,
                    status=KeyStatus.DISABLED if k.disabled else KeyStatus.ACTIVE,
                    status_reason="disabled at OpenRouter before the import" if k.disabled else None,
                    # Its spend so far is OpenRouter's past, not new spend; the sync counts from here.
                    synced_usage_micros=k.usage_micros,
                    # Unbounded until the first rebalance shrinks it to a lease: never below its limit there.
                    lease_ceiling_micros=None,
                )
            )
        s.add_all(made)
        s.flush()
    audit.record(
        s,
        workspace_id=ws.id,
        actor=actor.label,
        action="openrouter.import",
        resource=f"workspace:{ws.slug}",
        details={
            "openrouter_workspace": o.id,
            "slug": o.slug,
            "how": wp.how,
            "before": before,
            "budgets": wp.budgets_state,
            "cap": None if wp.cap is None else {"cap_micros": wp.cap[0], "period": wp.cap[1].value},
            "keys": [{"key": key.id, "name": key.name, "openrouter_key": key.provider_ref, "usage_micros": key.synced_usage_micros, "limit_micros": key.limit_micros} for key in made],
            "owner": plan.owner if made else None,
            "model_policy_from": wp.policy_from or None,
        },
    )
    if wp.cap:
        apply_cap(s, actor, ws, wp.cap[0], wp.cap[1])  # audited; OpenRouter's budget follows it (APPLY_CAP)
    elif wp.mirror:
        outbox.emit(s, ActionKind.APPLY_CAP, workspace_id=ws.id, payload={"workspace_id": ws.id})
    if wp.policy is not None:
        apply_policy(s, actor.label, ws, None, wp.policy, "policy.adopt")  # Purser's guardrail takes the keys over
    outbox.emit(s, ActionKind.REBALANCE_LEASES, workspace_id=ws.id)
