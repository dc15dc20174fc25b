"""Each section's threads by the year they started."""

from __future__ import annotations

from events import RecordedEvent
from events.threads import ThreadMoved, ThreadStarted
from workers.projections.base import Pipe
from workers.readmodels import Namespace, score


class Archives:
    name = "archives"
    version = 1

    def apply(self, record: RecordedEvent, ns: Namespace, pipe: Pipe) -> None:
        event = record.event
        match event:
            case ThreadStarted():
                year = event.occurred_at.year
                pipe.zadd(ns.archive(event.forum, year),
                          {str(event.thread_id): score(event.occurred_at)})
                pipe.hincrby(ns.archive_years(event.forum), str(year), 1)
            case ThreadMoved():
                year, tid = event.created_at.year, str(event.thread_id)
                pipe.zrem(ns.archive(event.from_forum, year), tid)
                pipe.hincrby(ns.archive_years(event.from_forum), str(year), -1)
                pipe.zadd(ns.archive(event.to_forum, year), {tid: score(event.created_at)})
                pipe.hincrby(ns.archive_years(event.to_forum), str(year), 1)
