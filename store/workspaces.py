"""Workspaces: creating them, their settings, the role templates and channel bindings.

Deleting one is store.workspace_deletion: it revokes keys, and store.keys reads the
role templates here, so this module stays below store.keys.
"""

from __future__ import annotations

import ipaddress
import re

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from store import audit, outbox
from store.errors import LIST_WORKSPACES, Conflict, InvalidInput, NotFound, PermissionDenied
from store.models import ChannelBinding, Member, RoleTemplate, Workspace
from store.periods import parse_period
from store.permissions import Actor, Permission, authorize, denial, load_workspace, membership
from store.types import ActionKind, Environment, KeyPolicy, MemberStatus, Period, Role, WorkspaceStatus

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,31}$")
DEFAULT_TEAM = "local"
PROVIDERS = ("local", "openrouter")  # names workers.providers.get_provider knows

#: presets a new workspace starts with; admins change them with set_role_template
DEFAULT_TEMPLATES = {
    Role.ADMIN: (200_000_000, Period.MONTHLY, None),
    Role.DEVELOPER: (50_000_000, Period.MONTHLY, 90),
}


def check_slug(slug: str, what: str = "workspace") -> str:
    slug = slug.strip().lower()
    if not SLUG.match(slug):
        raise InvalidInput(f"“{slug[:40]}” cannot name a {what}: use 1–40 lowercase letters, digits and dashes, like `search-bot`.")
    return slug


def parse_policy(policy: KeyPolicy | str) -> KeyPolicy:
    try:
        return KeyPolicy(policy)
    except ValueError:
        raise InvalidInput(f"“{str(policy)[:20]}” is not a key policy. Use `approval` (an admin decides each key) or `auto` (approved at once within the role's preset).") from None


def create_workspace(
    s: Session,
    actor: Actor,
    *,
    slug: str,
    name: str | None = None,
    environment: Environment | str = Environment.DEVELOPMENT,
    team_id: str = DEFAULT_TEAM,
    key_policy: KeyPolicy | str | None = None,
    provider: str = "local",
) -> Workspace:
    """Make a workspace. Purser's operator may always; from Slack, an admin of another workspace of the same team."""
    slug = check_slug(slug)
    if provider not in PROVIDERS:
        raise InvalidInput(f"“{provider[:20]}” is not a key provider. Use {' or '.join(PROVIDERS)}.")
    try:
        environment = Environment(environment)
    except ValueError:
        raise InvalidInput(f"“{environment}” is not an environment. Use production, staging or development.") from None
    creator: Member | None = None
    if not actor.is_system:
        creator = s.scalars(
            select(Member)
            .join(Workspace)
            .where(
                Member.slack_user_id == actor.slack_user_id,
                Member.role == Role.ADMIN,
                Member.status == MemberStatus.ACTIVE,
                Workspace.team_id == team_id,
                Workspace.status != WorkspaceStatus.DELETED,
            )
            .limit(1)
        ).first()
        if creator is None:
            raise PermissionDenied("Only an Admin of one of this team's workspaces can create a workspace.", needed=("admin",))
    if s.scalars(select(Workspace.id).where(Workspace.team_id == team_id, Workspace.slug == slug)).first():
        raise Conflict(f"A workspace called `{slug}` already exists. Pick another name.")
    policy = parse_policy(key_policy) if key_policy else (KeyPolicy.AUTO if environment is Environment.DEVELOPMENT else KeyPolicy.APPROVAL)
    ws = Workspace(
        team_id=team_id,
        slug=slug,
        name=(name or slug).strip()[:120],
        environment=environment,
        key_policy=policy,
        provider=provider,
        cap_period=Period.MONTHLY,
        alert_thresholds=[50, 80, 100],
        ip_allowlist=[],
    )
    s.add(ws)
    s.flush()
    audit.start_chain(s, ws.id)
    for role, (limit, period, lifetime) in DEFAULT_TEMPLATES.items():
        s.add(RoleTemplate(workspace_id=ws.id, role=role, key_limit_micros=limit, limit_period=period, key_lifetime_days=lifetime))
    audit.record(
        s,
        workspace_id=ws.id,
        actor=actor.label,
        action="workspace.create",
        resource=f"workspace:{slug}",
        details={"environment": environment.value, "key_policy": policy.value, "team_id": team_id, "provider": provider},
    )
    if creator is not None:
        s.add(Member(workspace_id=ws.id, slack_user_id=creator.slack_user_id, email=creator.email, role=Role.ADMIN))
        audit.record(s, workspace_id=ws.id, actor=actor.label, action="member.add", resource=f"member:{creator.slack_user_id}", details={"role": "admin", "why": "created the workspace"})
    s.flush()
    return ws


