"""What `purser worker` has dramatiq load (`dramatiq purser.worker_process`): the broker and runtime from the settings, then every actor."""

from purser import wiring

_settings = wiring.settings()
wiring.configure_store(_settings)
wiring.broker(_settings)  # imports every actor (workers.registry) and moves them onto it
wiring.workers_runtime(_settings)
