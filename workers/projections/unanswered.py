"""Threads nobody has answered yet, newest first, across sections."""

from __future__ import annotations

from events import ForumEvent
from events.threads import PostAdded, ThreadStarted
from workers.batch import Batch
from workers.readmodels import Namespace, score


class Unanswered:
    name = "unanswered"
    version = 1
    handles: frozenset[type] = frozenset({ThreadStarted, PostAdded})

    def apply(self, event: ForumEvent, ns: Namespace, batch: Batch) -> None:
        match event:
            case ThreadStarted():
                batch.zadd(ns.unanswered, {str(event.thread_id): score(event.occurred_at)})
            case PostAdded() if event.first_reply:
                batch.zrem(ns.unanswered, str(event.thread_id))