def list_workspaces(s: Session, *, team_id: str | None = None, slack_user_id: str | None = None) -> list[Workspace]:
    stmt = select(Workspace).where(Workspace.status != WorkspaceStatus.DELETED).order_by(Workspace.slug)
    if team_id is not None:
        stmt = stmt.where(Workspace.team_id == team_id)
    if slack_user_id is not None:
        stmt = stmt.join(Member).where(Member.slack_user_id == slack_user_id, Member.status == MemberStatus.ACTIVE)
    return list(s.scalars(stmt))


def find_workspace(s: Session, slug: str, team_id: str = DEFAULT_TEAM) -> Workspace:
    ws = s.scalars(
        select(Workspace).where(Workspace.team_id == team_id, Workspace.slug == slug.strip().lower(), Workspace.status != WorkspaceStatus.DELETED)
    ).one_or_none()
    if ws is None:
        raise NotFound(f"There is no workspace called `{slug[:40]}`.", see=LIST_WORKSPACES)
    return ws


def _configure(s: Session, actor: Actor, workspace_id: int, attempted: str) -> tuple[Workspace, Member | None]:
    ws = load_workspace(s, workspace_id, lock=True)
    member = authorize(s, actor, ws, Permission.CONFIGURE, resource=f"workspace:{ws.slug}", attempted=attempted)
    return ws, member


def set_key_policy(s: Session, actor: Actor, workspace_id: int, policy: KeyPolicy | str) -> Workspace:
    policy = parse_policy(policy)
    ws, _ = _configure(s, actor, workspace_id, "workspace.policy")
    old, ws.key_policy = ws.key_policy, policy
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="workspace.policy", resource=f"workspace:{ws.slug}", details={"from": old.value, "to": policy.value})
    return ws


def set_channels(
    s: Session,
    actor: Actor,
    workspace_id: int,
    *,
    approvals: str | None = None,
    alerts: str | None = None,
    audit_channel: str | None = None,
) -> Workspace:
    ws, _ = _configure(s, actor, workspace_id, "workspace.channels")
    changes = {}
    for field, value in (("approvals_channel", approvals), ("alerts_channel", alerts), ("audit_channel", audit_channel)):
        if value is None:
            continue
        if not CHANNEL.match(value):
            if value.startswith("#"):
                raise InvalidInput(
                    f"“{value[:40]}” reached Purser as plain text, not as a link to a channel. Type # and pick the channel "
                    "from Slack's list (it turns into a link), or give its id (C…, in the channel's details)."
                )
            raise InvalidInput(f"“{value[:40]}” is not a Slack channel (a link made by picking it after #, or an id like C0123ABCD).")
        changes[field] = {"from": getattr(ws, field), "to": value}
        setattr(ws, field, value)
    if not changes:
        raise InvalidInput("Name at least one channel: approvals=#channel, alerts=#channel or audit=#channel.")
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="workspace.channels", resource=f"workspace:{ws.slug}", details=changes)
    return ws


def parse_cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise InvalidInput(f"“{text[:50]}” is not an IP address or CIDR range (like 203.0.113.0/24 or 2001:db8::/32).") from None


