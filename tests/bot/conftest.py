"""The app over real HTTP with the workers running, the fake Slack API behind it, and a signed sender."""

from __future__ import annotations

import pytest

from tests.fixtures_workers import served_web
from tests.slack_requests import SlackSender

SIGNING_SECRET = "test-signing-secret"
TEAM = "local"


@pytest.fixture
def web(db, stub_workers, slack_server):
    with served_web(db, slack_server, SIGNING_SECRET, TEAM) as served:
        yield served


@pytest.fixture
def slack(web, slack_server) -> SlackSender:
    api, slack_url = slack_server
    return SlackSender(web.url + "/slack/events", SIGNING_SECRET, TEAM, slack=api, slack_url=slack_url)
