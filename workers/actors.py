"""The actors: thin, with explicit names that are a wire contract. [dramatiq]"""

from __future__ import annotations

import asyncio

import dramatiq

from workers.broker import QUEUE
from workers.middleware import Resources


def declare(broker: dramatiq.Broker, resources: Resources) -> None:
    @dramatiq.actor(broker=broker, actor_name="catch_up", queue_name=QUEUE, max_retries=3)
    async def catch_up() -> None:
        """Catch every live read model, and the search model, up with the log (the
        message carries nothing). Either goes on when the other fails."""
        assert resources.live is not None and resources.search is not None
        for outcome in await asyncio.gather(resources.live.catch_up(),
                                            resources.search.catch_up(),
                                            return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome
