"""Events of hold-for-review, in the thread's own stream (``thread-{id}``).

A post the board's policy holds is a fact of the log (invariant 11), so a rebuild shows
the same queue. A held post takes no number: numbers are the order of ``PostAdded`` in the
stream and readers never see a hole. Approving appends ``HeldPostApproved`` together with
the ordinary events a published post has (``PostAdded`` with the thread's next number at
that moment, its ``PostQuoted``, a ``ThreadBumped``; for a held new thread
``ThreadStarted`` + ``PostAdded`` number 1), so no other projection needs to know about
holds. The held id is the post id the post keeps when approved.

``author_key`` is ``Actor.key`` of the author (a member's folded name or a guest's
identity): who may see their own pending posts. Decisions repeat it, so the queue's
projection never reads its read model to remove an entry (invariant 4).
"""

from __future__ import annotations

from events.base import Event
from events.threads import QuoteInfo


class PostHeld(Event, tag="post_held", frozen=True):
    """A reply held for review."""

    held_id: int
    thread_id: int
    forum: str
    author: str
    guest: bool
    author_key: str
    op: bool
    body: str
    quotes: list[QuoteInfo] = []
    guest_id: str | None = None
    reason: str = ""


class ThreadHeld(Event, tag="thread_held", frozen=True):
    """A new thread whose opening post is held: the first event of its stream; the thread
    does not exist for readers until ``HeldPostApproved`` + ``ThreadStarted``."""

    held_id: int
    thread_id: int
    forum: str
    title: str
    author: str
    guest: bool
    author_key: str
    body: str
    guest_id: str | None = None
    reason: str = ""


class HeldPostApproved(Event, tag="held_post_approved", frozen=True):
    """``actor`` is the moderator; the events that publish the post follow it."""

    held_id: int
    thread_id: int
    author_key: str
    number: int


class HeldPostRejected(Event, tag="held_post_rejected", frozen=True):
    held_id: int
    thread_id: int
    author_key: str
