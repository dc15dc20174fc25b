"""Threads nobody has answered yet, newest first, across sections."""

from __future__ import annotations

from events.threads import PostAdded, ThreadStarted
from workers.batch import Batch
from workers.projections.base import Projection
from workers.readmodels import Namespace


class Unanswered(Projection):
    name = "unanswered"
    version = 2
    cost = 0.5

    def on_thread_started(self, event: ThreadStarted, ns: Namespace, batch: Batch) -> None:
        batch.zadd_one(ns.unanswered, str(event.thread_id), event.occurred_at)

    def on_post_added(self, event: PostAdded, ns: Namespace, batch: Batch) -> None:
        if event.first_reply:
            batch.zrem(ns.unanswered, str(event.thread_id))
