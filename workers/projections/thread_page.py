"""Where the thread page is projected: numbered posts as ready JSON, their authors (for
live counters), likes, and the thread's summary. Which thread and number a post id has
is not kept here: the log's own index answers that (``EventStore.locate_post``).

Each post is stored as JSON bytes missing only its tail, the author's live counters and
the like count, which a read splices in (workers/readmodels/scripts.py THREAD_PAGE). So a
page read re-encodes nothing, and counters beside every post are the author's current
ones. The body's HTML is rendered here, once (as Discourse "cooks" a post); the page's
markup around it is the service's (service/web/posts.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from common.bbcode import render
from common.html_text import tagless_html
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
from workers.readmodels import Namespace, rfc3339
from workers.readmodels.values import AuthorHead, PostHead, StoredQuote

_encoder: Final = msgspec.json.Encoder()


def post_prefix(
    post_id: int, thread_id: int, number: int, created_at: datetime,
    edited_at: datetime | None, deleted: bool, body: str, quotes: list[QuoteInfo],
    author: str, guest: bool, op: bool,
) -> bytes:
    """The post's JSON without its closing ``}}``, the read splices in the rest."""
    if deleted:
        body, html, stored = "", "", []
    else:
        tagless = tagless_html(body)  # most posts: no call into the parser's module
        html = render(body) if tagless is None else tagless
        stored = [StoredQuote(q.post_id, q.number, q.author) for q in quotes] if quotes else []
    encoded = _encoder.encode(PostHead(
        post_id, thread_id, number, rfc3339(created_at),
        rfc3339(edited_at) if edited_at else None, deleted, body, html, stored,
        AuthorHead(author, guest, op),
    ))
    return encoded[:-2]


def liker(number: int, name: str) -> str:
    """A like's member of ``Namespace.likers``: the post's number and who likes it, as
    the decision compares them (folded)."""
    return f"{number}:{name.casefold()}"


class ThreadPage(Projection):
    name = "thread_page"
    # 2: no post index (it moved to the log's own index); 3: edits' versions, likers
    version = 3
    cost = 8

    def on_thread_started(self, event: ThreadStarted, ns: Namespace, batch: Batch) -> None:
        batch.hset(ns.thread(event.thread_id), mapping={
            "id": event.thread_id, "title": event.title, "forum": event.forum,
            "author": event.author, "guest": int(event.guest), "posts": 0,
            "replies": 0, "created_at": event.occurred_at, "bumped_at": event.occurred_at,
            "locked": 0,
        })

    def on_post_added(self, event: PostAdded, ns: Namespace, batch: Batch) -> None:
        tid, number, author, guest = event.thread_id, event.number, event.author, event.guest
        thread, posts, authors = ns.thread_keys(tid)
        batch.rpush(posts, post_prefix(
            event.post_id, tid, number, event.occurred_at, None, False, event.body,
            event.quotes, author, guest, event.op,
        ))
        batch.rpush(authors, ns.counter_key(author, guest))
        batch.hset(thread, "posts", number)
        batch.hset(thread, "replies", number - 1)

    def on_thread_bumped(self, event: ThreadBumped, ns: Namespace, batch: Batch) -> None:
        batch.hset(ns.thread(event.thread_id), "bumped_at", event.occurred_at)

    def on_post_edited(self, event: PostEdited, ns: Namespace, batch: Batch) -> None:
        # The version is kept in the post's revisions too: the page's list is
        # overwritten, and a handler never reads the read model to copy the old one out
        # (the first version is the log's PostAdded, read where the history is shown).
        version = post_prefix(
            event.post_id, event.thread_id, event.number, event.created_at,
            event.occurred_at, False, event.body, event.quotes, event.author, event.guest,
            event.op,
        )
        batch.lset(ns.posts(event.thread_id), event.number - 1, version)
        batch.rpush(ns.revisions(event.thread_id, event.number), version)

    def on_post_deleted(self, event: PostDeleted, ns: Namespace, batch: Batch) -> None:
        batch.lset(ns.posts(event.thread_id), event.number - 1, post_prefix(
            event.post_id, event.thread_id, event.number, event.created_at,
            event.edited_at, True, "", [], event.author, event.guest, event.op,
        ))
        # A deleted post's history is not shown: its earlier versions go too.
        batch.drop_list(ns.revisions(event.thread_id, event.number))

    def on_post_liked(self, event: PostLiked, ns: Namespace, batch: Batch) -> None:
        batch.hset(ns.likes(event.thread_id), str(event.number), event.likes)
        batch.zadd_one(ns.likers(event.thread_id), liker(event.number, event.actor), 0)

    def on_post_unliked(self, event: PostUnliked, ns: Namespace, batch: Batch) -> None:
        batch.hset(ns.likes(event.thread_id), str(event.number), event.likes)
        batch.zrem(ns.likers(event.thread_id), liker(event.number, event.actor))

    def on_thread_locked(self, event: ThreadLocked, ns: Namespace, batch: Batch) -> None:
        batch.hset(ns.thread(event.thread_id), "locked", 1)

    def on_thread_unlocked(self, event: ThreadUnlocked, ns: Namespace, batch: Batch
                           ) -> None:
        batch.hset(ns.thread(event.thread_id), "locked", 0)

    def on_thread_moved(self, event: ThreadMoved, ns: Namespace, batch: Batch) -> None:
        batch.hset(ns.thread(event.thread_id), "forum", event.to_forum)
