"""Threads nobody has answered yet, newest first, across sections."""

from __future__ import annotations

from events import RecordedEvent
from events.threads import PostAdded, ThreadStarted
from workers.projections.base import Pipe
from workers.readmodels import Namespace, score


class Unanswered:
    name = "unanswered"
    version = 1

    def apply(self, record: RecordedEvent, ns: Namespace, pipe: Pipe) -> None:
        event = record.event
        match event:
            case ThreadStarted():
                pipe.zadd(ns.unanswered, {str(event.thread_id): score(event.occurred_at)})
            case PostAdded() if event.first_reply:
                pipe.zrem(ns.unanswered, str(event.thread_id))
