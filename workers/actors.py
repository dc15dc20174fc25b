"""The actors: thin, with explicit names that are a wire contract. [dramatiq]"""

from __future__ import annotations

import dramatiq

from workers.broker import QUEUE
from workers.middleware import Resources


def declare(broker: dramatiq.Broker, resources: Resources) -> None:
    @dramatiq.actor(broker=broker, actor_name="catch_up", queue_name=QUEUE, max_retries=3)
    async def catch_up() -> None:
        """Catch every live read model up with the log (the message carries nothing)."""
        assert resources.live is not None
        await resources.live.catch_up()
