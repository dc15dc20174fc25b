"""Where the thread page is projected: numbered posts, each with its author's counter key
(for live counters), likes, and the thread's summary. Which thread and number a post id has
is not kept here: the log's own index answers that (``EventStore.locate_post``).

Each post is stored once, as a short positional JSON array holding its BBCode source and
not its HTML (workers/readmodels/stored_posts.py: the HTML is made again on read, and
remembered); a read adds the author's live counters and the like count
(workers/readmodels/scripts.py THREAD_PAGE). The page's markup around a post is the
service's (service/web/posts.py).

A thread's page (posts, likes) is a cache Redis may evict, the summary is not
(docs/design.md, "Thread pages as a cache"): the page's keys carry an expire, later posts
go only onto a page that is there (RPUSHX), and a build (``ns.pages`` False) writes no
pages at all; a read that finds a page missing or partial rebuilds it from the thread's
events with these same handlers (workers/page_rebuild.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from events.threads import (
    PostAdded,
    PostDeleted,
    PostEdited,
    PostLiked,
    PostUnliked,
    QuoteInfo,
    ThreadBumped,
    ThreadLocked,
    ThreadMoved,
    ThreadStarted,
    ThreadUnlocked,
)
from workers.batch import Batch
from workers.projections.base import Projection
from workers.readmodels import Namespace, stored_posts
from workers.readmodels.keys import PAGE_MARK, PAGE_TTL, thread_partition


def post_prefix(
    post_id: int, thread_id: int, number: int, created_at: datetime,
    edited_at: datetime | None, deleted: bool, body: str, quotes: list[QuoteInfo],
    author: str, guest: bool, op: bool,
) -> bytes:
    """The post as the thread page stores it (the thread and number are the list's)."""
    return stored_posts.encode(
        post_id, created_at, edited_at, deleted, body,
        [(q.post_id, q.number, q.author) for q in quotes] if quotes else [], author, guest,
        op)


def liker(number: int, name: str) -> str:
    """A like's member of ``Namespace.likers``: the post's number and who likes it, as
    the decision compares them (folded)."""
    return f"{number}:{name.casefold()}"


class ThreadPage(Projection):
    name = "thread_page"
    version = 7  # 2: no post index (it moved to the log's own index); 3: posts stored
    # as positional arrays of their source alone; 4: pages an evictable cache, each post
    # with its author's counter key (no list of authors); 5: edits' versions and likers; 6:
    # keys in partitions (workers/readmodels/keys.py); 7: longer bodies stored deflated
    cost = 8
    partitioned = True  # every key an event changes is its thread's

    def partition_of(self, event: Any) -> int:
        return thread_partition(event.thread_id)

    def on_thread_started(self, event: ThreadStarted, ns: Namespace, batch: Batch) -> None:
        batch.hset(ns.thread(event.thread_id), mapping={
            "id": event.thread_id, "title": event.title, "forum": event.forum,
            "author": event.author, "guest": int(event.guest), "posts": 0,
            "replies": 0, "created_at": event.occurred_at, "bumped_at": event.occurred_at,
            "locked": 0,
        })
        if ns.pages:
            batch.hset(ns.likes(event.thread_id), PAGE_MARK, 1)

    def on_post_added(self, event: PostAdded, ns: Namespace, batch: Batch) -> None:
        tid, number, author, guest = event.thread_id, event.number, event.author, event.guest
        thread, posts, likes = ns.thread_keys(tid)
        if ns.pages:
            # Onto a page that is there (evicted: the next read rebuilds it whole).
            push = batch.rpush if number == 1 else batch.rpushx
            push(posts, post_prefix(
                event.post_id, tid, number, event.occurred_at, None, False, event.body,
                event.quotes, author, guest, event.op,
            ))
            batch.expire(posts, PAGE_TTL)
            batch.expire(likes, PAGE_TTL)
        batch.hset(thread, "posts", number)
        batch.hset(thread, "replies", number - 1)

    def on_thread_bumped(self, event: ThreadBumped, ns: Namespace, batch: Batch) -> None:
        batch.hset(ns.thread(event.thread_id), "bumped_at", event.occurred_at)

    def on_post_edited(self, event: PostEdited, ns: Namespace, batch: Batch) -> None:
        # The version is kept in the post's revisions too: the page's list is
        # overwritten, and a handler never reads the read model to copy the old one out
        # (the first version is the log's PostAdded, read where the history is shown).
        # Revisions and likers are not page keys: never evicted (no expire), written by
        # builds too, since a page rebuilt from the thread's events does not remake them.
        version = post_prefix(
            event.post_id, event.thread_id, event.number, event.created_at,
            event.occurred_at, False, event.body, event.quotes, event.author, event.guest,
            event.op,
        )
        if ns.pages:
            batch.lset(ns.posts(event.thread_id), event.number - 1, version)
        batch.rpush(ns.revisions(event.thread_id, event.number), version)

    def on_post_deleted(self, event: PostDeleted, ns: Namespace, batch: Batch) -> None:
        if ns.pages:
            batch.lset(ns.posts(event.thread_id), event.number - 1, post_prefix(
                event.post_id, event.thread_id, event.number, event.created_at,
                event.edited_at, True, "", [], event.author, event.guest, event.op,
            ))
        # A deleted post's history is not shown: its earlier versions go too.
        batch.drop_list(ns.revisions(event.thread_id, event.number))

    def on_post_liked(self, event: PostLiked, ns: Namespace, batch: Batch) -> None:
        if ns.pages:
            batch.hset(ns.likes(event.thread_id), str(event.number), event.likes)
        batch.zadd_one(ns.likers(event.thread_id), liker(event.number, event.actor), 0)

    def on_post_unliked(self, event: PostUnliked, ns: Namespace, batch: Batch) -> None:
        if ns.pages:
            batch.hset(ns.likes(event.thread_id), str(event.number), event.likes)
        batch.zrem(ns.likers(event.thread_id), liker(event.number, event.actor))

    def on_thread_locked(self, event: ThreadLocked, ns: Namespace, batch: Batch) -> None:
        batch.hset(ns.thread(event.thread_id), "locked", 1)

    def on_thread_unlocked(self, event: ThreadUnlocked, ns: Namespace, batch: Batch
                           ) -> None:
        batch.hset(ns.thread(event.thread_id), "locked", 0)

    def on_thread_moved(self, event: ThreadMoved, ns: Namespace, batch: Batch) -> None:
        batch.hset(ns.thread(event.thread_id), "forum", event.to_forum)