def add_allowlist(s: Session, actor: Actor, workspace_id: int, cidr: str) -> Workspace:
    network = parse_cidr(cidr)
    ws, _ = _configure(s, actor, workspace_id, "workspace.allowlist_add")
    if network in ws.ip_allowlist:
        raise Conflict(f"{network} is already on the allowlist.")
    ws.ip_allowlist = [*ws.ip_allowlist, network]
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="workspace.allowlist_add", resource=f"workspace:{ws.slug}", details={"cidr": network})
    outbox.emit(s, ActionKind.REFRESH_AUTHZ, workspace_id=ws.id)
    return ws


def remove_allowlist(s: Session, actor: Actor, workspace_id: int, cidr: str) -> Workspace:
    network = parse_cidr(cidr)
    ws, _ = _configure(s, actor, workspace_id, "workspace.allowlist_remove")
    if network not in ws.ip_allowlist:
        raise InvalidInput(f"{network} is not on the allowlist. It holds: {', '.join(ws.ip_allowlist) or 'nothing (every address is allowed)'}.")
    ws.ip_allowlist = [c for c in ws.ip_allowlist if c != network]
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="workspace.allowlist_remove", resource=f"workspace:{ws.slug}", details={"cidr": network})
    outbox.emit(s, ActionKind.REFRESH_AUTHZ, workspace_id=ws.id)
    return ws


def show_allowlist(s: Session, actor: Actor, workspace_id: int) -> Workspace:
    """The workspace with its allowlist, for its members' eyes only."""
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.VIEW_OWN_USAGE, resource=f"workspace:{ws.slug}", attempted="allowlist.show")
    return ws


def set_thresholds(s: Session, actor: Actor, workspace_id: int, thresholds: list[int]) -> Workspace:
    message = "Alert thresholds are whole percentages from 1 to 100, like 50,80,100."
    try:
        cleaned = sorted({int(t) for t in thresholds})
    except (TypeError, ValueError):
        raise InvalidInput(message) from None
    if not cleaned or any(t < 1 or t > 100 for t in cleaned):
        raise InvalidInput(message)
    ws, _ = _configure(s, actor, workspace_id, "workspace.thresholds")
    old, ws.alert_thresholds = ws.alert_thresholds, cleaned
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="workspace.thresholds", resource=f"workspace:{ws.slug}", details={"from": old, "to": cleaned})
    return ws


def set_digest(s: Session, actor: Actor, workspace_id: int, frequency: str) -> Workspace:
    if frequency not in ("daily", "weekly", "off"):
        raise InvalidInput(f"“{frequency[:20]}” is not a digest frequency. Use daily, weekly or off.")
    ws, _ = _configure(s, actor, workspace_id, "workspace.digest")
    old, ws.digest_frequency = ws.digest_frequency, frequency
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="workspace.digest", resource=f"workspace:{ws.slug}", details={"from": old, "to": frequency})
    return ws


def role_template(s: Session, workspace_id: int, role: Role) -> RoleTemplate | None:
    return s.get(RoleTemplate, (workspace_id, role))


def set_role_template(
    s: Session,
    actor: Actor,
    workspace_id: int,
    role: Role | str,
    *,
    key_limit_micros: int | None,
    limit_period: Period | str = Period.MONTHLY,
    key_lifetime_days: int | None = None,
) -> RoleTemplate:
    role = Role.parse(role) if isinstance(role, str) else role
    limit_period = parse_period(str(limit_period))  # what people type: Monthly, month, bogus …
    if key_lifetime_days is not None and not 1 <= key_lifetime_days <= 3650:
        raise InvalidInput("A key lifetime is between 1 and 3650 days, or none.")
    ws, _ = _configure(s, actor, workspace_id, "template.set")
    template = role_template(s, ws.id, role)
    if template is None:
        template = RoleTemplate(workspace_id=ws.id, role=role)
        s.add(template)
    template.key_limit_micros = key_limit_micros
    template.limit_period = limit_period
    template.key_lifetime_days = key_lifetime_days
    audit.record(
        s,
        workspace_id=ws.id,
        actor=actor.label,
        action="template.set",
        resource=f"template:{role.value}",
        details={"key_limit_micros": key_limit_micros, "limit_period": limit_period.value, "key_lifetime_days": key_lifetime_days},
    )
    s.flush()
    return template


