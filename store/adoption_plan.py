"""Adopting an OpenRouter organisation, planned: what was read there, and what Purser would make of it.

``plan_import`` reads the store and changes nothing: the dry run prints its plan, and
store.adoption plans again, with the rows locked, before it carries the plan out.
Which OpenRouter workspace goes to which Purser workspace, which budget becomes the cap,
which keys are adopted and who owns them, and which guardrail becomes the model policy
are decided here; what stops the import is a ``Problem``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from store.errors import InvalidInput
from store.links import INTERVALS
from store.members import check_slack_user
from store.models import ApiKey, Member, Project, Workspace
from store.money import format_money
from store.policy import MAX_ENTRIES, OPEN, ModelPolicy, parse_model, parse_provider
from store.standing import may_hold_keys
from store.types import Environment, KeyStatus, MemberStatus, Period, WorkspaceStatus
from store.workspaces import SLUG

#: how Purser names its own keys and guardrails at OpenRouter: those are Purser's already
OURS = "purser-"
#: OpenRouter's budget interval as Purser's cap period (store.links.INTERVALS the other way)
PERIODS = {interval: period for period, interval in INTERVALS.items()}
#: a Purser workspace has one cap: of several OpenRouter budgets the month's is taken first,
#: the period Purser's caps have unless set otherwise
CAP_FIRST = ("monthly", "weekly", "daily", "lifetime")
#: a key's limit_reset that is a Purser key-limit period; a limit without one is left to the lease
RESETS = {"daily": Period.DAILY, "weekly": Period.WEEKLY, "monthly": Period.MONTHLY}
INVALID_NAME = re.compile(r"[^A-Za-z0-9._-]+")


# -- what was read at OpenRouter ---------------------------------------------------------------


@dataclass(frozen=True)
class OrgKey:
    hash: str
    name: str
    label: str  # what OpenRouter shows of the secret, like sk-or-v1-abc...xyz
    usage_micros: int
    limit_micros: int | None
    limit_reset: str | None
    disabled: bool
    expires_at: datetime | None = None


@dataclass(frozen=True)
class OrgBudget:
    interval: str  # daily, weekly, monthly or lifetime
    limit_micros: int


@dataclass(frozen=True)
class OrgGuardrail:
    id: str
    name: str
    models: tuple[str, ...] | None  # allowed_models; None: any
    providers: tuple[str, ...] | None  # allowed_providers; None: any
    zdr: bool
    keys: frozenset[str] | None  # the hashes it is assigned to; None: the workspace's default guardrail, over every key
    other_rules: tuple[str, ...] = ()  # what else it sets, which a model policy cannot carry

    @property
    def sets_policy(self) -> bool:
        return self.models is not None or self.providers is not None or self.zdr


@dataclass(frozen=True)
class OrgWorkspace:
    id: str
    slug: str
    name: str
    budgets: tuple[OrgBudget, ...] | None  # None: the organisation keeps none (OpenRouter answered 4xx)
    budgets_refused: str = ""  # that answer
    keys: tuple[OrgKey, ...] = ()
    guardrails: tuple[OrgGuardrail, ...] = ()


# -- the plan ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyAdoption:
    key: OrgKey
    name: str  # as Purser names it (its key names are stricter than OpenRouter's)
    limit_micros: int | None
    period: Period
    dropped_limit: bool = False  # a limit without a Purser period: the quota lease governs the key


@dataclass
class WorkspacePlan:
    org: OrgWorkspace
    slug: str  # the Purser workspace's
    how: str = ""  # "linked" (already), "link" (same slug), "create"; "" when skipped
    skipped: str | None = None
    workspace_id: int | None = None
    cap: tuple[int, Period] | None = None  # adopted from a budget
    mirror: bool = False  # Purser's own cap goes to OpenRouter as the budget, as linking does
    budgets_state: str | None = None  # what Purser learns of the organisation's budgets, when news
    keys: list[KeyAdoption] = field(default_factory=list)
    owner_joins: bool = False  # the owner becomes the new workspace's first Admin
    policy: ModelPolicy | None = None
    policy_from: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        if self.skipped is not None:
            return False
        return self.how in ("link", "create") or bool(self.cap or self.mirror or self.budgets_state or self.keys or self.policy)


@dataclass(frozen=True)
class Problem:
    """What stops the import: ``kind`` "owner" (none named), "member" (not one), "role" (a role without keys)."""

    kind: str
    workspace: str
    text: str


@dataclass
class ImportPlan:
    workspaces: list[WorkspacePlan]
    problems: list[Problem]
    owner: str | None
    environment: Environment

    @property
    def nothing(self) -> bool:
        return not any(w.changes for w in self.workspaces)


def plan_import(s: Session, org: list[OrgWorkspace], *, team_id: str, owner: str | None, environment: Environment | str, lock: bool = False) -> ImportPlan:
    """What importing ``org`` into the team would do; changes nothing (``lock``: hold the rows it read)."""
    if owner is not None:
        check_slack_user(owner)
    try:
        environment = Environment(environment)
    except ValueError:
        raise InvalidInput(f"“{environment}” is not an environment. Use production, staging or development.") from None
    query = select(Workspace).where(or_(Workspace.team_id == team_id, Workspace.provider_ref.in_([o.id for o in org]))).order_by(Workspace.id)
    spaces = list(s.scalars(query.with_for_update() if lock else query))
    known = _known_keys(s, [k.hash for o in org for k in o.keys])
    plan = ImportPlan([], [], owner, environment)
    for o in org:
        wp = WorkspacePlan(o, o.slug)
        plan.workspaces.append(wp)
        ws = _match(wp, spaces, team_id)
        if wp.skipped is None:
            _budgets(s, wp, ws)
            _keys(s, wp, ws, known, owner, plan.problems)
            _guardrails(wp, ws)
    return plan


def _known_keys(s: Session, hashes: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in (hashes[i : i + 1000] for i in range(0, len(hashes), 1000)):
        found.update(s.scalars(select(ApiKey.provider_ref).where(ApiKey.provider_ref.in_(chunk))))
    return found


def _match(wp: WorkspacePlan, spaces: list[Workspace], team_id: str) -> Workspace | None:
    """The Purser workspace linked to this OpenRouter workspace, or of its slug in the team (to link), or none (to create)."""
    o = wp.org
    linked = [w for w in spaces if w.provider_ref == o.id and w.status is not WorkspaceStatus.DELETED]
    if linked:
        wp.how, wp.slug, wp.workspace_id = "linked", linked[0].slug, linked[0].id
        if len(linked) > 1:
            wp.notes.append(f"`{'`, `'.join(w.slug for w in linked[1:])}` is linked to it too; its keys go to `{linked[0].slug}`.")
        return linked[0]
    same = next((w for w in spaces if w.team_id == team_id and w.slug == o.slug), None)
    if same is None:
        if SLUG.match(o.slug):
            wp.how = "create"
        else:
            wp.skipped = f"its slug is longer than a Purser workspace's 40 characters: link a Purser workspace to `{o.slug}`, then import again."
        return None
    if same.status is WorkspaceStatus.DELETED:
        wp.skipped = f"Purser's deleted workspace `{same.slug}` keeps that slug: link a Purser workspace of another slug to `{o.slug}`, then import again."
    elif same.provider_ref is not None:
        wp.skipped = f"Purser's `{same.slug}` is linked to another OpenRouter workspace (`{same.provider_slug}`)."
    elif same.provider == "openrouter" and same.provider_slug not in (None, o.slug):
        wp.skipped = f"Purser's `{same.slug}` is being linked to another OpenRouter workspace (`{same.provider_slug}`)."
    else:
        wp.how, wp.workspace_id = "link", same.id
        return same
    return None


def _budgets(s: Session, wp: WorkspacePlan, ws: Workspace | None) -> None:
    o = wp.org
    state = "unavailable" if o.budgets is None else "mirrored"
    if ws is None or ws.provider_ref != o.id or ws.provider_budgets != state:
        wp.budgets_state = state
    if o.budgets is None:
        if wp.budgets_state:
            wp.notes.append(f"OpenRouter keeps no workspace budgets for this organisation ({o.budgets_refused or 'it refused'}): the quota leases alone hold Purser's cap.")
        return
    held = {b.interval: b.limit_micros for b in o.budgets}
    shown = ", ".join(f"{i} {format_money(held[i])}" for i in CAP_FIRST if i in held) or "none"
    if ws is None or ws.cap_micros is None:
        pick = next((i for i in CAP_FIRST if i in held), None)
        if pick is None:
            return
        budgets = _project_budgets(s, ws) if ws is not None else 0
        if budgets > held[pick]:
            wp.notes.append(f"OpenRouter's {pick} budget of {format_money(held[pick])} is not adopted as the cap: the project budgets add up to {format_money(budgets)}, more than it.")
            return
        wp.cap = (held[pick], PERIODS[pick])
        for other in (i for i in CAP_FIRST if i in held and i != pick):
            wp.notes.append(f"OpenRouter's {other} budget of {format_money(held[other])} is not adopted: a Purser workspace has one cap, and OpenRouter's budget follows it (the {other} one is removed there).")
        return
    mine = INTERVALS[ws.cap_period]
    if held == {mine: ws.cap_micros}:
        return
    kept = f"Purser's cap of {format_money(ws.cap_micros)} ({mine}) is kept; OpenRouter's budgets ({shown}) differ, and Purser's is the one that counts"
    if wp.how == "linked":
        wp.notes.append(f"{kept}: its next change is mirrored there.")
    else:
        wp.mirror = True
        wp.notes.append(f"{kept}: it becomes OpenRouter's budget, as linking does.")


def _project_budgets(s: Session, ws: Workspace) -> int:
    return int(s.scalar(select(func.coalesce(func.sum(Project.budget_micros), 0)).where(Project.workspace_id == ws.id)) or 0)


def _keys(s: Session, wp: WorkspacePlan, ws: Workspace | None, known: set[str], owner: str | None, problems: list[Problem]) -> None:
    fresh = [k for k in wp.org.keys if k.hash not in known and not k.name.startswith(OURS)]
    strays = sum(1 for k in wp.org.keys if k.hash not in known and k.name.startswith(OURS))
    if strays:
        wp.notes.append(f"{strays} key(s) named {OURS}… are skipped: Purser names its own keys so (one left by an interrupted attempt is deleted when the attempt is retried).")
    if not fresh:
        return
    taken: set[str] = set()
    if owner is None:
        problems.append(Problem("owner", wp.slug, f"{len(fresh)} key(s) of the OpenRouter workspace `{wp.org.slug}` need an owner in Purser."))
    elif ws is None:
        wp.owner_joins = True
    else:
        member = s.scalars(select(Member).where(Member.workspace_id == ws.id, Member.slack_user_id == owner)).one_or_none()
        if member is None or member.status is not MemberStatus.ACTIVE:
            problems.append(Problem("member", ws.slug, f"{owner} is not a member of `{ws.slug}`, so cannot own its {len(fresh)} adopted key(s)."))
        elif not may_hold_keys(member.role):
            problems.append(Problem("role", ws.slug, f"{owner} is a {member.role.title} of `{ws.slug}`, a role without API keys, so cannot own its {len(fresh)} adopted key(s)."))
        else:
            taken = set(s.scalars(select(ApiKey.name).where(ApiKey.member_id == member.id, ApiKey.status != KeyStatus.REVOKED)))
    for k in fresh:
        period = RESETS.get(k.limit_reset or "")
        name = _name(k.name, taken)
        if k.limit_micros is not None and period is not None:
            wp.keys.append(KeyAdoption(k, name, k.limit_micros, period))
        else:
            wp.keys.append(KeyAdoption(k, name, None, Period.MONTHLY, dropped_limit=k.limit_micros is not None))


def _name(raw: str, taken: set[str]) -> str:
    """A Purser key name for an OpenRouter one: letters, digits, dots, dashes; unique among the owner's live keys."""
    base = INVALID_NAME.sub("-", raw).strip("-._")[:60] or "openrouter-key"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base[: 60 - len(str(n)) - 1]}-{n}"
    taken.add(name)
    return name


