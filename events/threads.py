"""Events of a thread (stream ``thread-{id}``).

Each event carries everything its projections need (invariant 4): a projection never reads
the read model to apply one. That is why, for example, ``PostEdited`` repeats the post's
unchanging facts and ``ThreadMoved`` carries the thread's counters and bump time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from events.base import Event

BumpReason = Literal["reply", "starter", "moderator"]


class QuoteInfo(msgspec.Struct, frozen=True, kw_only=True, gc=False):  # see Event
    post_id: int
    number: int
    author: str


class ThreadStarted(Event, tag="thread_started", frozen=True):
    """``guest_id`` is the starting guest's identity (a digest of its guest token, never the
    token): the OP mark and the starter's bump follow it, not the typed name. None for
    members and for guests of logs written before guest identities (and imports)."""

    thread_id: int
    forum: str
    title: str
    author: str
    guest: bool
    guest_id: str | None = None


class PostAdded(Event, tag="post_added", frozen=True):
    """A post, the opening one (number 1) included. ``op`` tells whether the author started
    the thread; ``first_reply`` whether this post took the thread off the unanswered list."""

    thread_id: int
    forum: str
    post_id: int
    number: int
    author: str
    guest: bool
    op: bool
    first_reply: bool
    body: str
    quotes: list[QuoteInfo] = []
    guest_id: str | None = None  # the writing guest's identity, as on ThreadStarted


class PostQuoted(Event, tag="post_quoted", frozen=True):
    """One per accepted quote, appended with the post that quotes.

    No projection reads it (a post's ``quotes`` come from its ``PostAdded``): it is the
    log's record of who quoted whom, which the API promises (API.md, "Quoting": each
    accepted quote is recorded as its own event) and operators read in ``/api/events``."""

    thread_id: int
    post_id: int
    quoted_post_id: int
    quoted_number: int
    quoted_author: str


class ThreadBumped(Event, tag="thread_bumped", frozen=True):
    thread_id: int
    forum: str
    reason: BumpReason


class PostEdited(Event, tag="post_edited", frozen=True):
    thread_id: int
    post_id: int
    number: int
    author: str
    guest: bool
    op: bool
    created_at: datetime
    body: str
    quotes: list[QuoteInfo] = []


class PostDeleted(Event, tag="post_deleted", frozen=True):
    thread_id: int
    forum: str
    post_id: int
    number: int
    author: str
    guest: bool
    op: bool
    created_at: datetime
    edited_at: datetime | None = None


class PostLiked(Event, tag="post_liked", frozen=True):
    thread_id: int
    post_id: int
    number: int
    author: str
    guest: bool
    likes: int


class PostUnliked(Event, tag="post_unliked", frozen=True):
    thread_id: int
    post_id: int
    number: int
    author: str
    guest: bool
    likes: int


class ThreadLocked(Event, tag="thread_locked", frozen=True):
    thread_id: int


class ThreadUnlocked(Event, tag="thread_unlocked", frozen=True):
    thread_id: int


class ThreadMoved(Event, tag="thread_moved", frozen=True):
    thread_id: int
    from_forum: str
    to_forum: str
    posts: int
    created_at: datetime
    bumped_at: datetime
    unanswered: bool
