"""The Dramatiq broker, built from settings with an explicit middleware list. [dramatiq]"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import (
    AgeLimit,
    AsyncIO,
    Callbacks,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from workers.settings import WorkerSettings

QUEUE = "projections"


class PromptRedisBroker(RedisBroker):
    """Dramatiq's Redis consumers back off up to the worker timeout (1 s) when idle; a
    nudge must not wait that long."""

    def __init__(self, *, idle_poll_ms: int, **parameters: Any) -> None:
        super().__init__(**parameters)
        self.idle_poll_ms = idle_poll_ms

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 5000) -> Any:
        return super().consume(queue_name, prefetch, min(timeout, self.idle_poll_ms))


def middleware(*, worker: bool = False) -> list[dramatiq.Middleware]:
    """The middleware of every broker; ``worker``: with what a worker process needs to run
    the async actor (an API process only enqueues)."""
    stack: list[dramatiq.Middleware] = [
        AgeLimit(max_age=60_000), TimeLimit(time_limit=120_000), ShutdownNotifications(),
        Callbacks(), Pipelines(), Retries(max_retries=3, min_backoff=100, max_backoff=2000),
    ]
    if worker:
        stack.append(AsyncIO())
    return stack


def build_broker(settings: WorkerSettings, *, worker: bool = False) -> dramatiq.Broker:
    """``worker``: the middleware a worker process needs (AsyncIO, resources); an API
    process only enqueues."""
    url = settings.broker
    broker: dramatiq.Broker
    if url.startswith(("amqp://", "amqps://")):
        broker = RabbitmqBroker(url=url, middleware=middleware(worker=worker),
                                connection_attempts=1)
    else:
        broker = PromptRedisBroker(
            idle_poll_ms=settings.idle_poll_ms, url=url, middleware=middleware(worker=worker),
            socket_connect_timeout=1, socket_timeout=5,
            namespace=f"{settings.key_prefix}-dramatiq",
        )
    broker.declare_queue(QUEUE)
    return broker
