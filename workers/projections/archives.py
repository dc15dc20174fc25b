"""Each section's threads by the year they started, and every thread by when it started
(the newest first: the latest threads' feed)."""

from __future__ import annotations

from events.threads import ThreadMoved, ThreadStarted
from workers.batch import Batch
from workers.projections.base import Projection
from workers.readmodels import Namespace


class Archives(Projection):
    name = "archives"
    version = 3  # 2: ``newest``
    cost = 0.5

    def on_thread_started(self, event: ThreadStarted, ns: Namespace, batch: Batch) -> None:
        year = event.occurred_at.year
        batch.zadd(ns.archive(event.forum, year),
                   {str(event.thread_id): event.occurred_at})
        batch.hincrby(ns.archive_years(event.forum), str(year), 1)
        batch.zadd_one(ns.newest, str(event.thread_id), event.occurred_at)

    def on_thread_moved(self, event: ThreadMoved, ns: Namespace, batch: Batch) -> None:
        year, tid = event.created_at.year, str(event.thread_id)
        batch.zrem(ns.archive(event.from_forum, year), tid)
        batch.hincrby(ns.archive_years(event.from_forum), str(year), -1)
        batch.zadd(ns.archive(event.to_forum, year), {tid: event.created_at})
        batch.hincrby(ns.archive_years(event.to_forum), str(year), 1)
