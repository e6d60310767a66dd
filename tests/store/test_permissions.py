"""The seed's permission matrix, pair by pair, through the store's own operations.

Every role tries every operation that a permission guards. Allowed pairs succeed; refused
pairs change nothing but the audit log, which gains exactly one denial."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import func, select

from store import approvals, audit, budgets, credits, invitations, keys, members, policy, requests, reviews, spikes, usage_reports, workspace_deletion, workspaces
from store.db import Database
from store.errors import PermissionDenied
from store.models import ApiKey, AuditEvent, Base, Request
from store.money import parse_money
from store.permissions import MATRIX, Actor, Permission
from store.decisions import decide_request
from store.types import RequestState, Role
from tests import factories as f

ADMIN, DEVELOPER, VIEWER, BILLING = Role.ADMIN, Role.DEVELOPER, Role.VIEWER, Role.BILLING
ROLES = (ADMIN, DEVELOPER, VIEWER, BILLING)
YES, ASK, NO = "yes", "request only", "–"

#: Written out from the seed's table (docs/design.md, "Roles"), not read from
#: store.permissions.MATRIX: a wrong MATRIX has to fail here.
SEED: dict[Permission, tuple[str, str, str, str]] = {
    #                              Admin  Developer  Viewer  Billing
    Permission.MANAGE_MEMBERS:    (YES,   ASK,       NO,     NO),
    Permission.CREATE_OWN_KEY:    (YES,   YES,       NO,     NO),
    Permission.MANAGE_OWN_KEY:    (YES,   YES,       NO,     NO),
    Permission.MANAGE_ANY_KEY:    (YES,   NO,        NO,     NO),
    Permission.CONFIGURE:         (YES,   ASK,       NO,     NO),
    Permission.VIEW_OWN_USAGE:    (YES,   YES,       YES,    YES),
    Permission.VIEW_ALL_USAGE:    (YES,   NO,        YES,    YES),
    Permission.MANAGE_CREDIT:     (YES,   NO,        NO,     YES),
    Permission.DECIDE_REQUESTS:   (YES,   NO,        NO,     NO),
    Permission.VIEW_AUDIT:        (YES,   NO,        NO,     NO),
    Permission.DELETE_WORKSPACE:  (YES,   NO,        NO,     NO),
    # the seed's "policy", for models: set by Admins, asked for by Developers
    Permission.MANAGE_MODEL_POLICY: (YES, ASK,       NO,     NO),
    # not in the seed: muting spike alerts (the alert's buttons); access reviews (keep / revoke / transfer)
    Permission.MUTE_SPIKES:       (YES,   NO,        NO,     NO),
    Permission.REVIEW_ACCESS:     (YES,   NO,        NO,     NO),
    # the seed's "policy" row again, for who approves what (/ai-workspace policy set)
    Permission.SET_APPROVAL_POLICY: (YES, NO,        NO,     NO),
}  # fmt: skip


def seed(permission: Permission, role: Role) -> str:
    return SEED[permission][ROLES.index(role)]


def allowed_roles(permission: Permission) -> set[str]:
    return {role.value for role in ROLES if seed(permission, role) == YES}


MY_SPEND, OTHER_SPEND = parse_money("$1"), parse_money("$3")


@dataclass(frozen=True)
class World:
    """One workspace with a member of each role, as seen by the one acting in a test."""

    ws: int
    slug: str
    name: str
    actors: dict[Role, Actor]
    own_keys: dict[Role, int]
    other_id: int  # a Developer whose role, key and request the actor acts upon
    other_key: int
    pending_request: int  # that Developer's key request, waiting for an admin
    stranger: Actor  # an Admin of another workspace of the same Slack team
    me: Actor | None = None
    my_key: int | None = None

    def as_(self, role: Role) -> "World":
        return replace(self, me=self.actors[role], my_key=self.own_keys[role])

    def as_stranger(self) -> "World":
        # Nobody outside the workspace has a key in it; the nearest thing is someone else's.
        return replace(self, me=self.stranger, my_key=self.other_key)


def live_keys(db: Database, ws: int, owners: dict[str, Actor], decider: Actor) -> dict[str, int]:
    """One live key per owner, approved by ``decider`` where the policy wants it."""
    asked = {who: db.run(keys.request_key, owner, ws, name=f"{who}-bot") for who, owner in owners.items()}
    for req in asked.values():
        if req.state is RequestState.PENDING:
            db.run(decide_request, decider, req.id, approve=True)
    f.provision_pending(db)
    with db.session() as s:
        made = dict(s.execute(select(ApiKey.request_id, ApiKey.id).where(ApiKey.workspace_id == ws)).all())
    return {who: made[req.id] for who, req in asked.items()}


def add(db: Database, ws: int, role: Role) -> tuple[Actor, int]:
    uid = f.user_id()
    return Actor.slack(uid), db.run(members.add_member, f.OPERATOR, ws, role=role, slack_user_id=uid).id


def build_world(db: Database) -> World:
    # Production: a Developer's key waits for an admin, so a pending request is easy to make.
    ws = f.workspace(db, "orion", "production", name="Orion Research")
    f.project(db, ws, "search")
    standing_admin, _ = add(db, ws, ADMIN)
    # Viewers and Billing Managers cannot ask for keys; theirs come from when they were Developers.
    joined = {role: add(db, ws, ADMIN if role is ADMIN else DEVELOPER) for role in ROLES}
    other, other_id = add(db, ws, DEVELOPER)
    made = live_keys(db, ws, {**{role.value: actor for role, (actor, _) in joined.items()}, "other": other}, standing_admin)
    for role in (VIEWER, BILLING):
        db.run(members.change_role, f.OPERATOR, ws, joined[role][1], role)
    f.spend(db, made["developer"], MY_SPEND)
    f.spend(db, made["other"], OTHER_SPEND)
    pending = db.run(keys.request_key, other, ws, name="pending-bot")
    assert pending.state is RequestState.PENDING
    stranger = f.member(db, f.workspace(db, "vega", "development"), ADMIN)
    db.run(policy.set_models, f.OPERATOR, ws, ["openai/gpt-4o"])  # so that there is a model to ask for
    return World(
        ws=ws,
        slug="orion",
        name="Orion Research",
        actors={role: actor for role, (actor, _) in joined.items()},
        own_keys={role: made[role.value] for role in ROLES},
        other_id=other_id,
        other_key=made["other"],
        pending_request=pending.id,
        stranger=stranger,
    )


@dataclass(frozen=True)
class Op:
    permission: Permission
    action: str  # what the audit log names when the operation is refused
    run: Callable[[Database, World], Any]
    check: Callable[[Any], bool] = lambda result: True  # what a permitted run must return


OPS: dict[str, Op] = {
    "change another member's role": Op(
        Permission.MANAGE_MEMBERS, "member.role", lambda db, w: db.run(members.change_role, w.me, w.ws, w.other_id, "viewer")
    ),
    "add a member": Op(
        Permission.MANAGE_MEMBERS, "member.add", lambda db, w: db.run(members.add_member, w.me, w.ws, role="developer", slack_user_id="UNEWCOMER1")
    ),
    "remove another member": Op(Permission.MANAGE_MEMBERS, "member.remove", lambda db, w: db.run(members.remove_member, w.me, w.ws, w.other_id)),
    "ask for a key": Op(Permission.CREATE_OWN_KEY, "key.request", lambda db, w: db.run(keys.request_key, w.me, w.ws, name="new-bot")),
    "disable one's own key": Op(Permission.MANAGE_OWN_KEY, "key.disable", lambda db, w: db.run(keys.disable_key, w.me, w.my_key)),
    "rotate one's own key": Op(Permission.MANAGE_OWN_KEY, "key.rotate", lambda db, w: db.run(keys.rotate_key, w.me, w.my_key)),
    "revoke someone else's key": Op(Permission.MANAGE_ANY_KEY, "key.revoke", lambda db, w: db.run(keys.revoke_key, w.me, w.other_key)),
    "list everyone's keys": Op(
        Permission.MANAGE_ANY_KEY,
        "key.list_all",
        lambda db, w: db.run(keys.list_keys, w.me, w.ws, everyone=True),
        check=lambda listed: len(listed) == 5,
    ),
    "set a project budget": Op(
        Permission.CONFIGURE, "budget.set", lambda db, w: db.run(budgets.set_project_budget, w.me, w.ws, "search", parse_money("$50"))
    ),
    "set the workspace cap": Op(Permission.CONFIGURE, "cap.set", lambda db, w: db.run(budgets.set_workspace_cap, w.me, w.ws, parse_money("$500"))),
    "set the channels": Op(Permission.CONFIGURE, "workspace.channels", lambda db, w: db.run(workspaces.set_channels, w.me, w.ws, approvals="C0APPROVALS")),
    "set the key policy": Op(Permission.CONFIGURE, "workspace.policy", lambda db, w: db.run(workspaces.set_key_policy, w.me, w.ws, "auto")),
    "add to the IP allowlist": Op(
        Permission.CONFIGURE, "workspace.allowlist_add", lambda db, w: db.run(workspaces.add_allowlist, w.me, w.ws, "203.0.113.0/24")
    ),
    "create a project": Op(Permission.CONFIGURE, "project.create", lambda db, w: db.run(budgets.create_project, w.me, w.ws, "maps")),
    "set a role template": Op(
        Permission.CONFIGURE,
        "template.set",
        lambda db, w: db.run(workspaces.set_role_template, w.me, w.ws, "developer", key_limit_micros=parse_money("$10")),
    ),
    "see one's own usage": Op(
        Permission.VIEW_OWN_USAGE,
        "usage.view_own",
        lambda db, w: db.run(usage_reports.usage_report, w.me, w.ws, mine=True),
        check=lambda report: report.scope == "yours",
    ),
    "list one's own keys": Op(
        Permission.VIEW_OWN_USAGE, "key.list", lambda db, w: db.run(keys.list_keys, w.me, w.ws), check=lambda listed: len(listed) == 1
    ),
    "see the budgets": Op(Permission.VIEW_OWN_USAGE, "budget.show", lambda db, w: db.run(budgets.budget_overview, w.me, w.ws)),
    "see the whole workspace's usage": Op(
        Permission.VIEW_ALL_USAGE,
        "usage.view_all",
        lambda db, w: db.run(usage_reports.usage_report, w.me, w.ws),
        check=lambda report: report.scope == "workspace" and report.total_micros == MY_SPEND + OTHER_SPEND,
    ),
    "add credit": Op(Permission.MANAGE_CREDIT, "credit.add", lambda db, w: db.run(credits.add_credit, w.me, w.ws, parse_money("$100"))),
    "see the credit statement": Op(Permission.MANAGE_CREDIT, "credit.view", lambda db, w: db.run(credits.credit_balance, w.me, w.ws)),
    "approve someone else's request": Op(
        Permission.DECIDE_REQUESTS,
        "request.approve",
        lambda db, w: db.run(decide_request, w.me, w.pending_request, approve=True),
        check=lambda decision: decision.request.state is RequestState.APPROVED,
    ),
    "deny someone else's request": Op(
        Permission.DECIDE_REQUESTS,
        "request.deny",
        lambda db, w: db.run(decide_request, w.me, w.pending_request, approve=False, note="one bot is enough"),
    ),
    "list pending requests": Op(
        Permission.DECIDE_REQUESTS, "request.list", lambda db, w: db.run(requests.pending_requests, w.me, w.ws), check=lambda listed: len(listed) == 1
    ),
    "verify the audit log": Op(Permission.VIEW_AUDIT, "audit.verify", lambda db, w: db.run(audit.verify, w.me, w.ws), check=lambda v: v.ok),
    "read recent audit events": Op(Permission.VIEW_AUDIT, "audit.recent", lambda db, w: db.run(audit.recent, w.me, w.ws), check=bool),
    "export the audit log": Op(Permission.VIEW_AUDIT, "audit.export", lambda db, w: db.run(audit.export, w.me, w.ws, io.StringIO()), check=bool),
    "set the model policy": Op(
        Permission.MANAGE_MODEL_POLICY, "model_policy.models", lambda db, w: db.run(policy.set_models, w.me, w.ws, ["openai/*", "anthropic/*"])
    ),
    "require zero data retention for a project": Op(
        Permission.MANAGE_MODEL_POLICY, "model_policy.zdr", lambda db, w: db.run(policy.set_zdr, w.me, w.ws, True, project="search")
    ),
    "set the approval policy": Op(Permission.SET_APPROVAL_POLICY, "policy.change", lambda db, w: db.run(approvals.set_policy, w.me, w.ws, "key: 2 admins")),
    "mute a key's spike alerts": Op(Permission.MUTE_SPIKES, "spike.mute", lambda db, w: db.run(spikes.mute_key, w.me, w.other_key, 24)),
    "open an access review": Op(Permission.REVIEW_ACCESS, "review.open", lambda db, w: db.run(reviews.open_review, w.me, w.ws)),
    "delete the workspace": Op(
        Permission.DELETE_WORKSPACE, "workspace.delete", lambda db, w: db.run(workspace_deletion.delete_workspace, w.me, w.ws, force=True)
    ),
}

# A Developer asking for the whole workspace's usage is not refused: they get their own
# (store/usage_reports.py). No other operation is guarded by VIEW_ALL_USAGE, so that "–" of the
# seed shows as a narrower answer, proven by its own test below.
FALLS_BACK = {(DEVELOPER, "see the whole workspace's usage")}

PAIRS = [(role, name) for role in ROLES for name in OPS]
ALLOWED = [pytest.param(role, name, id=f"{role}-{name}") for role, name in PAIRS if seed(OPS[name].permission, role) == YES]
REFUSED = [
    pytest.param(role, name, id=f"{role}-{name}")
    for role, name in PAIRS
    if seed(OPS[name].permission, role) != YES and (role, name) not in FALLS_BACK
]


def snapshot(db: Database) -> dict[str, list[tuple]]:
    """Every row of every table but the audit log's, in primary-key order."""
    with db.engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for table in Base.metadata.sorted_tables
            if table.name not in ("audit_events", "audit_heads")
        }


