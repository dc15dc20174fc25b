"""Sections with their counters, and each section's threads ordered by last bump."""

from __future__ import annotations

from events import ForumEvent
from events.sections import ForumCreated
from events.threads import PostAdded, ThreadBumped, ThreadMoved, ThreadStarted
from workers.batch import Batch
from workers.readmodels import Namespace, score


class ThreadList:
    name = "thread_list"
    version = 1
    handles: frozenset[type] = frozenset({
        ForumCreated, ThreadStarted, PostAdded, ThreadBumped, ThreadMoved
    })

    def apply(self, event: ForumEvent, ns: Namespace, batch: Batch) -> None:
        match event:
            case ForumCreated():
                batch.zadd(ns.sections, {event.slug: score(event.occurred_at)})
                batch.hset(ns.section(event.slug), mapping={
                    "slug": event.slug, "title": event.title, "threads": 0, "posts": 0,
                })
            case ThreadStarted():
                batch.zadd(ns.section_threads(event.forum),
                          {str(event.thread_id): score(event.occurred_at)})
                batch.hincrby(ns.section(event.forum), "threads", 1)
            case PostAdded():
                batch.hincrby(ns.section(event.forum), "posts", 1)
            case ThreadBumped():
                batch.zadd(ns.section_threads(event.forum),
                          {str(event.thread_id): score(event.occurred_at)})
            case ThreadMoved():
                tid = str(event.thread_id)
                batch.zrem(ns.section_threads(event.from_forum), tid)
                batch.zadd(ns.section_threads(event.to_forum), {tid: score(event.bumped_at)})
                batch.hincrby(ns.section(event.from_forum), "threads", -1)
                batch.hincrby(ns.section(event.from_forum), "posts", -event.posts)
                batch.hincrby(ns.section(event.to_forum), "threads", 1)
                batch.hincrby(ns.section(event.to_forum), "posts", event.posts)
