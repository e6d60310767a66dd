"""May this key make this call now? The answer a gateway gets, from the store's state.

The web process caches ``KeyState`` per secret hash and asks ``decide`` on every call;
``load_key_state`` is the only query, and runs on a cache miss.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, lazyload

from store.models import ApiKey, AuthzRefusal, Member, Project, Workspace
from store.money import format_money
from store.periods import period_start
from store.policy import OPEN, ModelPolicy, effective, qualify, refusal
from store.standing import KeyStanding, effective_budget, key_itself, key_standing, project_hold_now, workspace_hold_now
from store.totals import spent
from store.types import Period, Scope, WorkspaceStatus, utcnow


@dataclass(frozen=True)
class KeyState:
    key_id: int
    key_name: str
    workspace_id: int
    workspace: str
    project_id: int | None
    project: str | None
    member: str
    usable: str | None  # why the key itself cannot be used (revoked, disabled, owner_removed, owner_role …), else None
    usable_message: str
    expires_at: datetime | None
    workspace_paused: str | None  # "cap" | "credit" | None
    project_paused: str | None  # the reason, when paused
    project_paused_by: str | None  # "budget" | "manual"
    project_budget: int | None
    key_limit_spent: bool
    key_limit: int | None
    allowlist: tuple = ()  # ip_network objects
    models: ModelPolicy = OPEN  # the key's effective model policy: part of the cached state, so a change drops it with the rest


def load_key_state(s: Session, secret_hash: str) -> KeyState | None:
    row = s.execute(
        select(ApiKey, Member, Workspace, Project)
        .join(Member, Member.id == ApiKey.member_id)
        .join(Workspace, Workspace.id == ApiKey.workspace_id)
        .outerjoin(Project, Project.id == ApiKey.project_id)
        .where(ApiKey.secret_hash == secret_hash)
        .options(lazyload("*"))
    ).one_or_none()
    if row is None:
        return None
    key, member, ws, proj = row
    # Standing from the facts (store.standing), not from the pause flags: a path that forgot
    # to pause or resume cannot open or close a key here.
    itself = key_itself(key.status, member.status, member.role, ws.status is WorkspaceStatus.DELETED)
    limit_spent = key.limit_micros is not None and spent(s, Scope.KEY, key.id, key.limit_period) >= key.limit_micros
    hold = workspace_hold_now(s, ws)
    project = project_hold_now(s, proj) if proj is not None else None
    return KeyState(
        key_id=key.id,
        key_name=key.name,
        workspace_id=ws.id,
        workspace=ws.slug,
        project_id=proj.id if proj else None,
        project=proj.slug if proj else None,
        member=member.slack_user_id or member.email or str(member.id),
        usable=itself.reason,
        usable_message=itself.message,
        expires_at=key.expires_at,
        workspace_paused=hold,
        project_paused=(proj.paused_reason if project == "manual" else "budget spent") if project else None,
        project_paused_by=project,
        project_budget=(effective_budget(s, proj) if project == "budget" else proj.budget_micros) if proj else None,
        key_limit_spent=limit_spent,
        key_limit=key.limit_micros,
        allowlist=tuple(ipaddress.ip_network(c, strict=False) for c in (ws.ip_allowlist or [])),
        models=effective(ws, proj),
    )


@dataclass(frozen=True)
class Decision:
    status: int  # 200, 401, 402 or 403
    reason: str  # a short machine word: ok, unknown_key, revoked, expired, ip_not_allowed, wrong_project, model_not_allowed, project_budget, workspace_cap, credit_pool, key_limit, project_paused
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    state: KeyState | None = None


def decide(state: KeyState | None, client_ip: str | None, project_tag: str | None, now: datetime | None = None, *, model: str | None = None) -> Decision:
    """The order matters: who you are (401), where you are and what you ask for (403), whether money is left (402).

    ``model`` is what the gateway says the call names (``X-Purser-Model``); without it the
    model policy is not checked here, so a gateway that cannot read the body keeps working.
    """
    if state is None:
        return Decision(401, "unknown_key", "Unknown API key.")
    refuse = lambda status, reason, message: Decision(status, reason, message, {"X-Purser-Refusal": reason}, state)  # noqa: E731
    # The lease is judged now, not when the state was cached: a key stops at its end to the second.
    standing = key_standing(KeyStanding(state.usable, state.usable_message), state.expires_at, now or utcnow())
    if not standing.usable:
        return refuse(401, standing.reason, standing.message.replace("ask for a new key.", "ask for a new one with /ai-key new."))
    if state.allowlist:
        address = _address(client_ip)
        if address is None or not any(address in net for net in state.allowlist):
            return refuse(403, "ip_not_allowed", "Calls from this address are not allowed for this key's workspace.")
    if project_tag and project_tag.strip().lower() != (state.project or ""):
        # Names nothing beyond the caller's own key: the tag may be another workspace's project.
        return refuse(403, "wrong_project", "This key does not belong to the project named in X-Purser-Project.")
    if model and model.strip() and state.models.restricts_models:
        why = refusal(state.models, model[:200])
        if why is not None:
            return refuse(403, "model_not_allowed", _model_refusal(state, model, why))
    if state.workspace_paused == "cap":
        return refuse(402, "workspace_cap", f"The spending cap of {state.workspace} is spent. An Admin can raise it: /ai-budget cap $N -w {state.workspace}")
    if state.workspace_paused == "credit":
        return refuse(402, "credit_pool", f"The credit pool of {state.workspace} is empty. A Billing Manager or Admin can add credit: /ai-credits add $N -w {state.workspace}")
    if state.project_paused is not None:
        if state.project_paused_by == "budget":
            budget = format_money(state.project_budget) if state.project_budget is not None else "its budget"
            return refuse(
                402,
                "project_budget",
                f"Project {state.project} has spent its budget of {budget}. An Admin can raise it: /ai-budget set {state.project} $N -w {state.workspace}, "
                # No double quotes: gateways set this header into a JSON string as it is (docs/gateway/nginx.conf).
                f"or for a while: /ai-budget raise {state.project} +$N --for 3d --reason why -w {state.workspace}",
            )
        return refuse(403, "project_paused", f"Project {state.project} is paused by an admin: {state.project_paused}")
    if state.key_limit_spent:
        return refuse(402, "key_limit", f"This key has spent its own limit of {format_money(state.key_limit or 0)} for the period. Its owner can ask for a higher limit with a new key.")
    headers = {
        "X-Purser-Workspace": state.workspace,
        "X-Purser-Project": state.project or "",
        "X-Purser-Key": str(state.key_id),
        "X-Purser-Member": state.member,
    }
    return Decision(200, "ok", "", headers, state)


def _model_refusal(state: KeyState, model: str, why: str) -> str:
    shown = model.strip()[:80]
    where = f"project {state.project}" if state.project else f"workspace {state.workspace}"
    ask = f"/ai-models request {qualify(shown)}" + (f" --project {state.project}" if state.project else "") + f' -w {state.workspace} --reason "..."'
    return f"Model {shown} is not allowed for keys of {where}: {why}. Ask an Admin for it in Slack: {ask}"


def _address(client_ip: str | None):
    try:
        return ipaddress.ip_address((client_ip or "").strip())
    except ValueError:
        return None


def record_refusals(s: Session, counts: Counter, now: datetime | None = None) -> int:
    """Add counted refusals ((workspace_id, key_id, reason) → n) to today's tallies."""
    if not counts:
        return 0
    day = period_start(Period.DAILY, now or utcnow())
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(AuthzRefusal)
    stmt = stmt.on_conflict_do_update(index_elements=["day", "workspace_id", "key_id", "reason"], set_={"count": AuthzRefusal.count + stmt.excluded.count})
    rows = [{"day": day, "workspace_id": w, "key_id": k, "reason": r, "count": n} for (w, k, r), n in sorted(counts.items())]
    s.execute(stmt, rows)
    return sum(counts.values())


def refusals_between(s: Session, workspace_id: int, since: datetime, until: datetime) -> list[tuple[str, str, int]]:
    """(key name, reason, count) refused at the gateway in a window, most first."""
    rows = s.execute(
        select(ApiKey.name, AuthzRefusal.reason, AuthzRefusal.count)
        .join(ApiKey, ApiKey.id == AuthzRefusal.key_id)
        .where(AuthzRefusal.workspace_id == workspace_id, AuthzRefusal.day >= period_start(Period.DAILY, since), AuthzRefusal.day < until)
    ).all()
    totals: Counter = Counter()
    for name, reason, count in rows:
        totals[(name, reason)] += count
    return [(name, reason, n) for (name, reason), n in totals.most_common()]
