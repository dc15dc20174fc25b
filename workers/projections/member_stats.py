"""Per author: threads started, posts written, reputation received; members' profiles;
the author's last ``RECENT`` threads and posts (the profile page's lists: ids only, the
titles are the thread pages' summaries; a deleted post leaves the list: see
``on_post_deleted``).

A member's profile is one hash. A guest has no profile of their own until their first
post, and then only counters: their names and first-post times are kept in two keys for
all guests (``Namespace.guest_names``, ``guest_firsts``), so a batch writes each guest's
name and start with one HSET and one ZADD NX for all of them, not three commands each.
"""

from __future__ import annotations

from events.members import MemberRegistered
from events.threads import PostAdded, PostDeleted, PostLiked, PostUnliked, ThreadStarted
from workers.batch import Batch
from workers.projections.base import Projection
from workers.readmodels import Namespace

RECENT = 20  # threads and posts kept per author


class MemberStats(Projection):
    name = "member_stats"
    # 2: guests' names and first posts in two keys for all guests; 3: recent threads, posts
    version = 4
    cost = 4

    def on_member_registered(self, event: MemberRegistered, ns: Namespace, batch: Batch
                             ) -> None:
        batch.hset(ns.member_of(event.name, False), mapping={
            "name": event.name, "guest": 0, "joined": event.occurred_at,
        })

    def on_thread_started(self, event: ThreadStarted, ns: Namespace, batch: Batch) -> None:
        self._count(event, ns, batch, "threads")
        key = ns.recent_threads(ns.counter_key(event.author, event.guest))
        batch.zadd_one(key, str(event.thread_id), event.occurred_at)
        batch.ztrim(key, RECENT)

    def on_post_added(self, event: PostAdded, ns: Namespace, batch: Batch) -> None:
        self._count(event, ns, batch, "posts")
        key = ns.recent_posts(ns.counter_key(event.author, event.guest))
        batch.zadd_one(key, f"{event.post_id}:{event.thread_id}:{event.number}",
                       event.occurred_at)
        batch.ztrim(key, RECENT)

    def on_post_deleted(self, event: PostDeleted, ns: Namespace, batch: Batch) -> None:
        # Not a ZREM from the recent posts: a trimmed set that also loses members would
        # end up other than its live self when rebuilt in other batches. The last
        # ``RECENT`` deleted posts by the same score hold every deleted one of the last
        # ``RECENT`` posts, which the read leaves out.
        key = ns.recent_deleted(ns.counter_key(event.author, event.guest))
        batch.zadd_one(key, f"{event.post_id}:{event.thread_id}:{event.number}",
                       event.created_at)
        batch.ztrim(key, RECENT)

    def on_post_liked(self, event: PostLiked, ns: Namespace, batch: Batch) -> None:
        batch.hincrby(ns.member_of(event.author, event.guest), "reputation", 1)

    def on_post_unliked(self, event: PostUnliked, ns: Namespace, batch: Batch) -> None:
        batch.hincrby(ns.member_of(event.author, event.guest), "reputation", -1)

    @staticmethod
    def _count(event: ThreadStarted | PostAdded, ns: Namespace, batch: Batch, counter: str
               ) -> None:
        author, guest = event.author, event.guest
        if guest:  # a guest's profile begins with their first post
            folded = ns.folded(author)
            batch.zadd_one(ns.guest_firsts, folded, event.occurred_at, nx=True)
            batch.hset(ns.guest_names, folded, author)
        batch.hincrby(ns.member_of(author, guest), counter, 1)
