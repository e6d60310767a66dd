"""Workers under test: a real broker (the stub, or Redis), worker threads, and fakes at the edges over HTTP (shared by the workers and bot tests)."""

from __future__ import annotations

import time
from contextlib import contextmanager

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker

from bot.slack_client import Slack
from purser import wiring
from purser.settings import Settings
from sandbox.serve import serve_in_thread
from sandbox.slack_api import SlackAPI
from tests.fakes.openrouter import FakeOpenRouter
from workers import actors
from workers.providers.openrouter import OpenRouterProvider
from workers.registry import use_broker
from workers.runtime import Runtime, configure

QUEUES = ("commands", "actions", "maintenance")
BOT_TOKEN = "xoxb-test-token"


@pytest.fixture(scope="session")
def slack_server():
    api = SlackAPI(token=BOT_TOKEN)
    served = serve_in_thread(api)
    yield api, served.url
    served.stop()


@pytest.fixture
def slack_api(slack_server):
    api, _ = slack_server
    api.reset()
    yield api
    assert not api.invalid, f"invalid Block Kit sent to Slack: {api.invalid}"


@pytest.fixture(scope="session")
def openrouter_server():
    fake = FakeOpenRouter()
    served = serve_in_thread(fake)
    yield fake, served.url
    served.stop()


@pytest.fixture
def openrouter(openrouter_server):
    fake, url = openrouter_server
    fake.reset()  # keys, workspaces, guardrails, spend, calls and scripted failures of earlier tests
    fake.url = url
    yield fake
    # as with Slack's Block Kit: whatever Purser sent OpenRouter fits OpenRouter's published schemas
    assert not fake.invalid, f"requests OpenRouter would refuse as invalid: {fake.invalid}"
    assert not fake.bad_answers, f"the fake answered outside OpenRouter's schemas: {fake.bad_answers}"


def workers_runtime(db, slack_server, openrouter_server) -> Runtime:
    _, slack_url = slack_server
    fake, or_url = openrouter_server
    rt = wiring.runtime(Settings(REDIS_URL=None), db, slack_client=Slack(db, BOT_TOKEN, slack_url + "/api/"))
    rt.providers["openrouter"] = OpenRouterProvider(fake.management_key, or_url + "/api/v1")
    db.on_new_actions(actors.enqueue)
    configure(rt)
    return rt


class Workers:
    """A broker with worker threads, and a way to wait until every chain of actions has run."""

    def __init__(self, broker: dramatiq.Broker, rt: Runtime) -> None:
        self.broker, self.rt = broker, rt
        self.worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=50)
        self.worker.start()

    def settle(self, timeout: float = 30) -> None:
        """Wait until the queues are empty, the workers idle, and no due action is left that a worker could take.

        An action still held by a worker's lease after the workers went idle belongs to a
        worker that died (a test's injected crash): it waits for its lease, as in life.
        """
        from datetime import timedelta

        from store import outbox

        deadline = time.monotonic() + timeout
        quiet = 0
        while time.monotonic() < deadline:
            for q in QUEUES:
                self.broker.join(q, timeout=int(max(1, deadline - time.monotonic()) * 1000))
            self.worker.join()
            with self.rt.db.session() as s:
                waiting = outbox.due(s, older_than=timedelta(0))
            quiet = quiet + 1 if not waiting else 0
            if quiet >= 2:  # twice in a row: nothing was enqueued between the checks
                return
            time.sleep(0.05)
        raise AssertionError("actions still pending after the timeout")

    def stop(self) -> None:
        self.worker.stop()


@pytest.fixture
def stub_workers(db, slack_server, openrouter_server):
    broker = StubBroker()
    broker.emit_after("process_boot")
    use_broker(broker)
    rt = workers_runtime(db, slack_server, openrouter_server)
    workers = Workers(broker, rt)
    yield workers
    workers.stop()
    broker.close()
    configure(None)


@pytest.fixture
def redis_workers(pg_db, redis_url, slack_server, openrouter_server):
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=redis_url)
    broker.flush_all()
    use_broker(broker)
    rt = workers_runtime(pg_db, slack_server, openrouter_server)
    workers = Workers(broker, rt)
    yield workers
    workers.stop()
    broker.flush_all()
    broker.close()
    configure(None)


@contextmanager
def served_web(db, slack_server, signing_secret: str, team_id: str):
    """The web app as production runs it, over real HTTP: commands that touch the store are
    acked at once and answered by a worker through their response_url."""
    _, slack_url = slack_server
    settings = Settings(SLACK_TEAM_ID=team_id, REDIS_URL=None)
    bolt = wiring.bolt(db, settings, token=BOT_TOKEN, api_url=slack_url + "/api/", queued_commands=True)
    app = wiring.web(db, settings, bolt, signing_secret)
    served = serve_in_thread(app)
    try:
        yield served
    finally:
        served.stop()
        app.gateway.close()