def _guardrails(wp: WorkspacePlan, ws: Workspace | None) -> None:
    """A guardrail over every adopted key becomes the workspace's model policy (when it has none)."""
    adopted = {ka.key.hash for ka in wp.keys}
    if not adopted:
        return
    covering: list[tuple[OrgGuardrail, ModelPolicy]] = []
    for g in wp.org.guardrails:
        if g.name.startswith(OURS):
            continue
        why = None
        if not g.sets_policy:
            why = "it restricts no model, provider or data retention, all a Purser model policy holds"
        elif g.keys is not None and not adopted <= g.keys:
            why = "assigned to some keys only (Purser's model policy is per workspace and project); those keys keep it at OpenRouter"
        elif g.other_rules:
            why = f"it also sets {', '.join(g.other_rules)}, which a Purser model policy cannot carry; its keys keep it at OpenRouter"
        else:
            try:
                covering.append((g, _policy(g)))
            except InvalidInput as exc:
                why = exc.message
        if why:
            wp.notes.append(f"guardrail `{g.name}`: not adopted: {why}")
    if not covering:
        return
    names = "`, `".join(g.name for g, _ in covering)
    if ws is not None and ModelPolicy.from_json(ws.model_policy) != OPEN:
        wp.notes.append(f"guardrail `{names}`: not adopted: `{ws.slug}` already has a model policy, and Purser's is the one that counts.")
    elif len(covering) > 1:
        wp.notes.append(f"guardrails `{names}`: not adopted: more than one applies to every key; set the model policy in Purser.")
    else:
        wp.policy_from, wp.policy = covering[0][0].name, covering[0][1]


def _policy(g: OrgGuardrail) -> ModelPolicy:
    def entries(values: tuple[str, ...] | None, parse, what: str) -> tuple[str, ...] | None:
        if values is None:
            return None
        out = tuple(dict.fromkeys(parse(v) for v in values))
        if len(out) > MAX_ENTRIES:
            raise InvalidInput(f"it lists more than {MAX_ENTRIES} {what}s, more than a Purser model policy holds")
        return out

    return ModelPolicy(entries(g.models, parse_model, "model"), entries(g.providers, parse_provider, "provider"), g.zdr)
