"""Every actor Purser runs, and moving them all onto a process's broker.

`dramatiq purser.worker_process` loads them through this module, on the broker the
settings choose (``purser.wiring``).
"""

from __future__ import annotations

import dramatiq

from workers import actors, commands, maintenance

ALL = [*actors.ACTORS, *maintenance.ACTORS, *commands.ACTORS]


def use_broker(broker: dramatiq.Broker) -> dramatiq.Broker:
    """Move every Purser actor onto ``broker`` (tests switch between the stub and Redis)."""
    dramatiq.set_broker(broker)
    for actor in ALL:
        actor.broker = broker
        broker.declare_actor(actor)
    return broker