def last_audit_id(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.coalesce(func.max(AuditEvent.id), 0)))


def audit_events_since(db: Database, after_id: int) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.id > after_id).order_by(AuditEvent.id)))


def assert_refused_cleanly(db: Database, w: World, attempt: Callable[[Database, World], Any], action: str) -> tuple[PermissionDenied, AuditEvent]:
    """Refused, nothing but the audit log changed, and that by exactly one denial."""
    before, audited = snapshot(db), last_audit_id(db)
    with pytest.raises(PermissionDenied) as refused:
        attempt(db, w)
    assert snapshot(db) == before
    [event] = audit_events_since(db, audited)
    assert (event.outcome, event.action, event.actor, event.workspace_id) == ("denied", action, w.me.label, w.ws)
    return refused.value, event


def test_every_permission_has_a_seed_row_and_an_operation():
    assert set(SEED) == set(Permission)
    assert {op.permission for op in OPS.values()} == set(Permission)


def test_matrix_grants_exactly_what_the_seed_table_says():
    assert {p: {r.value for r in rule.allowed} for p, rule in MATRIX.items()} == {p: allowed_roles(p) for p in SEED}


@pytest.mark.parametrize(("role", "name"), ALLOWED)
def test_allowed_pair_succeeds(db, role, name):
    w = build_world(db).as_(role)
    audited = last_audit_id(db)
    result = OPS[name].run(db, w)
    assert OPS[name].check(result)
    assert not [e for e in audit_events_since(db, audited) if e.outcome == "denied"]


