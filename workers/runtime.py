"""What actors need at run time: the store, Slack, the key providers. Built once per process."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from bot.slack_client import Slack
from store.db import Database
from workers.providers import get_provider
from workers.providers.base import KeyProvider

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    db: Database
    slack: Slack | None = None
    providers: dict[str, KeyProvider] = field(default_factory=dict)
    #: named points where tests inject a crash (see workers.faults)
    faults: set[str] = field(default_factory=set)

    def provider(self, name: str) -> KeyProvider:
        if name not in self.providers:
            self.providers[name] = get_provider(name)
        return self.providers[name]


_runtime: Runtime | None = None
_factory: Callable[[], Runtime] | None = None


def from_settings(db: Database | None = None) -> Runtime:
    """The workers' runtime; given ``db``, on that database with the hooks its owner set (``workers.inline``)."""
    from purser.settings import get_settings

    from gateway.invalidation import install_publisher

    from workers import actors

    settings = get_settings()
    if db is None:
        db = Database(settings.database_url)
        install_publisher(db, settings.redis_url)  # pauses and revocations reach every web process's cache at once
        # What an action's own commit emits (the "key is ready" DM after provisioning) goes to the
        # queue at once, not after the sweeper's half minute.
        db.on_new_actions(actors.enqueue)
    slack = None
    if settings.slack_bot_token:
        slack = Slack(db, settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    else:
        log.warning("SLACK_BOT_TOKEN is not set: workers will not post to Slack")
    return Runtime(db=db, slack=slack)


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = (_factory or from_settings)()
    return _runtime


def configure(rt: Runtime | None) -> None:
    """Use this runtime in this process (the all-in-one run and tests set their own)."""
    global _runtime
    _runtime = rt