def list_templates(s: Session, actor: Actor, workspace_id: int) -> list[RoleTemplate]:
    ws = load_workspace(s, workspace_id)
    authorize(s, actor, ws, Permission.VIEW_OWN_USAGE, resource=f"workspace:{ws.slug}", attempted="template.list")
    return list(s.scalars(select(RoleTemplate).where(RoleTemplate.workspace_id == ws.id).order_by(RoleTemplate.role)))


__all__ = [
    "create_workspace",
    "list_workspaces",
    "find_workspace",
    "set_key_policy",
    "set_channels",
    "add_allowlist",
    "remove_allowlist",
    "show_allowlist",
    "set_thresholds",
    "set_digest",
    "set_role_template",
    "list_templates",
    "membership",
    "denial",
]


def bind_channel(s: Session, actor: Actor, workspace_id: int, channel_id: str) -> Workspace:
    """Make a channel's commands default to this workspace.

    Any member may bind a channel no other workspace has; taking one that another workspace
    is bound to, or uses for its approvals, alerts or audit, needs an Admin of both — else
    a member of one workspace could point another's Admins at the wrong workspace — and is
    audited in both.
    """
    if not CHANNEL.match(channel_id or ""):
        raise InvalidInput("Run this in the channel you want to bind.")
    ws = load_workspace(s, workspace_id, lock=True)
    authorize(s, actor, ws, Permission.VIEW_OWN_USAGE, resource=f"workspace:{ws.slug}", attempted="workspace.bind_channel")
    binding = s.get(ChannelBinding, (ws.team_id, channel_id))
    other = _holder_of_channel(s, ws, channel_id, binding)
    if other is not None:
        authorize(s, actor, ws, Permission.CONFIGURE, resource=f"channel:{channel_id}", attempted="workspace.bind_channel")
        authorize(s, actor, other, Permission.CONFIGURE, resource=f"channel:{channel_id}", attempted="workspace.bind_channel")
        audit.record(s, workspace_id=other.id, actor=actor.label, action="workspace.unbind_channel", resource=f"channel:{channel_id}", details={"to": ws.slug})
    if binding is None:
        s.add(ChannelBinding(team_id=ws.team_id, channel_id=channel_id, workspace_id=ws.id, bound_by=actor.slack_user_id or actor.label))
    else:
        binding.workspace_id, binding.bound_by = ws.id, actor.slack_user_id or actor.label
    details = {"from": other.slug} if other is not None else {}
    audit.record(s, workspace_id=ws.id, actor=actor.label, action="workspace.bind_channel", resource=f"channel:{channel_id}", details=details)
    s.flush()
    return ws


def _holder_of_channel(s: Session, ws: Workspace, channel_id: str, binding) -> Workspace | None:
    """Another live workspace of the team that this channel belongs to: by binding, or as one of its channels."""
    if binding is not None and binding.workspace_id != ws.id:
        held = s.get(Workspace, binding.workspace_id)
        if held is not None and held.status is not WorkspaceStatus.DELETED:
            return held
    return s.scalars(
        select(Workspace)
        .where(
            Workspace.team_id == ws.team_id,
            Workspace.id != ws.id,
            Workspace.status != WorkspaceStatus.DELETED,
            or_(Workspace.approvals_channel == channel_id, Workspace.alerts_channel == channel_id, Workspace.audit_channel == channel_id),
        )
        .order_by(Workspace.id)
        .limit(1)
    ).first()
