"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from urllib.parse import urlsplit

import structlog
from litestar import Controller, MediaType, Response, get
from prometheus_client import generate_latest

from service.api.common import json_response
from service.api.openapi import PUBLIC, ok, problems
from service.api.schemas import Health, Readiness
from service.lifespan import Services
from service.metrics import Metrics
from service.settings import Settings
from workers.checkpoints import positions
from workers.readmodels import PROJECTION_NAMES

log = structlog.get_logger(__name__)


async def positions_of(services: Services) -> dict[str, int | None]:
    return await positions(services.redis, services.reads.keys, list(PROJECTION_NAMES))


async def _check(coro: object, timeout: float = 2.0) -> str:
    try:
        await asyncio.wait_for(coro, timeout)  # type: ignore[arg-type]
    except Exception as error:
        return f"down: {type(error).__name__}"
    return "ok"


async def _broker(settings: Settings) -> str:
    """Reachability of the broker. Not a condition of readiness: writes succeed and the
    workers' periodic catch-up keeps projecting while it is away (only slower)."""
    if settings.broker_url == "none":
        return "not used"
    parts = urlsplit(settings.broker)
    default = 5672 if parts.scheme.startswith("amqp") else 6379

    async def connect() -> None:
        _, writer = await asyncio.open_connection(parts.hostname or "127.0.0.1",
                                                  parts.port or default)
        writer.close()

    return await _check(connect(), timeout=1.0)


async def _lag_seconds(services: Services, positions: dict[str, int | None], head: int
                       ) -> float:
    """How long ago the oldest event not yet projected everywhere was recorded."""
    lowest = min((p for p in positions.values() if p is not None), default=head)
    waiting = await services.store.read_all(lowest, 1)
    if not waiting:
        return 0.0
    return max(0.0, (datetime.now(UTC) - waiting[0].recorded_at).total_seconds())


class HealthController(Controller):
    tags = ["operators"]

    @get("/health", operation_id="health", security=PUBLIC, responses={
        200: ok(Health, "the process is alive"), **problems()})
    async def health(self) -> Response[bytes]:
        return json_response({"status": "ok"})

    @get("/ready", operation_id="ready", security=PUBLIC, responses={
        200: ok(Readiness, "ready to serve: PostgreSQL and Redis answer, projections keep up"),
        503: ok(Readiness, "not ready: the checks say why (Retry-After says when to ask again)"),
        **{k: v for k, v in problems().items() if k != 503}})
    async def ready(self, services: Services) -> Response[bytes]:
        postgres = await _check(services.pool.fetchval("SELECT 1"))
        redis = await _check(services.redis.ping())
        checks: dict[str, object] = {"postgres": postgres, "redis": redis,
                                     "broker": await _broker(services.settings)}
        ready = postgres == "ok" and redis == "ok"
        if ready:
            head = await services.store.head()
            positions = await positions_of(services)
            behind = {n: head - p for n, p in positions.items() if p is not None and p < head}
            missing = [n for n, p in positions.items() if p is None]
            checks["head"] = head
            checks["projections"] = positions
            if missing:
                ready = False
                checks["rebuilding"] = missing
            lag = await _lag_seconds(services, positions, head) if behind else 0.0
            checks["lag_seconds"] = lag
            if lag > 1:  # say who holds the log back, when someone does
                checks["horizon_held_by"] = await services.store.horizon_holder()
            if lag > services.settings.ready_max_lag:
                ready = False
        checks["status"] = "ready" if ready else "not ready"
        return json_response(checks, 200 if ready else 503,
                             None if ready else {"Retry-After": "2"})

    @get("/metrics", operation_id="metrics", security=PUBLIC, responses={
        200: ok(str, "Prometheus text exposition", "text/plain"), **problems()})
    async def metrics(self, services: Services, metrics: Metrics) -> Response[bytes]:
        try:
            head = await services.store.head()
            metrics.head.set(head)
            projected = await services.redis.hget(services.reads.keys.stats(), "projected")
            metrics.projected.set(int(projected or 0))
            for name, position in (await positions_of(services)).items():
                if position is not None:
                    metrics.position.labels(name).set(position)
                    metrics.lag.labels(name).set(max(0, head - position))
        except Exception as error:  # the process's own metrics are still worth serving
            log.warning("metrics_positions_unavailable", error=repr(error))
        return Response(content=generate_latest(metrics.registry),
                        media_type=MediaType.TEXT,
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


