"""Sections with their counters, and each section's threads ordered by last bump."""

from __future__ import annotations

from events.sections import ForumCreated
from events.threads import PostAdded, ThreadBumped, ThreadMoved, ThreadStarted
from workers.batch import Batch
from workers.projections.base import Projection
from workers.readmodels import Namespace


class ThreadList(Projection):
    name = "thread_list"
    version = 2
    cost = 2

    def on_forum_created(self, event: ForumCreated, ns: Namespace, batch: Batch) -> None:
        batch.zadd(ns.sections, {event.slug: event.occurred_at})
        batch.hset(ns.section(event.slug), mapping={
            "slug": event.slug, "title": event.title, "threads": 0, "posts": 0,
        })

    def on_thread_started(self, event: ThreadStarted, ns: Namespace, batch: Batch) -> None:
        batch.zadd_one(ns.section_threads(event.forum), str(event.thread_id),
                       event.occurred_at)
        batch.hincrby(ns.section(event.forum), "threads", 1)

    def on_post_added(self, event: PostAdded, ns: Namespace, batch: Batch) -> None:
        batch.hincrby(ns.section(event.forum), "posts", 1)

    def on_thread_bumped(self, event: ThreadBumped, ns: Namespace, batch: Batch) -> None:
        batch.zadd_one(ns.section_threads(event.forum), str(event.thread_id),
                       event.occurred_at)

    def on_thread_moved(self, event: ThreadMoved, ns: Namespace, batch: Batch) -> None:
        tid = str(event.thread_id)
        batch.zrem(ns.section_threads(event.from_forum), tid)
        batch.zadd(ns.section_threads(event.to_forum), {tid: event.bumped_at})
        batch.hincrby(ns.section(event.from_forum), "threads", -1)
        batch.hincrby(ns.section(event.from_forum), "posts", -event.posts)
        batch.hincrby(ns.section(event.to_forum), "threads", 1)
        batch.hincrby(ns.section(event.to_forum), "posts", event.posts)
