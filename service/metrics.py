"""Prometheus metrics of the API process."""

from __future__ import annotations

import time
from typing import Any

from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "forum_http_request_duration_seconds", "HTTP request latency",
            ["method", "route", "status"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.nudges = Counter("forum_nudges_total", "Notifications that the log grew, by "
                              "how they went to the workers", ["via"], registry=self.registry)
        self.appends = Counter("forum_appends_total", "Appends to the event log",
                               ["stream_kind"], registry=self.registry)
        self.position = Gauge("forum_projection_position", "Checkpoint of each read model",
                              ["projection"], registry=self.registry)
        self.lag = Gauge("forum_projection_lag_events",
                         "Log head minus the read model's checkpoint (in position units)",
                         ["projection"], registry=self.registry)
        self.projected = Gauge("forum_events_projected_total",
                               "Events the workers have projected live (all processes)",
                               registry=self.registry)
        self.head = Gauge("forum_log_head_position", "Newest readable log position",
                          registry=self.registry)
        self.lag_seconds = Gauge(
            "forum_projection_lag_seconds",
            "Age of the oldest event each read model has not projected, readable or held "
            "behind the log's read horizon (0: caught up)", ["projection"],
            registry=self.registry)
        self.horizon_lag = Gauge(
            "forum_log_horizon_lag_seconds",
            "Age of the oldest committed event not readable yet: a transaction on the "
            "PostgreSQL cluster holds the log's read horizon (0: none waits; NaN: unknown)",
            registry=self.registry)

    def nudged(self, via: str) -> None:
        """A notification that the log grew: ``wake`` (published to listening workers) or
        ``broker`` (a catch_up message: no worker listened)."""
        self.nudges.labels(via).inc()

    def appended(self, stream_id: str) -> None:
        """One append to the stream ``stream_id``, counted by the stream's kind (the part
        before its first "-": forum, thread, member)."""
        self.appends.labels(stream_id.partition("-")[0]).inc()

    def middleware(self, app: ASGIApp) -> ASGIApp:
        children: dict[tuple[str, str, int], Any] = {}

        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":  # type: ignore[comparison-overlap]
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = [500]

            async def capture(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await app(scope, receive, capture)
            finally:
                labels = (str(scope.get("method", "-")), scope.get("path_template") or "unmatched",
                          status[0])
                child = children.get(labels)
                if child is None:  # labels() takes a lock and builds a key: do it once
                    child = children[labels] = self.requests.labels(
                        labels[0], labels[1], str(labels[2]))
                child.observe(time.perf_counter() - start)

        return timed
