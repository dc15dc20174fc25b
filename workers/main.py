"""The ``dramatiq workers.main`` target: broker first, then the actors. [dramatiq]"""

from __future__ import annotations

import dramatiq

from workers.actors import declare
from workers.broker import build_broker
from workers.middleware import Resources
from workers.settings import WorkerSettings


def setup(settings: WorkerSettings | None = None) -> dramatiq.Broker:
    settings = settings or WorkerSettings.from_env()
    broker = build_broker(settings, worker=True)
    resources = Resources(settings)
    broker.add_middleware(resources)
    dramatiq.set_broker(broker)
    declare(broker, resources)
    return broker


# Only `dramatiq workers.main` (run by `forum worker`) imports this module.
broker = setup()
