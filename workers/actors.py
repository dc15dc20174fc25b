"""The actors: thin, with explicit names that are a wire contract. [dramatiq]"""

from __future__ import annotations

import dramatiq

from workers.broker import QUEUE
from workers.middleware import Resources


def declare(broker: dramatiq.Broker, resources: Resources) -> None:
    @dramatiq.actor(broker=broker, actor_name="catch_up", queue_name=QUEUE, max_retries=3)
    async def catch_up() -> None:
        """Resources.catch_up (the message carries nothing)."""
        await resources.catch_up()
