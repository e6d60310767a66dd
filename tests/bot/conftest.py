"""The app over real HTTP with the workers running, the fake Slack API behind it, and a signed sender."""

from __future__ import annotations

import pytest

from bot.app import build_app
from bot.web import WebApp, health_checks
from sandbox.serve import serve_in_thread
from tests.fixtures_workers import BOT_TOKEN
from tests.slack_requests import SlackSender

SIGNING_SECRET = "test-signing-secret"
TEAM = "local"


@pytest.fixture
def web(db, stub_workers, slack_server):
    _, slack_url = slack_server
    bolt = build_app(db, token=BOT_TOKEN, team_id=TEAM, api_url=slack_url + "/api/")
    app = WebApp(db, bolt, SIGNING_SECRET, health=health_checks(db, None))
    served = serve_in_thread(app)
    yield served
    served.stop()


@pytest.fixture
def slack(web) -> SlackSender:
    return SlackSender(web.url + "/slack/events", SIGNING_SECRET, TEAM)
