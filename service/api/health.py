"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import math

import structlog
from litestar import Controller, MediaType, Response, get
from prometheus_client import generate_latest

from events.postgres import LogLag
from service import probes
from service.api.common import json_response
from service.api.openapi import PUBLIC, ok, problems
from service.api.schemas import Health, Readiness
from service.lifespan import Services
from service.metrics import Metrics
from service.readiness import NOT_READY, READY, Found, checkpoints, decide, projection_lags
from workers.checkpoints import positions
from workers.readmodels import PROJECTION_NAMES

log = structlog.get_logger(__name__)


async def positions_of(services: Services) -> dict[str, int | None]:
    return await positions(services.redis, services.reads.keys, list(PROJECTION_NAMES))


async def _positions(services: Services, timeout: float = 2.0) -> dict[str, int | None] | None:
    try:
        return await asyncio.wait_for(positions_of(services), timeout)
    except Exception as error:
        log.warning("ready_positions_unavailable", error=repr(error))
        return None


async def _lag(services: Services, present: dict[str, int], timeout: float = 2.0
               ) -> LogLag | None:
    try:
        return await asyncio.wait_for(services.store.lag(list(present.values())), timeout)
    except Exception as error:
        log.warning("ready_lag_unavailable", error=repr(error))
        return None


async def readiness(services: Services) -> Readiness:
    """Probe everything at once (each within its own timeout: about 4 s at worst, PostgreSQL
    hanging), then measure the lag where PostgreSQL and Redis allow it."""
    postgres, redis, broker, found = await asyncio.gather(
        probes.postgres(services.pool), probes.redis(services.redis),
        probes.broker("none" if services.settings.broker_url == "none"
                      else services.settings.broker),
        _positions(services))
    lag = None
    if postgres == probes.OK and found is not None:
        lag = await _lag(services, checkpoints(found))
    return decide(Found(postgres=postgres, redis=redis, broker=broker, positions=found,
                        lag=lag, max_lag=services.settings.ready_max_lag))


def _answer(report: Readiness, ready: bool) -> Response[bytes]:
    report.status = READY if ready else NOT_READY
    return json_response(report, 200 if ready else 503, None if ready else {"Retry-After": "2"})


class HealthController(Controller):
    tags = ["operators"]

    @get("/health", operation_id="health", security=PUBLIC, responses={
        200: ok(Health, "the process is alive"), **problems()})
    async def health(self) -> Response[bytes]:
        return json_response({"status": "ok"})

    @get("/ready", operation_id="ready", security=PUBLIC, responses={
        200: ok(Readiness, "ready to serve reads: Redis answers and every read model is "
                           "within the lag limit (PostgreSQL is reported, not required)"),
        503: ok(Readiness, "not ready to serve reads: ``reasons`` say why (Retry-After says "
                           "when to ask again)"),
        **{k: v for k, v in problems().items() if k != 503}})
    async def ready(self, services: Services) -> Response[bytes]:
        """What a load balancer routes on: can this process serve reads."""
        report = await readiness(services)
        return _answer(report, report.reads == READY)

    @get("/ready/writes", operation_id="readyForWrites", security=PUBLIC, responses={
        200: ok(Readiness, "ready to take writes: PostgreSQL answers"),
        503: ok(Readiness, "not ready to take writes: ``reasons`` say why (Retry-After says "
                           "when to ask again)"),
        **{k: v for k, v in problems().items() if k != 503}})
    async def ready_for_writes(self, services: Services) -> Response[bytes]:
        """Can this process take writes (PostgreSQL answers); the same report as /ready."""
        report = await readiness(services)
        return _answer(report, report.writes == READY)

    @get("/metrics", operation_id="metrics", security=PUBLIC, responses={
        200: ok(str, "Prometheus text exposition", "text/plain"), **problems()})
    async def metrics(self, services: Services, metrics: Metrics) -> Response[bytes]:
        present: dict[str, int] | None = None
        try:
            projected = await services.redis.hget(services.reads.keys.stats(), "projected")
            metrics.projected.set(int(projected or 0))
            present = checkpoints(await positions_of(services))
        except Exception as error:  # the process's own metrics are still worth serving
            log.warning("metrics_positions_unavailable", error=repr(error))
        lag = await _lag(services, present or {})
        # Unknown is not "no lag": a stale or zero value would hide an outage from an
        # alert. A read model that is not there (being built) shows no position or lag.
        metrics.horizon_lag.set(math.nan if lag is None else lag.held_seconds)
        for gauge in (metrics.position, metrics.lag, metrics.lag_seconds):
            gauge.clear()
        if lag is not None:
            metrics.head.set(lag.head)
        if present is not None and lag is not None:
            lags = projection_lags(present, lag)
            for name, position in present.items():
                metrics.position.labels(name).set(position)
                metrics.lag.labels(name).set(max(0, lag.head - position))
                metrics.lag_seconds.labels(name).set(lags[name])
        return Response(content=generate_latest(metrics.registry),
                        media_type=MediaType.TEXT,
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


