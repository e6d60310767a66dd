"""Workspaces: several per Slack team, their settings, and deleting them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store import workspace_deletion, workspaces
from store.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from store.models import Action, ApiKey, AuditEvent, Workspace
from store.permissions import Actor
from store.types import Environment, KeyPolicy, KeyStatus, Role, WorkspaceStatus
from tests import factories as f


def audit_of(db, ws: int, action: str | None = None) -> list[AuditEvent]:
    with db.session() as s:
        stmt = select(AuditEvent).where(AuditEvent.workspace_id == ws).order_by(AuditEvent.seq)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        return list(s.scalars(stmt))


def test_one_slack_team_holds_several_workspaces_and_their_creator_becomes_admin(db):
    prod = db.run(workspaces.create_workspace, f.OPERATOR, slug="prod", environment="production", team_id="T1")
    admin = f.member(db, prod.id, Role.ADMIN)
    dev = db.run(workspaces.create_workspace, admin, slug="dev", environment="development", team_id="T1")
    with db.session() as s:
        assert [w.slug for w in workspaces.list_workspaces(s, team_id="T1")] == ["dev", "prod"]
        assert [w.slug for w in workspaces.list_workspaces(s, slack_user_id=admin.slack_user_id)] == ["dev", "prod"]
    assert dev.key_policy is KeyPolicy.AUTO and prod.key_policy is KeyPolicy.APPROVAL
    assert [e.action for e in audit_of(db, dev.id)] == ["workspace.create", "member.add"]


def test_slug_is_unique_within_a_team_but_not_across_teams(db):
    db.run(workspaces.create_workspace, f.OPERATOR, slug="acme", team_id="T1")
    with pytest.raises(Conflict, match="already exists"):
        db.run(workspaces.create_workspace, f.OPERATOR, slug="acme", team_id="T1")
    other = db.run(workspaces.create_workspace, f.OPERATOR, slug="acme", team_id="T2")
    assert other.team_id == "T2"


def test_bad_slugs_are_refused_with_the_rule(db):
    for slug in ("", "-lead", "has space", "under_score", "x" * 41, "ünï"):
        with pytest.raises(InvalidInput, match="lowercase letters, digits and dashes"):
            db.run(workspaces.create_workspace, f.OPERATOR, slug=slug)
    with db.session() as s:
        assert workspaces.list_workspaces(s) == []


def test_slug_is_normalised_to_lowercase(db):
    assert db.run(workspaces.create_workspace, f.OPERATOR, slug="  Search-Team ").slug == "search-team"


def test_unknown_environment_and_policy_are_refused_with_the_choices(db):
    with pytest.raises(InvalidInput, match="production, staging or development"):
        db.run(workspaces.create_workspace, f.OPERATOR, slug="acme", environment="prod")
    with pytest.raises(InvalidInput, match="approval.*auto"):
        db.run(workspaces.create_workspace, f.OPERATOR, slug="acme", key_policy="sometimes")


def test_only_an_admin_of_the_team_creates_workspaces_from_slack(db):
    ws = f.workspace(db, "acme")
    dev = f.member(db, ws, Role.DEVELOPER)
    with pytest.raises(PermissionDenied, match="Only an Admin"):
        db.run(workspaces.create_workspace, dev, slug="mine")
    admin = f.member(db, ws, Role.ADMIN)
    with pytest.raises(PermissionDenied):  # an admin elsewhere is nobody in another team
        db.run(workspaces.create_workspace, admin, slug="mine", team_id="T-other")


def test_allowlist_cidrs_are_normalised_and_junk_refused(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    db.run(workspaces.add_allowlist, admin, ws, " 10.1.2.3/8 ")
    db.run(workspaces.add_allowlist, admin, ws, "2001:DB8::1/32")
    db.run(workspaces.add_allowlist, admin, ws, "203.0.113.7")
    with db.session() as s:
        assert s.get(Workspace, ws).ip_allowlist == ["10.0.0.0/8", "2001:db8::/32", "203.0.113.7/32"]
    for junk in ("10.0.0.0/33", "not-an-ip", "300.1.1.1", ""):
        with pytest.raises(InvalidInput, match="not an IP address or CIDR range"):
            db.run(workspaces.add_allowlist, admin, ws, junk)
    with pytest.raises(Conflict, match="10.0.0.0/8 is already on the allowlist"):
        db.run(workspaces.add_allowlist, admin, ws, "10.9.9.9/8")


def test_allowlist_changes_are_audited_and_reach_the_gateway(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    db.run(workspaces.add_allowlist, admin, ws, "10.0.0.0/8")
    db.run(workspaces.remove_allowlist, admin, ws, "10.0.0.1/8")
    with pytest.raises(InvalidInput, match="not on the allowlist"):
        db.run(workspaces.remove_allowlist, admin, ws, "10.0.0.0/8")
    events = audit_of(db, ws)
    assert [(e.action, e.details) for e in events[-2:]] == [
        ("workspace.allowlist_add", {"cidr": "10.0.0.0/8"}),
        ("workspace.allowlist_remove", {"cidr": "10.0.0.0/8"}),
    ]
    with db.session() as s:
        assert len(list(s.scalars(select(Action).where(Action.kind == "refresh_authz")))) == 2


def test_policy_channels_and_thresholds_changes_are_audited_with_before_and_after(db):
    ws = f.workspace(db, environment="production")
    admin = f.member(db, ws, Role.ADMIN)
    db.run(workspaces.set_key_policy, admin, ws, "auto")
    db.run(workspaces.set_channels, admin, ws, approvals="C0APPROVE", alerts="C0ALERTS")
    db.run(workspaces.set_thresholds, admin, ws, [90, 25, 90, 100])
    by_action = {e.action: e for e in audit_of(db, ws)}
    assert by_action["workspace.policy"].details == {"from": "approval", "to": "auto"}
    assert by_action["workspace.channels"].details == {
        "approvals_channel": {"from": None, "to": "C0APPROVE"},
        "alerts_channel": {"from": None, "to": "C0ALERTS"},
    }
    assert by_action["workspace.thresholds"].details == {"from": [50, 80, 100], "to": [25, 90, 100]}
    assert all(e.actor == admin.label for e in by_action.values() if e.action.startswith("workspace.") and e.action != "workspace.create")
    with db.session() as s:
        w = s.get(Workspace, ws)
        assert (w.key_policy, w.approvals_channel, w.alerts_channel, w.alert_thresholds) == (KeyPolicy.AUTO, "C0APPROVE", "C0ALERTS", [25, 90, 100])


def test_bad_settings_are_refused_and_change_nothing(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    before = len(audit_of(db, ws))
    for op, args, message in [
        (workspaces.set_key_policy, ("sometimes",), "not a key policy"),
        (workspaces.set_channels, (), "Name at least one channel"),
        (workspaces.set_thresholds, ([0, 50],), "from 1 to 100"),
        (workspaces.set_thresholds, ([],), "from 1 to 100"),
        (workspaces.set_thresholds, (["lots"],), "from 1 to 100"),
        (workspaces.set_digest, ("hourly",), "daily, weekly or off"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            db.run(op, admin, ws, *args)
    assert len(audit_of(db, ws)) == before


def test_a_channel_must_be_a_slack_channel_id(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    with pytest.raises(InvalidInput, match="plain text, not as a link"):
        db.run(workspaces.set_channels, admin, ws, alerts="#general")
    with pytest.raises(InvalidInput, match="is not a Slack channel"):
        db.run(workspaces.set_channels, admin, ws, alerts="general")


def test_developer_cannot_change_settings_and_is_told_to_ask(db):
    ws = f.workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    with pytest.raises(PermissionDenied, match="ask an admin instead"):
        db.run(workspaces.set_key_policy, dev, ws, "auto")
    [denial] = [e for e in audit_of(db, ws) if e.outcome == "denied"]
    assert (denial.action, denial.actor) == ("workspace.policy", dev.label)


def test_delete_is_refused_while_keys_are_live(db):
    ws = f.workspace(db, environment="development")
    admin = f.member(db, ws, Role.ADMIN)
    f.key(db, ws, admin, "bot")
    with pytest.raises(Conflict, match="still has 1 active API key"):
        db.run(workspace_deletion.delete_workspace, admin, ws)
    with db.session() as s:
        assert s.get(Workspace, ws).status is WorkspaceStatus.ACTIVE


def test_forced_delete_revokes_every_live_key_with_actions_and_audit(db):
    ws = f.workspace(db, environment="development")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    k1, _ = f.key(db, ws, admin, "one")
    k2, _ = f.key(db, ws, dev, "two")
    result = db.run(workspace_deletion.delete_workspace, admin, ws, force=True)
    assert result.revoked_keys == 2
    with db.session() as s:
        assert s.get(Workspace, ws).status is WorkspaceStatus.DELETED
        assert {k.status for k in s.scalars(select(ApiKey))} == {KeyStatus.REVOKED}
        revokes = s.scalars(select(Action).where(Action.kind == "revoke_key")).all()
        assert sorted(a.payload["key_id"] for a in revokes) == [k1, k2]
        assert workspaces.list_workspaces(s) == []
    actions = [e.action for e in audit_of(db, ws)]
    assert actions[-3:] == ["key.revoke", "key.revoke", "workspace.delete"]
    assert audit_of(db, ws, "workspace.delete")[0].details == {"forced": True, "revoked_keys": 2}


def test_a_deleted_workspace_slug_cannot_be_found(db):
    ws = f.workspace(db, "gone")
    admin = f.member(db, ws, Role.ADMIN)
    db.run(workspace_deletion.delete_workspace, admin, ws)
    with pytest.raises(NotFound, match="no workspace called `gone`"):
        db.run(workspaces.find_workspace, "gone")
    with pytest.raises(NotFound):
        db.run(workspaces.set_key_policy, admin, ws, "auto")


def test_only_an_admin_deletes_a_workspace(db):
    ws = f.workspace(db)
    billing = f.member(db, ws, Role.BILLING)
    with pytest.raises(PermissionDenied, match="Only an Admin can delete the workspace"):
        db.run(workspace_deletion.delete_workspace, billing, ws)


def test_role_template_changes_the_preset_and_is_audited(db):
    ws = f.workspace(db)
    admin = f.member(db, ws, Role.ADMIN)
    db.run(workspaces.set_role_template, admin, ws, "viewer", key_limit_micros=5_000_000, limit_period="weekly", key_lifetime_days=30)
    with db.session() as s:
        templates = {t.role: t for t in workspaces.list_templates(s, admin, ws)}
    assert templates[Role.VIEWER].key_limit_micros == 5_000_000
    assert audit_of(db, ws, "template.set")[0].resource == "template:viewer"
    with pytest.raises(InvalidInput, match="between 1 and 3650 days"):
        db.run(workspaces.set_role_template, admin, ws, "viewer", key_limit_micros=None, key_lifetime_days=0)


def test_outsider_sees_nothing_of_a_workspace(db):
    ws = f.workspace(db, "secret-project")
    stranger = Actor.slack("U0STRANGER")
    with pytest.raises(PermissionDenied) as refused:
        db.run(workspaces.set_key_policy, stranger, ws, "auto")
    assert "secret-project" not in refused.value.message
    assert "not a member" in refused.value.message


def test_new_workspace_environment_defaults(db):
    ws = db.run(workspaces.create_workspace, f.OPERATOR, slug="x")
    assert ws.environment is Environment.DEVELOPMENT and ws.alert_thresholds == [50, 80, 100]


def test_taking_a_channel_another_workspace_holds_needs_an_admin_of_both_and_is_audited_in_both(db):
    from store.models import AuditEvent

    prod = f.workspace(db, "prod", "production")
    dev_ws = f.workspace(db, "dev", "development")
    prod_admin = f.member(db, prod, Role.ADMIN)
    db.run(workspaces.set_channels, prod_admin, prod, approvals="C0PRODAPPR")
    viewer = f.member(db, dev_ws, Role.VIEWER)
    with pytest.raises(PermissionDenied):  # a Viewer of dev cannot take prod's approvals channel
        db.run(workspaces.bind_channel, viewer, dev_ws, "C0PRODAPPR")
    dev_admin = f.member(db, dev_ws, Role.ADMIN)
    with pytest.raises(PermissionDenied):  # nor can dev's Admin alone
        db.run(workspaces.bind_channel, dev_admin, dev_ws, "C0PRODAPPR")
    db.run(workspaces.bind_channel, viewer, dev_ws, "C0FREE")  # a channel nobody holds: any member sets the default
    both = f.member(db, dev_ws, Role.ADMIN, slack_user_id=prod_admin.slack_user_id)  # prod's Admin, an Admin of dev too
    db.run(workspaces.bind_channel, both, dev_ws, "C0PRODAPPR")
    with db.session() as s:
        trail = {(e.workspace_id, e.action) for e in s.scalars(select(AuditEvent).where(AuditEvent.resource == "channel:C0PRODAPPR", AuditEvent.outcome == "ok"))}
    assert trail == {(prod, "workspace.unbind_channel"), (dev_ws, "workspace.bind_channel")}
