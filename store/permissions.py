"""Who may do what: one declarative table, checked by every operation."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.errors import NotFound, PermissionDenied
from store.models import Member, Workspace
from store.types import MemberStatus, Role, WorkspaceStatus


class Permission(enum.StrEnum):
    MANAGE_MEMBERS = "manage_members"  # invite, remove, change roles
    CREATE_OWN_KEY = "create_own_key"
    MANAGE_OWN_KEY = "manage_own_key"  # list / rotate / revoke / disable / enable one's own keys
    MANAGE_ANY_KEY = "manage_any_key"  # rotate / revoke anyone's key
    CONFIGURE = "configure"  # budgets, cap, policy, channels, allowlist, templates, projects
    VIEW_OWN_USAGE = "view_own_usage"
    VIEW_ALL_USAGE = "view_all_usage"
    MANAGE_CREDIT = "manage_credit"  # add credit, view statements
    DECIDE_REQUESTS = "decide_requests"
    VIEW_AUDIT = "view_audit"  # view, verify and export the audit log
    DELETE_WORKSPACE = "delete_workspace"
    MANAGE_MODEL_POLICY = "manage_model_policy"  # which models, providers, zero data retention (store.policy)
    MUTE_SPIKES = "mute_spikes"  # silence a key's spike alerts for a while (store.spikes)
    REVIEW_ACCESS = "review_access"  # open an access review, keep / revoke / transfer its items (store.reviews)
    SET_APPROVAL_POLICY = "set_approval_policy"  # who approves which requests (store.approvals)


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[Role]
    #: roles that may not do it themselves but may ask an admin to
    may_request: frozenset[Role] = frozenset()


A, D, V, B = Role.ADMIN, Role.DEVELOPER, Role.VIEWER, Role.BILLING

#: The seed's permission matrix (docs/design.md, "Roles").
MATRIX: dict[Permission, Rule] = {
    Permission.MANAGE_MEMBERS: Rule(frozenset({A}), may_request=frozenset({D})),
    Permission.CREATE_OWN_KEY: Rule(frozenset({A, D})),
    Permission.MANAGE_OWN_KEY: Rule(frozenset({A, D})),
    Permission.MANAGE_ANY_KEY: Rule(frozenset({A})),
    Permission.CONFIGURE: Rule(frozenset({A}), may_request=frozenset({D})),
    Permission.VIEW_OWN_USAGE: Rule(frozenset({A, D, V, B})),
    Permission.VIEW_ALL_USAGE: Rule(frozenset({A, V, B})),
    Permission.MANAGE_CREDIT: Rule(frozenset({A, B}), may_request=frozenset({D})),
    Permission.DECIDE_REQUESTS: Rule(frozenset({A})),
    Permission.VIEW_AUDIT: Rule(frozenset({A})),
    Permission.DELETE_WORKSPACE: Rule(frozenset({A})),
    # the seed's "policy" is an Admin's; a Developer asks for a model outside it (/ai-models request)
    Permission.MANAGE_MODEL_POLICY: Rule(frozenset({A}), may_request=frozenset({D})),
    # not in the seed: an alert the workspace relies on is silenced by those who answer for its spend
    Permission.MUTE_SPIKES: Rule(frozenset({A})),
    # not in the seed: who keeps which access is decided by those who grant it
    Permission.REVIEW_ACCESS: Rule(frozenset({A})),
    # not in the seed as its own row: who must approve what is the Admins' to say, and nobody asks for it
    Permission.SET_APPROVAL_POLICY: Rule(frozenset({A})),
}

_WHAT = {
    Permission.MANAGE_MEMBERS: "invite, remove or change the role of members",
    Permission.CREATE_OWN_KEY: "create API keys",
    Permission.MANAGE_OWN_KEY: "manage API keys",
    Permission.MANAGE_ANY_KEY: "manage other people's API keys",
    Permission.CONFIGURE: "change budgets, the spending cap or workspace settings",
    Permission.VIEW_OWN_USAGE: "view usage",
    Permission.VIEW_ALL_USAGE: "view the whole workspace's usage",
    Permission.MANAGE_CREDIT: "add credit or view statements",
    Permission.DECIDE_REQUESTS: "approve or deny requests",
    Permission.VIEW_AUDIT: "view the audit log",
    Permission.DELETE_WORKSPACE: "delete the workspace",
    Permission.MANAGE_MODEL_POLICY: "change which models the workspace's keys may call",
    Permission.MUTE_SPIKES: "mute spike alerts",
    Permission.REVIEW_ACCESS: "review who keeps access",
    Permission.SET_APPROVAL_POLICY: "change who approves requests",
}


@dataclass(frozen=True)
class Actor:
    """Who is asking: a Slack user, or Purser itself (the operator's CLI, a worker, the clock)."""

    slack_user_id: str | None = None
    system: str | None = None

    @classmethod
    def slack(cls, user_id: str) -> "Actor":
        return cls(slack_user_id=user_id)

    @classmethod
    def operator(cls, name: str = "cli") -> "Actor":
        return cls(system=name)

    @property
    def is_system(self) -> bool:
        return self.system is not None

    @property
    def label(self) -> str:
        return f"system:{self.system}" if self.system else f"slack:{self.slack_user_id}"


def roles_text(roles: frozenset[Role] | set[Role]) -> str:
    order = [A, B, D, V]
    names = [r.title for r in order if r in roles]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def load_workspace(s: Session, workspace_id: int, *, lock: bool = False) -> Workspace:
    stmt = select(Workspace).where(Workspace.id == workspace_id, Workspace.status != WorkspaceStatus.DELETED)
    if lock:
        # FOR NO KEY UPDATE: it serialises whoever changes the workspace (deciders, role caps) but lets
        # inserts that merely reference it through (their foreign-key checks take KEY SHARE). A plain
        # FOR UPDATE queued behind those deadlocked with audit appends under load.
        stmt = stmt.with_for_update(key_share=True)
    ws = s.scalars(stmt).one_or_none()
    if ws is None:
        raise NotFound(f"There is no workspace with id {workspace_id}.")
    return ws


def membership(s: Session, actor: Actor, workspace_id: int) -> Member | None:
    if actor.slack_user_id is None:
        return None
    return s.scalars(
        select(Member).where(
            Member.workspace_id == workspace_id,
            Member.slack_user_id == actor.slack_user_id,
            Member.status == MemberStatus.ACTIVE,
        )
    ).one_or_none()


def can(role: Role, permission: Permission) -> bool:
    """May this role do it outright (without a request)?"""
    return role in MATRIX[permission].allowed


def may_request(role: Role, permission: Permission) -> bool:
    return role in MATRIX[permission].may_request


def authorize(
    s: Session,
    actor: Actor,
    workspace: Workspace,
    permission: Permission,
    *,
    resource: str = "",
    attempted: str = "",
) -> Member | None:
    """Return the acting member (None for Purser itself) or raise ``PermissionDenied``.

    The error carries what the store needs to audit the denial after rolling back.
    """
    if actor.is_system:
        return None
    member = membership(s, actor, workspace.id)
    rule = MATRIX[permission]
    if member is not None and member.role in rule.allowed:
        return member
    if member is None:
        # Say nothing about a workspace the asker is not in, not even its name.
        message = "You are not a member of that workspace. Ask one of its admins to invite you."
    else:
        needed = roles_text(rule.allowed)
        message = f"Only {'an' if needed[0] in 'AEIOU' else 'a'} {needed} can {_WHAT[permission]}; you are a {member.role.title}."
        if member.role in rule.may_request:
            message += " You can ask an admin instead with a request."
    raise PermissionDenied(
        message,
        needed=tuple(r.value for r in rule.allowed),
        denial=denial(workspace.id, actor, attempted or permission.value, resource, reason="role" if member else "not a member"),
    )


def denial(workspace_id: int, actor: Actor, action: str, resource: str, **details: object) -> dict:
    """What ``Database.run`` writes to the audit log once a refused operation is rolled back."""
    return {
        "workspace_id": workspace_id,
        "actor": actor.label,
        "action": action,
        "resource": resource,
        "details": {k: v for k, v in details.items() if v is not None},
    }
