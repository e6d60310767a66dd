"""Purser deployed as production configures it (from the environment), for the secret-hygiene runs."""

from __future__ import annotations

import logging

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy.engine import make_url

from purser import wiring
from purser.wiring import create_app
from purser.settings import get_settings
from sandbox.serve import serve_in_thread
from store import secrets as store_secrets
from store.secrets import use_cipher
from tests.fixtures_workers import BOT_TOKEN, Workers
from workers.registry import use_broker
from workers.runtime import configure

from tests.reliability.secret_hygiene.search import TEAM, Config, Deployment, RecordingSender, every_logger_at_debug


@pytest.fixture
def deployed(db, slack_server, openrouter, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    saved_levels = every_logger_at_debug()
    _, slack_url = slack_server
    config = Config()
    url = db.url
    if db.dialect == "postgresql":  # trust auth ignores the password, so it can be a needle
        url = make_url(db.url).set(password=config.db_password).render_as_string(hide_password=False)
    env = {
        "DATABASE_URL": url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": config.signing_secret,
        "SLACK_API_URL": slack_url + "/api/",
        "SLACK_TEAM_ID": TEAM,
        "PURSER_SECRET_KEY": config.fernet_key,
        "PURSER_INGEST_TOKEN": config.ingest_token,
        "OPENROUTER_MANAGEMENT_KEY": config.management_key,
        "OPENROUTER_API_URL": openrouter.url + "/api/v1",
        "LOG_LEVEL": "DEBUG",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    get_settings.cache_clear()
    saved_cipher = store_secrets._cipher
    use_cipher(None)  # the processes read PURSER_SECRET_KEY themselves
    saved_key, openrouter.management_key = openrouter.management_key, config.management_key

    app = create_app()  # what gunicorn runs (it puts its process's broker in place: the test's comes after)
    saved_levels += every_logger_at_debug()  # create_app quiets some and makes new ones; hear everything
    broker = StubBroker()
    broker.emit_after("process_boot")
    use_broker(broker)
    settings = get_settings()
    rt = wiring.runtime(settings, wiring.database(settings))  # what a `purser worker` process builds
    configure(rt)
    workers = Workers(broker, rt)
    served = serve_in_thread(app)
    sender = RecordingSender(served.url + "/slack/events", config.signing_secret, TEAM)
    sender.answers = []
    yield Deployment(served.url, sender, workers, app, config, db.dialect == "postgresql")
    served.stop()
    workers.stop()
    broker.close()
    configure(None)
    for provider in rt.providers.values():
        getattr(provider, "close", lambda: None)()
    app.db.dispose()
    rt.db.dispose()
    get_settings.cache_clear()
    use_cipher(saved_cipher)
    openrouter.management_key = saved_key
    for lg, level, disabled in reversed(saved_levels):
        lg.setLevel(level)
        lg.disabled = disabled
