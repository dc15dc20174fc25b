"""Where the thread page is projected: numbered posts as ready JSON, their authors (for
live counters), likes, and the thread's summary.

Each post is stored as JSON bytes missing only its tail, the author's live counters and
the like count, which a read splices in (workers/readmodels.py THREAD_PAGE). So a page read
re-encodes nothing, and counters beside every post are the author's current ones.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from events import ForumEvent
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
from workers.bbcode import render
from workers.readmodels import Namespace, StoredQuote, counter_key, rfc3339


class AuthorHead(msgspec.Struct):
    name: str
    guest: bool
    op: bool


class PostHead(msgspec.Struct):
    """Field order is the contract: ``author`` must come last (see ``post_prefix``)."""

    id: int
    thread_id: int
    number: int
    created_at: str
    edited_at: str | None
    deleted: bool
    body: str
    html: str
    quotes: list[StoredQuote]
    author: AuthorHead


_encoder = msgspec.json.Encoder()


def post_prefix(
    *, post_id: int, thread_id: int, number: int, created_at: datetime,
    edited_at: datetime | None, deleted: bool, body: str, quotes: list[QuoteInfo],
    author: str, guest: bool, op: bool,
) -> bytes:
    head = PostHead(
        id=post_id, thread_id=thread_id, number=number, created_at=rfc3339(created_at),
        edited_at=rfc3339(edited_at) if edited_at else None, deleted=deleted,
        body="" if deleted else body, html="" if deleted else render(body),
        quotes=[] if deleted else [StoredQuote(q.post_id, q.number, q.author) for q in quotes],
        author=AuthorHead(name=author, guest=guest, op=op),
    )
    encoded = _encoder.encode(head)
    assert encoded.endswith(b"}}")
    return encoded[:-2]


class ThreadPage:
    name = "thread_page"
    version = 1
    handles: frozenset[type] = frozenset({
        ThreadStarted, PostAdded, ThreadBumped, PostEdited, PostDeleted, PostLiked,
        PostUnliked, ThreadLocked, ThreadUnlocked, ThreadMoved
    })

    def apply(self, event: ForumEvent, ns: Namespace, batch: Batch) -> None:
        match event:
            case ThreadStarted():
                batch.hset(ns.thread(event.thread_id), mapping={
                    "id": event.thread_id, "title": event.title, "forum": event.forum,
                    "author": event.author, "guest": int(event.guest), "posts": 0,
                    "replies": 0, "created_at": rfc3339(event.occurred_at),
                    "bumped_at": rfc3339(event.occurred_at), "locked": 0,
                })
            case PostAdded():
                tid = event.thread_id
                batch.rpush(ns.posts(tid), post_prefix(
                    post_id=event.post_id, thread_id=tid, number=event.number,
                    created_at=event.occurred_at, edited_at=None, deleted=False,
                    body=event.body, quotes=event.quotes, author=event.author,
                    guest=event.guest, op=event.op,
                ))
                batch.rpush(ns.authors(tid), counter_key(event.author, event.guest))
                batch.hset(ns.thread(tid), mapping={
                    "posts": event.number, "replies": event.number - 1,
                })
                batch.hset(ns.post_index, str(event.post_id), f"{tid}:{event.number}")
            case ThreadBumped():
                batch.hset(ns.thread(event.thread_id), "bumped_at", rfc3339(event.occurred_at))
            case PostEdited():
                batch.lset(ns.posts(event.thread_id), event.number - 1, post_prefix(
                    post_id=event.post_id, thread_id=event.thread_id, number=event.number,
                    created_at=event.created_at, edited_at=event.occurred_at, deleted=False,
                    body=event.body, quotes=event.quotes, author=event.author,
                    guest=event.guest, op=event.op,
                ))
            case PostDeleted():
                batch.lset(ns.posts(event.thread_id), event.number - 1, post_prefix(
                    post_id=event.post_id, thread_id=event.thread_id, number=event.number,
                    created_at=event.created_at, edited_at=event.edited_at, deleted=True,
                    body="", quotes=[], author=event.author, guest=event.guest, op=event.op,
                ))
            case PostLiked() | PostUnliked():
                batch.hset(ns.likes(event.thread_id), str(event.number), event.likes)
            case ThreadLocked():
                batch.hset(ns.thread(event.thread_id), "locked", 1)
            case ThreadUnlocked():
                batch.hset(ns.thread(event.thread_id), "locked", 0)
            case ThreadMoved():
                batch.hset(ns.thread(event.thread_id), "forum", event.to_forum)
