"""How the API tells the workers the log has grown: a ``catch_up`` message sent by actor
name, so the API never imports the actor modules. [dramatiq]"""

from __future__ import annotations

from collections.abc import Callable

import dramatiq

from workers.broker import QUEUE, build_broker
from workers.settings import WorkerSettings


def nudger(settings: WorkerSettings) -> Callable[[], None]:
    broker: dramatiq.Broker | None = None

    def send() -> None:
        nonlocal broker
        if broker is None:
            broker = build_broker(settings)
        broker.enqueue(dramatiq.Message(
            queue_name=QUEUE, actor_name="catch_up", args=(), kwargs={}, options={},
        ))

    return send
