"""Every action kind carried out by its actor, once, whatever happens around it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import func, select

from store import budgets, credits, decisions, invitations, keys, members, requests, workspaces
from store.models import Action, ApiKey, KeyReveal
from store.money import parse_money
from store.types import ActionKind, ActionStatus, KeyStatus, Role, utcnow
from tests import factories as f
from tests.fakes.tcp_proxy import TcpProxy
from workers import actors, maintenance
from workers.registry import use_broker
from workers.faults import InjectedCrash

APPROVALS, ALERTS, AUDIT = "C0APPROVALS", "C0ALERTS", "C0AUDIT"


def dm(user) -> str:
    return "D" + user.slack_user_id[1:]


def setup_workspace(db, env="production"):
    ws = f.workspace(db, "acme", env)
    admin = f.member(db, ws, Role.ADMIN)
    db.run(workspaces.set_channels, f.OPERATOR, ws, approvals=APPROVALS, alerts=ALERTS, audit_channel=AUDIT)
    return ws, admin


def actions(db, kind=None):
    with db.session() as s:
        stmt = select(Action)
        if kind:
            stmt = stmt.where(Action.kind == kind)
        return list(s.scalars(stmt))


def texts(slack_api, channel) -> str:
    return "\n".join(m.text + str(m.blocks) for m in slack_api.channel_messages(channel))


def count(slack_api, channel, needle) -> int:
    return sum(needle in m.text for m in slack_api.channel_messages(channel))


def live_key(db, owner, ws, workers, name="bot", project=None, limit=None):
    req = db.run(keys.request_key, owner, ws, name=name, project=project, limit_micros=limit)
    if req.state.value == "pending":
        admins = [m for m in db.run(members.list_members, f.OPERATOR, ws) if m.role is Role.ADMIN]
        from store.permissions import Actor

        db.run(decisions.decide_request, Actor.slack(admins[0].slack_user_id), req.id, approve=True)
    workers.settle()
    with db.session() as s:
        return s.scalars(select(ApiKey).where(ApiKey.request_id == req.id)).one()


def test_request_posts_approval_then_decision_updates_it_and_tells_requester(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="search-bot", limit_micros=parse_money("$20"))
    stub_workers.settle()
    [message] = slack_api.channel_messages(APPROVALS)
    assert "request_approve" in str(message.blocks) and "$20.00" in str(message.blocks)
    db.run(decisions.decide_request, admin, req.id, approve=False, note="use the staging workspace")
    stub_workers.settle()
    [message] = slack_api.channel_messages(APPROVALS)  # updated in place, not posted again
    assert message.updated == 1 and "Denied" in str(message.blocks) and "request_approve" not in str(message.blocks)
    assert "use the staging workspace" in texts(slack_api, dm(dev))


def test_auto_approved_key_posts_no_approval_and_is_delivered(db, stub_workers, slack_api):
    ws, _ = setup_workspace(db, "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    key = live_key(db, dev, ws, stub_workers)
    assert slack_api.channel_messages(APPROVALS) == []
    assert key.status is KeyStatus.ACTIVE and "key_reveal" in texts(slack_api, dm(dev))


def test_action_run_twice_has_one_effect(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    key = live_key(db, dev, ws, stub_workers)
    [provision] = actions(db, "provision_key")  # which DMs the owner itself
    assert actions(db, "notify_key_ready") == []
    # Redelivered messages (the sweeper, a broker redelivery) find the actions done.
    actors.perform(actors.HANDLERS["provision_key"], provision.id)
    actors.ACTION_ACTORS["provision_key"].send(provision.id)
    stub_workers.settle()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 1
    assert len(slack_api.calls_to("chat.postMessage")) == len({(m.channel, m.ts) for m in slack_api.messages.values()})
    assert count(slack_api, dm(dev), "is ready") == 1
    assert key.id


def test_running_the_same_pending_action_twice_at_once_makes_one_key(db, stub_workers, slack_api):
    import threading

    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="bot")
    db.run(decisions.decide_request, admin, req.id, approve=True)  # the queue delivers it once …
    [provision] = actions(db, "provision_key")
    go = threading.Barrier(3)

    def deliver():  # … and two more deliveries race it (the sweeper, a broker redelivery)
        go.wait()
        actors.perform(actors.HANDLERS["provision_key"], provision.id)

    racers = [threading.Thread(target=deliver) for _ in range(3)]
    [t.start() for t in racers]
    [t.join() for t in racers]
    stub_workers.settle()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 1


def test_crash_between_provider_and_commit_then_retry_leaves_one_key(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="bot")
    stub_workers.rt.faults.add("provision_key.after_provider")
    stub_workers.worker.stop()
    db.run(decisions.decide_request, admin, req.id, approve=True)
    [provision] = actions(db, "provision_key")
    with pytest.raises(InjectedCrash):
        actors.perform(actors.HANDLERS["provision_key"], provision.id)
    stub_workers.rt.faults.clear()
    # The dead worker's lease has not lapsed: a redelivery now skips the action …
    actors.perform(actors.HANDLERS["provision_key"], provision.id)
    assert actions(db, "provision_key")[0].status is ActionStatus.PENDING
    # … and once it lapses, the sweeper hands it out again.
    db.run(lambda s: s.get(Action, provision.id).__setattr__("claimed_until", utcnow() - timedelta(seconds=1)))
    stub_workers.worker = __import__("dramatiq").Worker(stub_workers.broker, worker_threads=4, worker_timeout=50)
    stub_workers.worker.start()
    maintenance.sweep_outbox.send(0)
    stub_workers.settle()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 1
        assert s.get(Action, provision.id).status is ActionStatus.DONE


@pytest.mark.calendar
def test_rotation_makes_successor_then_retires_old_key_after_grace(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    old = live_key(db, dev, ws, stub_workers)
    db.run(keys.rotate_key, dev, old.id)
    stub_workers.settle()
    with db.session() as s:
        successor = s.scalars(select(ApiKey).where(ApiKey.rotated_from_id == old.id)).one()
        assert s.get(ApiKey, old.id).status is KeyStatus.ACTIVE  # still in its grace period
        [retire] = s.scalars(select(Action).where(Action.kind == "retire_key")).all()
        assert retire.run_after > utcnow() + timedelta(hours=23)
    assert "rotated key" in texts(slack_api, dm(dev))
    # The grace period ends.
    db.run(lambda s: s.get(Action, retire.id).__setattr__("run_after", utcnow() - timedelta(seconds=1)))
    maintenance.sweep_outbox.send(0)
    stub_workers.settle()
    with db.session() as s:
        assert s.get(ApiKey, old.id).status is KeyStatus.REVOKED
        assert s.get(ApiKey, successor.id).status is KeyStatus.ACTIVE


def test_revoke_disable_enable_are_carried_out(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    key = live_key(db, dev, ws, stub_workers)
    db.run(keys.disable_key, dev, key.id)
    db.run(keys.enable_key, dev, key.id)
    db.run(keys.revoke_key, admin, key.id)
    stub_workers.settle()
    kinds = {a.kind: a.status for a in actions(db)}
    assert kinds["disable_key"] is kinds["enable_key"] is kinds["revoke_key"] is ActionStatus.DONE


@pytest.mark.calendar
def test_budget_pause_is_announced_with_what_to_do_and_resume_follows_a_raise(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db, "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    f.project(db, ws, "search", budget=parse_money("$10"))
    key = live_key(db, dev, ws, stub_workers, project="search", limit=parse_money("$5"))
    f.spend(db, key.id, parse_money("$10"))
    stub_workers.settle()
    said = texts(slack_api, ALERTS)
    assert "100%" in said and "is paused" in said and "/ai-budget set search" in said
    db.run(budgets.set_project_budget, admin, ws, "search", parse_money("$50"))
    stub_workers.settle()
    assert "running again" in texts(slack_api, ALERTS)


@pytest.mark.calendar
def test_workspace_paused_when_credit_runs_out_and_resumed_by_top_up(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db, "development")
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(credits.add_credit, admin, ws, parse_money("$5"))
    key = live_key(db, dev, ws, stub_workers)
    f.spend(db, key.id, parse_money("$5"))
    stub_workers.settle()
    assert "credit pool is empty" in texts(slack_api, ALERTS) and "/ai-credits add" in texts(slack_api, ALERTS)
    db.run(credits.add_credit, admin, ws, parse_money("$20"))
    stub_workers.settle()
    assert "Workspace `acme` is running again" in texts(slack_api, ALERTS)


def test_invitation_dm_with_accept_and_email_invitee_is_found(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    slack_api.users["U0BYEMAIL"] = {"email": "ada@example.com", "name": "ada"}
    results = db.run(invitations.invite, admin, ws, ["U0NEWBIE1", "ada@example.com"], "viewer")
    assert [r.outcome for r in results] == ["invited", "invited"]
    stub_workers.settle()
    assert "invitation_accept" in texts(slack_api, "D0NEWBIE1")
    assert "invitation_accept" in texts(slack_api, "D0BYEMAIL")


def test_invitation_to_unknown_email_tells_the_inviter_why(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    db.run(invitations.invite, admin, ws, ["nobody@example.com"], "viewer")
    stub_workers.settle()
    [failed] = actions(db, "send_invitation")
    assert failed.status is ActionStatus.FAILED
    assert "nobody in this Slack has the e-mail nobody@example.com" in texts(slack_api, dm(admin))


def test_slack_refusing_a_channel_fails_the_action_with_a_readable_reason(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    db.run(workspaces.set_channels, f.OPERATOR, ws, approvals="C0GONE")
    original = slack_api.api_chat_postMessage
    slack_api.api_chat_postMessage = lambda args: {"ok": False, "error": "channel_not_found"} if args.get("channel") == "C0GONE" else original(args)
    try:
        db.run(keys.request_key, dev, ws, name="bot")
        stub_workers.settle()
    finally:
        slack_api.api_chat_postMessage = original
    [opened] = actions(db, "request_opened")
    assert opened.status is ActionStatus.FAILED and "channel_not_found" in opened.error


def test_slack_rate_limit_is_retried_without_posting_twice(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    slack_api.fail("chat.postMessage", status=429, retry_after=1, times=2)
    db.run(keys.request_key, dev, ws, name="bot")
    stub_workers.settle()
    assert len(slack_api.channel_messages(APPROVALS)) == 1


@pytest.mark.calendar
def test_expiry_and_reveal_wipe_jobs(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    key = live_key(db, dev, ws, stub_workers)
    req = db.run(keys.request_key, dev, ws, name="second")
    stub_workers.settle()
    db.run(lambda s: s.get(requests.Request, req.id).__setattr__("expires_at", utcnow() - timedelta(seconds=1)))
    db.run(lambda s: s.get(KeyReveal, key.id).__setattr__("expires_at", utcnow() - timedelta(seconds=1)))
    maintenance.expire_requests.send()
    maintenance.wipe_reveals.send()
    stub_workers.settle()
    with db.session() as s:
        assert s.get(requests.Request, req.id).state.value == "expired"
        assert s.get(KeyReveal, key.id).ciphertext is None
    assert "Expired" in texts(slack_api, APPROVALS)


@pytest.mark.calendar
def test_digest_reaches_the_audit_channel_and_says_the_chain_verifies(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    live_key(db, dev, ws, stub_workers)
    from store.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        db.run(budgets.create_project, dev, ws, "sneaky")
    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    maintenance.post_digest.send(ws, tomorrow)
    stub_workers.settle()
    said = texts(slack_api, AUDIT)
    assert "The audit chain verifies" in said and "key.create" in said and "Denied attempts" in said
    # A retried digest for the same day edits the message.
    maintenance.post_digest.send(ws, tomorrow)
    stub_workers.settle()
    assert len(slack_api.channel_messages(AUDIT)) == 1


def test_every_action_kind_the_store_emits_has_an_actor(db, stub_workers, slack_api):
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    f.project(db, ws, "search", budget=parse_money("$10"))
    key = live_key(db, dev, ws, stub_workers, project="search")
    db.run(budgets.set_workspace_cap, admin, ws, parse_money("$100"))
    db.run(workspaces.add_allowlist, admin, ws, "10.0.0.0/8")
    db.run(budgets.pause_project, admin, ws, "search", "audit week")
    db.run(budgets.resume_project, admin, ws, "search")
    db.run(keys.rotate_key, admin, key.id)
    stub_workers.settle()
    emitted = {a.kind for a in actions(db)}
    assert emitted <= set(actors.HANDLERS)
    assert {a.status for a in actions(db) if a.kind != "retire_key"} == {ActionStatus.DONE}


@pytest.mark.redis
def test_enqueue_lost_while_redis_is_down_is_delivered_by_the_sweeper(pg_db, redis_workers, slack_api, redis_url):
    db = pg_db
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    req = db.run(keys.request_key, dev, ws, name="bot")
    redis_workers.settle()
    # The relay enqueues through a broker whose Redis is down (a proxy we cut).
    from urllib.parse import urlparse

    target = urlparse(redis_url)
    proxy = TcpProxy(target.hostname, target.port)
    relay_broker = RedisBroker(url=f"redis://127.0.0.1:{proxy.port}{target.path}", socket_timeout=1, socket_connect_timeout=1)
    proxy.down()
    try:
        use_broker(relay_broker)
        db.run(decisions.decide_request, admin, req.id, approve=True)  # commits; the enqueue fails and is logged
        [provision] = actions(db, "provision_key")
        assert provision.status is ActionStatus.PENDING
    finally:
        use_broker(redis_workers.broker)
        proxy.close()
    maintenance.sweep_outbox.send(0)  # Redis is back (the real one): the sweeper delivers
    redis_workers.settle()
    with db.session() as s:
        assert s.get(Action, provision.id).status is ActionStatus.DONE
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 1
    assert "is ready" in texts(slack_api, dm(dev))


@pytest.mark.redis
def test_flow_on_real_redis_and_postgres(pg_db, redis_workers, slack_api):
    db = pg_db
    ws, admin = setup_workspace(db)
    dev = f.member(db, ws, Role.DEVELOPER)
    key = live_key(db, dev, ws, redis_workers)
    db.run(keys.revoke_key, admin, key.id)
    redis_workers.settle()
    assert {a.status for a in actions(db)} == {ActionStatus.DONE}
    assert count(slack_api, dm(dev), "is ready") == 1


def test_an_action_kind_without_a_handler_fails_at_import():
    """Outbox kinds are an enum the handlers' table is keyed by: a new kind nobody handles stops the workers from starting."""
    import subprocess
    import sys

    added = (
        "import enum, store.types as t;"
        "t.ActionKind = enum.StrEnum('ActionKind', {**{k.name: k.value for k in t.ActionKind}, 'NEW_THING': 'new_thing'});"
        "import workers.actors"
    )
    done = subprocess.run([sys.executable, "-c", added], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "no handler for action kind(s) ['new_thing']" in done.stderr, done.stderr[-500:]
    assert set(actors.HANDLERS) == set(ActionKind)


def test_emitting_a_kind_no_worker_knows_is_refused(db):
    from store import outbox

    with db.session() as s, pytest.raises(ValueError, match="provison_key"):
        outbox.emit(s, "provison_key", workspace_id=None)
