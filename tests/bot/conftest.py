"""The app over real HTTP with the workers running, the fake Slack API behind it, and a signed sender."""

from __future__ import annotations

import pytest

from bot.app import build_app
from bot.web import WebApp, health_checks
from sandbox.serve import serve_in_thread
from tests.fixtures_workers import BOT_TOKEN
from tests.slack_requests import SlackSender
from workers.commands import hand_off

SIGNING_SECRET = "test-signing-secret"
TEAM = "local"


@pytest.fixture
def web(db, stub_workers, slack_server):
    _, slack_url = slack_server
    # As in production: commands that touch the store go to the workers and answer through response_url.
    bolt = build_app(db, token=BOT_TOKEN, team_id=TEAM, api_url=slack_url + "/api/", handoff=hand_off)
    app = WebApp(db, bolt, SIGNING_SECRET, health=health_checks(db, None))
    served = serve_in_thread(app)
    yield served
    served.stop()


@pytest.fixture
def slack(web, slack_server) -> SlackSender:
    api, slack_url = slack_server
    return SlackSender(web.url + "/slack/events", SIGNING_SECRET, TEAM, slack=api, slack_url=slack_url)
