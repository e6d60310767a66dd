"""API keys: the key policy, provisioning without keeping secrets, the one-time reveal, the state machine."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from store import keys, workspaces
from store.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from store.models import Action, ApiKey, AuditEvent, Base, KeyReveal, Workspace
from store.money import parse_money
from store.decisions import decide_request
from store.secrets import cipher, hash_secret, mint_local_secret
from store.types import ActionStatus, KeyStatus, RequestState, Role, utcnow
from tests import factories as f


def get_key(db, key_id: int) -> ApiKey:
    with db.session() as s:
        # Read after the session closes: load the people and project the assertions look at.
        return s.get(ApiKey, key_id, options=[joinedload(ApiKey.member), joinedload(ApiKey.project)])


def actions(db, kind: str) -> list[Action]:
    with db.session() as s:
        return list(s.scalars(select(Action).where(Action.kind == kind).order_by(Action.created_at)))


def key_audit(db, key_id: int) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.resource == f"key:{key_id}").order_by(AuditEvent.seq)))


# --- the key policy ---------------------------------------------------------


def test_in_production_a_developers_key_waits_for_an_admin(db):
    ws = f.workspace(db, environment="production")
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="bot", limit_micros=parse_money("$1"))
    assert req.state is RequestState.PENDING
    assert actions(db, "provision_key") == []


def test_in_development_a_key_within_the_preset_is_approved_at_once(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="bot", limit_micros=parse_money("$50"), expires_days=90)
    assert (req.state, req.auto_approved) == (RequestState.APPROVED, True)
    [action] = actions(db, "provision_key")
    assert action.request_id == req.id
    with db.session() as s:
        approval = s.scalars(select(AuditEvent).where(AuditEvent.action == "request.approve")).one()
        assert approval.actor == "system:policy"


@pytest.mark.calendar
def test_without_a_limit_a_key_gets_the_roles_preset(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="bot")
    assert req.state is RequestState.APPROVED
    assert (req.payload["limit_micros"], req.payload["lease_minutes"]) == (parse_money("$50"), 90 * 1440)


@pytest.mark.parametrize(("limit", "days"), [("$50.01", None), (None, 91)])
def test_in_development_a_key_beyond_the_preset_waits(db, limit, days):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="bot", limit_micros=parse_money(limit) if limit else None, expires_days=days)
    assert req.state is RequestState.PENDING


def test_an_admins_own_key_is_approved_at_once_even_in_production(db):
    ws = f.workspace(db, environment="production")
    admin = f.member(db, ws, Role.ADMIN)
    req = db.run(keys.request_key, admin, ws, name="ops", limit_micros=parse_money("$10,000"))
    assert req.state is RequestState.APPROVED and req.decision_note == "admins create their own keys"


def test_viewers_and_billing_managers_get_no_keys(db):
    ws = f.workspace(db, environment="development")
    for role in (Role.VIEWER, Role.BILLING):
        with pytest.raises(PermissionDenied, match="can create API keys"):
            db.run(keys.request_key, f.member(db, ws, role), ws, name="bot")


def test_bad_key_requests_are_refused_with_the_rule(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    with pytest.raises(InvalidInput, match="cannot name a key"):
        db.run(keys.request_key, dev, ws, name="has space")
    with pytest.raises(InvalidInput, match="between 1 and 3650 days"):
        db.run(keys.request_key, dev, ws, name="bot", expires_days=0)
    with pytest.raises(NotFound, match="no project called `nope`"):
        db.run(keys.request_key, dev, ws, name="bot", project="nope")


def test_duplicate_live_key_names_are_refused_per_owner(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    other = f.member(db, ws, Role.DEVELOPER)
    key_id, _ = f.key(db, ws, dev, "bot")
    with pytest.raises(Conflict, match="already have a key called `bot`"):
        db.run(keys.request_key, dev, ws, name="bot")
    f.key(db, ws, other, "bot")  # someone else's key may share the name
    db.run(keys.revoke_key, dev, key_id)
    assert db.run(keys.request_key, dev, ws, name="bot").state is RequestState.APPROVED


def test_a_name_already_asked_for_is_refused_before_the_key_exists(db):
    ws = f.workspace(db, environment="production")
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(keys.request_key, dev, ws, name="bot")
    with pytest.raises(Conflict, match="already asked for a key called `bot`"):
        db.run(keys.request_key, dev, ws, name="bot")


# --- provisioning and the reveal --------------------------------------------


def test_provisioning_stores_prefix_and_hash_never_the_secret(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    f.project(db, ws, "search", budget=parse_money("$100"))
    key_id, secret = f.key(db, ws, dev, "bot", project="search")
    key = get_key(db, key_id)
    assert key.secret_hash == hash_secret(secret) and len(key.secret_hash) == 64
    assert secret.startswith(key.prefix) and len(key.prefix) < len(secret)
    assert key.project.slug == "search" and key.status is KeyStatus.ACTIVE
    found_in = []
    with db.session() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).mappings():
                for column, value in row.items():
                    if table.name == "key_reveals" and column == "ciphertext":
                        assert secret.encode() not in value and cipher().decrypt(value) == secret
                    elif secret in str(value):
                        found_in.append(f"{table.name}.{column}")
    assert found_in == []


def test_provisioning_again_for_the_same_action_finds_the_stored_key(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(keys.request_key, dev, ws, name="bot")
    [action] = actions(db, "provision_key")
    first = db.run(keys.provision_key, action.id, secret=mint_local_secret(), provider="local", provider_ref=None)
    again = db.run(keys.provision_key, action.id, secret=mint_local_secret(), provider="local", provider_ref=None)
    assert (first.created, again.created, again.key.id) == (True, False, first.key.id)
    assert key_audit(db, first.key.id) == ["key.create"]


@pytest.mark.calendar
def test_the_secret_is_revealed_once_to_its_owner_and_then_wiped(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    admin = f.member(db, ws, Role.ADMIN)
    key_id, secret = f.key(db, ws, dev, "bot")
    with pytest.raises(NotFound):  # not even an admin sees someone else's secret
        db.run(keys.reveal_key, admin, key_id)
    assert db.run(keys.reveal_key, dev, key_id).secret == secret
    with db.session() as s:
        reveal = s.get(KeyReveal, key_id)
        assert reveal.ciphertext is None and reveal.revealed_at is not None
    with pytest.raises(Conflict, match="already revealed"):
        db.run(keys.reveal_key, dev, key_id)
    with db.session() as s:
        trail = list(s.execute(select(AuditEvent.action, AuditEvent.outcome, AuditEvent.actor).where(AuditEvent.resource == f"key:{key_id}").order_by(AuditEvent.seq)))
    # the admin's attempt on someone else's secret is audited as a denial; the late second click is not a policy refusal
    assert [(a, o) for a, o, _ in trail] == [("key.create", "ok"), ("key.reveal", "denied"), ("key.reveal", "ok")]
    assert trail[1].actor == admin.label


@pytest.mark.calendar
def test_an_unrevealed_secret_is_wiped_after_24_hours(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    key_id, _ = f.key(db, ws, dev, "bot")
    assert db.run(keys.wipe_expired_reveals, utcnow() + timedelta(hours=23)) == 0
    assert db.run(keys.wipe_expired_reveals, utcnow() + timedelta(hours=24, minutes=1)) == 1
    with db.session() as s:
        assert s.get(KeyReveal, key_id).ciphertext is None
    with pytest.raises(Conflict, match="not revealed within 24 hours"):
        db.run(keys.reveal_key, dev, key_id)


@pytest.mark.calendar
def test_reveal_past_24_hours_is_refused_before_the_clock_wipes(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    key_id, _ = f.key(db, ws, dev, "bot")
    with db.session() as s:
        s.get(KeyReveal, key_id).expires_at = utcnow() - timedelta(seconds=1)
        s.commit()
    with pytest.raises(Conflict, match="not revealed within 24 hours"):
        db.run(keys.reveal_key, dev, key_id)


# --- who manages which key --------------------------------------------------


def test_a_developer_manages_only_their_own_keys_an_admin_any(db):
    ws = f.workspace(db, environment="development")
    admin = f.member(db, ws, Role.ADMIN)
    alice = f.member(db, ws, Role.DEVELOPER)
    bob = f.member(db, ws, Role.DEVELOPER)
    alices, _ = f.key(db, ws, alice, "alices")
    for op in (keys.revoke_key, keys.disable_key, keys.rotate_key):
        with pytest.raises(PermissionDenied, match="manage other people's API keys"):
            db.run(op, bob, alices)
    assert get_key(db, alices).status is KeyStatus.ACTIVE
    db.run(keys.disable_key, alice, alices, "going on holiday")
    db.run(keys.enable_key, admin, alices)
    db.run(keys.revoke_key, admin, alices, "leaked")
    key = get_key(db, alices)
    assert (key.status, key.status_reason) == (KeyStatus.REVOKED, "leaked")


def test_key_lists_show_own_keys_and_to_admins_everyones(db):
    ws = f.workspace(db, environment="development")
    admin = f.member(db, ws, Role.ADMIN)
    alice = f.member(db, ws, Role.DEVELOPER)
    mine, _ = f.key(db, ws, alice, "mine")
    gone, _ = f.key(db, ws, alice, "gone")
    admins, _ = f.key(db, ws, admin, "ops")
    db.run(keys.revoke_key, alice, gone)
    with db.session() as s:
        assert [k.id for k in keys.list_keys(s, alice, ws)] == [mine]
        assert [k.id for k in keys.list_keys(s, alice, ws, include_revoked=True)] == [mine, gone]
        assert [k.id for k in keys.list_keys(s, admin, ws, everyone=True)] == [mine, admins]
    with pytest.raises(PermissionDenied):
        db.run(keys.list_keys, alice, ws, everyone=True)


def test_find_key_by_name_prefix_or_number(db):
    ws = f.workspace(db, environment="development")
    admin = f.member(db, ws, Role.ADMIN)
    alice = f.member(db, ws, Role.DEVELOPER)
    bob = f.member(db, ws, Role.DEVELOPER)
    key_id, _ = f.key(db, ws, alice, "search-bot")
    prefix = get_key(db, key_id).prefix
    for ref in ("search-bot", prefix, str(key_id), f"#{key_id}"):
        assert db.run(keys.find_key, alice, ws, ref).id == key_id
    assert db.run(keys.find_key, admin, ws, "search-bot").id == key_id
    with pytest.raises(NotFound, match="No live key matches"):
        db.run(keys.find_key, bob, ws, "search-bot")
    f.key(db, ws, bob, "search-bot")
    with pytest.raises(InvalidInput, match="matches 2 keys"):
        db.run(keys.find_key, admin, ws, "search-bot")
    with pytest.raises(InvalidInput, match="Name the key"):
        db.run(keys.find_key, alice, ws, " ")


# --- the state machine ------------------------------------------------------


def test_disable_enable_revoke_state_machine(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    key_id, _ = f.key(db, ws, dev, "bot")
    with pytest.raises(Conflict, match="only a disabled key can be enabled"):
        db.run(keys.enable_key, dev, key_id)
    db.run(keys.disable_key, dev, key_id)
    assert get_key(db, key_id).status is KeyStatus.DISABLED
    with pytest.raises(Conflict, match="is disabled, not active"):
        db.run(keys.disable_key, dev, key_id)
    db.run(keys.enable_key, dev, key_id)
    assert get_key(db, key_id).status is KeyStatus.ACTIVE
    db.run(keys.disable_key, dev, key_id)
    db.run(keys.revoke_key, dev, key_id)  # a disabled key may still be revoked
    with pytest.raises(Conflict, match="already revoked"):
        db.run(keys.revoke_key, dev, key_id)
    for op, message in ((keys.disable_key, "is revoked, not active"), (keys.enable_key, "is revoked"), (keys.rotate_key, "is revoked")):
        with pytest.raises(Conflict, match=message):
            db.run(op, dev, key_id)
    assert key_audit(db, key_id) == ["key.create", "key.disable", "key.enable", "key.disable", "key.revoke"]
    assert [a.kind for a in actions(db, "disable_key") + actions(db, "enable_key") + actions(db, "revoke_key")] == [
        "disable_key",
        "disable_key",
        "enable_key",
        "revoke_key",
    ]


def test_revoking_wipes_an_unrevealed_secret(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    key_id, _ = f.key(db, ws, dev, "bot")
    db.run(keys.revoke_key, dev, key_id)
    with db.session() as s:
        assert s.get(KeyReveal, key_id).ciphertext is None
    with pytest.raises(Conflict, match="was revoked and its secret destroyed"):
        db.run(keys.reveal_key, dev, key_id)


# --- rotation ---------------------------------------------------------------


@pytest.mark.calendar
def test_rotation_makes_a_successor_and_retires_the_old_key_after_the_grace(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    old_id, _ = f.key(db, ws, dev, "bot", limit=parse_money("$5"))
    action = db.run(keys.rotate_key, dev, old_id)
    assert (action.kind, action.payload) == ("rotate_key", {"key_id": old_id, "grace_hours": 24})
    with pytest.raises(Conflict, match="already being rotated"):
        db.run(keys.rotate_key, dev, old_id)
    secret = mint_local_secret()
    made = db.run(keys.complete_rotation, action.id, secret=secret, provider="local", provider_ref=None)
    again = db.run(keys.complete_rotation, action.id, secret=mint_local_secret(), provider="local", provider_ref=None)
    assert made.created and not again.created and again.key.id == made.key.id
    new = get_key(db, made.key.id)
    assert (new.rotated_from_id, new.name, new.limit_micros, new.member_id) == (old_id, "bot", parse_money("$5"), get_key(db, old_id).member_id)
    assert db.run(keys.reveal_key, dev, new.id).secret == secret
    [retire] = actions(db, "retire_key")
    assert retire.payload == {"key_id": old_id, "successor_id": new.id}
    assert timedelta(hours=23, minutes=59) < retire.run_after - utcnow() <= timedelta(hours=24)
    assert get_key(db, old_id).status is KeyStatus.ACTIVE  # both work during the grace
    with pytest.raises(Conflict, match="already being rotated"):
        db.run(keys.rotate_key, dev, old_id)
    db.run(keys.retire_key, old_id)
    assert db.run(keys.retire_key, old_id) is None
    old = get_key(db, old_id)
    assert (old.status, old.status_reason) == (KeyStatus.REVOKED, "rotated")
    assert key_audit(db, old_id) == ["key.create", "key.rotate", "key.retire"]


@pytest.mark.calendar
def test_rotation_grace_follows_the_workspace_setting(db):
    ws = f.workspace(db, environment="development")
    dev = f.member(db, ws, Role.DEVELOPER)
    key_id, _ = f.key(db, ws, dev, "bot")
    with db.session() as s:
        s.get(Workspace, ws).rotation_grace_hours = 2
        s.commit()
    action = db.run(keys.rotate_key, dev, key_id)
    db.run(keys.complete_rotation, action.id, secret=mint_local_secret(), provider="local", provider_ref=None)
    [retire] = actions(db, "retire_key")
    assert timedelta(hours=1, minutes=50) < retire.run_after - utcnow() <= timedelta(hours=2)
    assert retire.status is ActionStatus.PENDING


def test_an_approved_key_request_is_provisioned_for_its_owner(db):
    ws = f.workspace(db, environment="production")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="bot", limit_micros=parse_money("$20"), expires_days=30)
    db.run(decide_request, admin, req.id, approve=True)
    [(key_id, _)] = f.provision_pending(db)
    key = get_key(db, key_id)
    assert key.member.slack_user_id == dev.slack_user_id and key.limit_micros == parse_money("$20")
    assert timedelta(days=29, hours=23) < key.expires_at - utcnow() <= timedelta(days=30)
    assert key.request_id == req.id


def test_templates_change_what_counts_as_within_the_preset(db):
    ws = f.workspace(db, environment="development")
    admin = f.member(db, ws, Role.ADMIN)
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(workspaces.set_role_template, admin, ws, "developer", key_limit_micros=parse_money("$5"), key_lifetime_days=None)
    assert db.run(keys.request_key, dev, ws, name="small", limit_micros=parse_money("$5")).state is RequestState.APPROVED
    assert db.run(keys.request_key, dev, ws, name="big", limit_micros=parse_money("$6")).state is RequestState.PENDING