@pytest.mark.parametrize(("role", "name"), REFUSED)
def test_refused_pair_changes_nothing_and_audits_one_denial(db, role, name):
    op = OPS[name]
    w = build_world(db).as_(role)
    refused, _ = assert_refused_cleanly(db, w, op.run, op.action)
    assert set(refused.needed) == allowed_roles(op.permission)
    assert refused.message.startswith("Only an Admin") and f"you are a {role.title}" in refused.message
    if seed(op.permission, role) == ASK:
        assert "request" in refused.message


def test_developer_asking_for_workspace_usage_sees_only_their_own(db):
    w = build_world(db).as_(DEVELOPER)
    report = OPS["see the whole workspace's usage"].run(db, w)
    assert (report.scope, report.total_micros) == ("yours", MY_SPEND)


# Asking an admin instead. The seed gives Developers "request only" for member changes
# and settings; Purser also lets them ask for a top-up. A refusal names the roles that
# may ask (or do it themselves).
@dataclass(frozen=True)
class Ask:
    action: str
    may_ask: set[str]
    run: Callable[[Database, World], Any]
    may_open: tuple[str, str, str]  # Developer, Viewer, Billing Manager


ASKS: dict[str, Ask] = {
    "ask to change a role": Ask(
        "request.role_change",
        {"admin", "developer"},
        lambda db, w: db.run(members.request_role_change, w.me, w.ws, w.other_id, "viewer", reason="moving to support"),
        (YES, NO, NO),
    ),
    "ask for a budget change": Ask(
        "request.budget_change",
        {"admin", "developer"},
        lambda db, w: db.run(budgets.request_budget_change, w.me, w.ws, "search", parse_money("$80"), reason="launch week"),
        (YES, NO, NO),
    ),
    "ask for a cap change": Ask(
        "request.cap_change",
        {"admin", "developer"},
        lambda db, w: db.run(budgets.request_cap_change, w.me, w.ws, parse_money("$900"), reason="launch week"),
        (YES, NO, NO),
    ),
    "ask for a top-up": Ask(
        "request.credit_topup",
        {"admin", "billing", "developer"},
        lambda db, w: db.run(credits.request_topup, w.me, w.ws, parse_money("$200"), reason="pool is low"),
        (YES, NO, YES),
    ),
    "ask for a model": Ask(
        "request.model_access",
        {"admin", "developer"},
        lambda db, w: db.run(policy.request_model, w.me, w.ws, "anthropic/claude-3.5-sonnet", reason="evaluations"),
        (YES, NO, NO),
    ),
    "invite someone": Ask(
        "member.invite",
        {"admin", "developer"},
        lambda db, w: db.run(invitations.invite, w.me, w.ws, ["UINVITEE01"]),
        (YES, NO, NO),
    ),
}

