"""Hostile-input scenarios: the app over HTTP on real PostgreSQL, workers on a real Redis.

The fixtures every module here shares; ``checks.py`` reads everything Purser said back —
in replies and through the fake Slack Web API — and ``world.py`` sets up two workspaces.
"""

from __future__ import annotations

import uuid

import pytest

from store import invitations, keys, workspaces
from store.money import parse_money
from store.permissions import Actor
from store.types import Role
from tests import factories as f
from tests.fixtures_workers import Workers, served_web, workers_runtime
from tests.reliability.hostile.checks import REDIS_URL, SIGNING_SECRET, TEAM, settle
from tests.reliability.hostile.world import World, key_for
from tests.services import require
from tests.slack_requests import SlackSender


@pytest.fixture
def db(pg_db):
    """These scenarios run on PostgreSQL: its types refuse what SQLite lets through (NUL, overflow)."""
    return pg_db


@pytest.fixture
def workers(pg_db, slack_server, openrouter_server):
    from dramatiq.brokers.redis import RedisBroker

    from workers.registry import use_broker
    from workers.runtime import configure

    require(REDIS_URL, "Redis")
    # A namespace of its own: two runs sharing one Redis would otherwise take (and flush) each
    # other's messages, and each would wait for actions the other's workers swallowed.
    broker = RedisBroker(url=REDIS_URL, namespace=f"purser-hostile-{uuid.uuid4().hex[:12]}")
    use_broker(broker)
    running = Workers(broker, workers_runtime(pg_db, slack_server, openrouter_server))
    yield running
    running.stop()
    for key in broker.client.scan_iter(f"{broker.namespace}:*"):
        broker.client.delete(key)
    broker.close()
    configure(None)


@pytest.fixture
def web(pg_db, workers, slack_server):
    # Commands answered by a worker through their response_url: the worker's answers are fuzzed too.
    with served_web(pg_db, slack_server, SIGNING_SECRET, TEAM) as served:
        yield served


@pytest.fixture
def slack(web, slack_server) -> SlackSender:
    # With the Slack double, a command answered through its response_url reads like one answered in the ack.
    api, slack_url = slack_server
    return SlackSender(web.url + "/slack/events", SIGNING_SECRET, TEAM, slack=api, slack_url=slack_url)


@pytest.fixture
def world(db, workers, slack_api) -> World:
    alpha = f.workspace(db, "alpha", "production", team_id=TEAM)
    zulu = f.workspace(db, "zulu-secret", "production", team_id=TEAM, name="Zulu Moonshot Lab")
    admin, dev, viewer, billing = (f.member(db, alpha, role).slack_user_id for role in (Role.ADMIN, Role.DEVELOPER, Role.VIEWER, Role.BILLING))
    z_admin_actor = f.member(db, zulu, Role.ADMIN)
    z_dev_actor = f.member(db, zulu, Role.DEVELOPER)
    db.run(workspaces.set_channels, f.OPERATOR, alpha, approvals="C0ALPHAAPPR", alerts="C0ALPHAALRT", audit_channel="C0ALPHAAUDT")
    db.run(workspaces.set_channels, f.OPERATOR, zulu, approvals="C0ZULUAPPR", alerts="C0ZULUALRT", audit_channel="C0ZULUAUDT")
    f.project(db, alpha, "search", budget=parse_money("$100"))
    f.project(db, zulu, "moonshot", budget=parse_money("$100"))
    z_key = key_for(db, workers, zulu, z_dev_actor, "zbot", "moonshot")
    a_request = db.run(keys.request_key, Actor.slack(dev), alpha, name="pending-bot", project="search").id
    z_request = db.run(keys.request_key, z_dev_actor, zulu, name="zpending", project="moonshot").id
    [z_inv] = db.run(invitations.invite, z_admin_actor, zulu, ["U0ZINVITEE"], "developer")
    [a_inv] = db.run(invitations.invite, Actor.slack(admin), alpha, ["U0AINVITEE"], "developer")
    settle(workers)
    return World(alpha, zulu, admin, dev, viewer, billing, z_admin_actor.slack_user_id, z_dev_actor.slack_user_id, a_request, z_request, z_key, z_inv.invitation_id, a_inv.invitation_id, len(slack_api.calls))
