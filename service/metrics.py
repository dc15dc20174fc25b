"""Prometheus metrics of the API process."""

from __future__ import annotations

from typing import Any

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
        self._children: dict[tuple[str, str, int], Any] = {}

    def nudged(self, via: str) -> None:
        """A notification that the log grew: ``wake`` (published to listening workers) or
        ``broker`` (a catch_up message: no worker listened)."""
        self.nudges.labels(via).inc()

    def appended(self, stream_id: str) -> None:
        """One append to the stream ``stream_id``, counted by the stream's kind (the part
        before its first "-": forum, thread, member)."""
        self.appends.labels(stream_id.partition("-")[0]).inc()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One request answered (the edge, service/edge.py, times every routed request)."""
        key = (method, route, status)
        child = self._children.get(key)
        if child is None:  # labels() takes a lock and builds a key: once per label set
            child = self._children[key] = self.requests.labels(method, route, str(status))
        child.observe(seconds)
