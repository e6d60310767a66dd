"""The app over real HTTP with the workers running, the fake Slack API behind it, and a signed sender."""

from __future__ import annotations

import pytest

from purser import wiring
from purser.settings import Settings
from sandbox.serve import serve_in_thread
from tests.fixtures_workers import BOT_TOKEN
from tests.slack_requests import SlackSender

SIGNING_SECRET = "test-signing-secret"
TEAM = "local"


@pytest.fixture
def web(db, stub_workers, slack_server):
    _, slack_url = slack_server
    # As in production: commands that touch the store go to the workers and answer through response_url.
    settings = Settings(SLACK_TEAM_ID=TEAM, REDIS_URL=None)
    bolt = wiring.bolt(db, settings, token=BOT_TOKEN, api_url=slack_url + "/api/", queued_commands=True)
    app = wiring.web(db, settings, bolt, SIGNING_SECRET)
    served = serve_in_thread(app)
    yield served
    served.stop()
    app.gateway.close()


@pytest.fixture
def slack(web, slack_server) -> SlackSender:
    api, slack_url = slack_server
    return SlackSender(web.url + "/slack/events", SIGNING_SECRET, TEAM, slack=api, slack_url=slack_url)