ASK_PAIRS = [
    pytest.param(role, name, may_open, id=f"{role}-{name}")
    for name, ask in ASKS.items()
    for role, may_open in zip((DEVELOPER, VIEWER, BILLING), ask.may_open)
]


def request_count(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(Request))


def opened_a_request(result: Any) -> bool:
    if isinstance(result, list):  # invitations answer per person
        return [r.outcome for r in result] == ["requested"]
    return result.state is RequestState.PENDING


@pytest.mark.parametrize(("role", "name", "may_open"), ASK_PAIRS)
def test_request_only_roles_ask_and_others_cannot(db, role, name, may_open):
    ask = ASKS[name]
    w = build_world(db).as_(role)
    if may_open == YES:
        before = request_count(db)
        assert opened_a_request(ask.run(db, w))
        assert request_count(db) == before + 1
    else:
        refused, _ = assert_refused_cleanly(db, w, ask.run, ask.action)
        assert set(refused.needed) == ask.may_ask
        assert refused.message.startswith("Only an Admin") and f"you are a {role.title}" in refused.message


STRANGER_TRIES = [pytest.param(op.run, op.action, id=name) for name, op in OPS.items()] + [
    pytest.param(ask.run, ask.action, id=name) for name, ask in ASKS.items()
]


@pytest.mark.parametrize(("attempt", "action"), STRANGER_TRIES)
def test_non_member_is_refused_without_learning_the_workspace_name(db, attempt, action):
    w = build_world(db).as_stranger()
    refused, denial = assert_refused_cleanly(db, w, attempt, action)
    assert w.slug not in refused.message.lower() and w.name.lower() not in refused.message.lower()
    assert "not a member" in refused.message
    assert denial.details["reason"] == "not a member"
