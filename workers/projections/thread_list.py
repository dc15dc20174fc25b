"""Sections with their counters, and each section's threads ordered by last bump."""

from __future__ import annotations

from events import RecordedEvent
from events.sections import ForumCreated
from events.threads import PostAdded, ThreadBumped, ThreadMoved, ThreadStarted
from workers.projections.base import Pipe
from workers.readmodels import Namespace, score


class ThreadList:
    name = "thread_list"
    version = 1

    def apply(self, record: RecordedEvent, ns: Namespace, pipe: Pipe) -> None:
        event = record.event
        match event:
            case ForumCreated():
                pipe.zadd(ns.sections, {event.slug: score(event.occurred_at)})
                pipe.hset(ns.section(event.slug), mapping={
                    "slug": event.slug, "title": event.title, "threads": 0, "posts": 0,
                })
            case ThreadStarted():
                pipe.zadd(ns.section_threads(event.forum),
                          {str(event.thread_id): score(event.occurred_at)})
                pipe.hincrby(ns.section(event.forum), "threads", 1)
            case PostAdded():
                pipe.hincrby(ns.section(event.forum), "posts", 1)
            case ThreadBumped():
                pipe.zadd(ns.section_threads(event.forum),
                          {str(event.thread_id): score(event.occurred_at)})
            case ThreadMoved():
                tid = str(event.thread_id)
                pipe.zrem(ns.section_threads(event.from_forum), tid)
                pipe.zadd(ns.section_threads(event.to_forum), {tid: score(event.bumped_at)})
                pipe.hincrby(ns.section(event.from_forum), "threads", -1)
                pipe.hincrby(ns.section(event.from_forum), "posts", -event.posts)
                pipe.hincrby(ns.section(event.to_forum), "threads", 1)
                pipe.hincrby(ns.section(event.to_forum), "posts", event.posts)
