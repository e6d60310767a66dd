"""Workers: dramatiq actors that carry out the store's actions, the clock's jobs and slash commands."""

import dramatiq
from dramatiq.brokers.stub import StubBroker

# Actors are declared against the global broker when their module is imported. Each process
# puts its own broker in place with workers.registry.use_broker (purser.wiring does it); until
# then they wait on an in-process stand-in rather than on dramatiq's default, RabbitMQ.
if dramatiq.broker.global_broker is None:
    dramatiq.set_broker(StubBroker())
