"""Slack takes Purser's access away (tokens_revoked, app_uninstalled): every process stops calling Slack, /healthz says why."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from purser import wiring
from purser.settings import Settings
from store import keys
from store.models import Action, ApiKey
from store.types import ActionStatus, Role
from tests import factories as f
from tests.bot.conftest import TEAM
from tests.fixtures_workers import BOT_TOKEN


@pytest.mark.parametrize("event", [{"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["U0PURSER"]}}, {"type": "app_uninstalled"}])
def test_after_slack_revokes_the_access_nothing_is_sent_and_healthz_says_why(db, web, slack, slack_api, stub_workers, slack_server, event):
    ws = f.workspace(db, "quiet", "development", team_id=TEAM)
    dev = f.member(db, ws, Role.DEVELOPER)
    assert httpx.get(web.url + "/healthz").status_code == 200
    slack.event(event)
    stub_workers.settle()
    health = httpx.get(web.url + "/healthz")
    assert health.status_code == 503 and "reinstall Purser" in health.json()["problems"]["slack"]
    before = len(slack_api.calls)
    db.run(keys.request_key, dev, ws, name="after")
    stub_workers.settle()
    assert len(slack_api.calls) == before  # no call that Slack would refuse
    with db.session() as s:
        # A key its owner could never be offered (the DM that reveals it cannot be sent) is not made.
        provision = s.scalars(select(Action).where(Action.kind == "provision_key")).one()
        assert provision.status is ActionStatus.FAILED and "reinstall Purser" in provision.error
        assert s.scalars(select(ApiKey)).all() == []
    # a reinstall: the new token works, and at start the access is back
    _, slack_url = slack_server
    assert wiring.slack_access_back(db, Settings(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=slack_url + "/api/", REDIS_URL=None))
    assert httpx.get(web.url + "/healthz").status_code == 200
