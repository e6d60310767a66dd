"""What actors need at run time: the store, Slack, the key providers, the command desk. Built once per process.

``purser.wiring`` builds it from the settings and hands it over with ``configure`` (or,
for processes that fork their workers, ``configure_lazily``); tests build their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from bot.slack_client import Slack
from store.db import Database
from store.spikes import SpikeRule
from workers.providers import local_only
from workers.providers.base import KeyProvider


class CommandDesk(Protocol):
    """Answers a slash command a worker carries out (``workers.commands``): the body for its response_url."""

    def carry_out(self, command: str, team_id: str, user_id: str, channel_id: str | None, text: str) -> dict[str, Any] | None: ...

    def notice(self, text: str) -> dict[str, Any]: ...


@dataclass
class Runtime:
    db: Database
    slack: Slack | None = None
    providers: dict[str, KeyProvider] = field(default_factory=dict)
    #: named points where tests inject a crash (see workers.faults)
    faults: set[str] = field(default_factory=set)
    #: builds the provider a workspace names; the settings give OpenRouter its management key
    make_provider: Callable[[str], KeyProvider] = local_only
    commands: CommandDesk | None = None
    #: seconds between readings of a key that spends, and the longest an idle key waits (workers.quota)
    poll_intervals: tuple[int, int] = (15, 300)
    #: the Slack team this install serves (the directory sync reads its users)
    team_id: str = "local"
    #: what counts as a spend spike (the settings' PURSER_SPIKE_*)
    spike_rule: SpikeRule = field(default_factory=SpikeRule)

    def provider(self, name: str) -> KeyProvider:
        if name not in self.providers:
            self.providers[name] = self.make_provider(name)
        return self.providers[name]


_runtime: Runtime | None = None
_factory: Callable[[], Runtime] | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        if _factory is None:
            raise RuntimeError("no workers runtime in this process: purser.wiring sets one up")
        _runtime = _factory()
    return _runtime


def configure(rt: Runtime | None) -> None:
    """Use this runtime in this process (the all-in-one run and tests set their own)."""
    global _runtime
    _runtime = rt


def configure_lazily(factory: Callable[[], Runtime]) -> None:
    """Build the runtime on first use: a worker process forks after import, and connections must not cross a fork."""
    global _factory, _runtime
    _factory, _runtime = factory, None
