"""Each section's threads by the year they started."""

from __future__ import annotations

from events import ForumEvent
from events.threads import ThreadMoved, ThreadStarted
from workers.batch import Batch
from workers.readmodels import Namespace, score


class Archives:
    name = "archives"
    version = 1
    handles: frozenset[type] = frozenset({ThreadStarted, ThreadMoved})

    def apply(self, event: ForumEvent, ns: Namespace, batch: Batch) -> None:
        match event:
            case ThreadStarted():
                year = event.occurred_at.year
                batch.zadd(ns.archive(event.forum, year),
                          {str(event.thread_id): score(event.occurred_at)})
                batch.hincrby(ns.archive_years(event.forum), str(year), 1)
            case ThreadMoved():
                year, tid = event.created_at.year, str(event.thread_id)
                batch.zrem(ns.archive(event.from_forum, year), tid)
                batch.hincrby(ns.archive_years(event.from_forum), str(year), -1)
                batch.zadd(ns.archive(event.to_forum, year), {tid: score(event.created_at)})
                batch.hincrby(ns.archive_years(event.to_forum), str(year), 1)
