"""Hold for review: which posts wait for a moderator, and the decisions about them. Pure.

The policy is the board's setting ``FORUM_HOLD``:

- ``guest-links`` (the default): a guest's post containing a link is held;
- ``guests``: every post of a guest is held;
- ``links``: every post containing a link is held, members' too;
- ``off``: nothing is held.

Moderators and the operator are never held. A link is a ``[url]`` tag, or ``http://``,
``https://`` or ``www.`` anywhere in the text (case-insensitive): spammers write them bare
as often as tagged, and a false positive costs only a moderator's click.

Held, approved and rejected are events of the thread's stream (events/held.py). Approving
publishes the post with the thread's next number at that moment, so readers never see a
hole in the numbers. A reply held while its thread was then locked or moved is still
published by approval (into the thread's current section): a moderator's approval is a
moderator's decision, and moderators may post in locked threads. Rejecting means the post
is never shown; a rejected new thread never exists for readers.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Literal, get_args

from events.catalog import ForumEvent
from events.held import HeldPostApproved, HeldPostRejected, PostHeld, ThreadHeld
from events.threads import PostAdded, ThreadBumped, ThreadStarted
from service.domain.actors import Actor
from service.domain.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ThreadLockedError,
)
from service.domain.text import clean_body, clean_title
from service.domain.threads import HeldPost, Thread, _quoted_events, _quotes

HoldPolicy = Literal["guest-links", "guests", "links", "off"]
POLICIES: Final = get_args(HoldPolicy)
DEFAULT_POLICY: Final[HoldPolicy] = "guest-links"

_LINK: Final = re.compile(r"\[url|https?://|www\.", re.IGNORECASE)


def has_link(body: str) -> bool:
    return _LINK.search(body) is not None


def policy(value: str) -> HoldPolicy:
    """The setting's value checked: a typo must not silently turn holding off."""
    folded = value.strip().lower()
    if folded not in POLICIES:
        raise ValueError(
            f"FORUM_HOLD must be one of {', '.join(POLICIES)}; not {value!r}")
    return folded  # type: ignore[return-value]


def hold_reason(rule: HoldPolicy, actor: Actor, body: str) -> str | None:
    """Why this post is held under ``rule``, or None when it is published at once."""
    if rule == "off" or actor.moderates:
        return None
    if rule == "guests" and actor.guest:
        return "a guest's post"
    if rule in ("guest-links", "links") and (actor.guest or rule == "links") \
            and has_link(body):
        return "a guest's post with a link" if actor.guest else "a post with a link"
    return None


def hold_thread(*, thread_id: int, post_id: int, forum: str, title: str, body: str,
                actor: Actor, now: datetime, reason: str) -> list[ForumEvent]:
    """A new thread whose opening post is held: checked as ``start_thread`` checks."""
    title, body = clean_title(title), clean_body(body)
    _quotes(None, body, post_id)  # nothing to quote yet: any [quote post=…] is refused
    return [ThreadHeld(
        occurred_at=now, actor=actor.name, held_id=post_id, thread_id=thread_id,
        forum=forum, title=title, author=actor.name, guest=actor.guest,
        author_key=actor.key, body=body, guest_id=actor.guest_id, reason=reason,
    )]


def hold_reply(thread: Thread | None, *, post_id: int, body: str, actor: Actor,
               now: datetime, reason: str) -> list[ForumEvent]:
    """A reply held: refused for the same reasons ``post_reply`` refuses one, so the author
    learns at once what is wrong, not after a moderator looked."""
    if thread is None or not thread.published:
        raise NotFoundError("no such thread")
    if thread.locked and not actor.moderates:
        raise ThreadLockedError("the thread is locked and takes no replies")
    body = clean_body(body)
    quotes = _quotes(thread, body, post_id)
    return [PostHeld(
        occurred_at=now, actor=actor.name, held_id=post_id, thread_id=thread.thread_id,
        forum=thread.forum, author=actor.name, guest=actor.guest, author_key=actor.key,
        op=actor.same_person(thread.author, thread.guest, thread.guest_id), body=body,
        quotes=quotes,
        guest_id=actor.guest_id, reason=reason,
    )]


def _pending(thread: Thread | None, held_id: int, actor: Actor) -> tuple[Thread, HeldPost]:
    if not actor.moderates:
        raise ForbiddenError("only moderators and the operator decide about held posts")
    if thread is None or (held_id not in thread.held and held_id not in thread.decided):
        raise NotFoundError("no such held post")
    if held_id in thread.decided:
        raise ConflictError("this held post was already approved or rejected")
    return thread, thread.held[held_id]


def approve(thread: Thread | None, *, held_id: int, actor: Actor, now: datetime
            ) -> list[ForumEvent]:
    """The approval, then exactly the events an unheld post would have had, with the
    thread's next number now (the quotes were checked when it was held; a quoted post
    deleted since is still named, as it is in posts published before the deletion)."""
    thread, held = _pending(thread, held_id, actor)
    tid, author = thread.thread_id, held.author
    if held.opening:
        return [
            HeldPostApproved(occurred_at=now, actor=actor.name, held_id=held_id,
                             thread_id=tid, author_key=held.author_key, number=1),
            ThreadStarted(occurred_at=now, actor=author, thread_id=tid, forum=thread.forum,
                          title=thread.title, author=author, guest=held.guest,
                          guest_id=held.guest_id),
            PostAdded(occurred_at=now, actor=author, thread_id=tid, forum=thread.forum,
                      post_id=held_id, number=1, author=author, guest=held.guest, op=True,
                      first_reply=False, body=held.body, guest_id=held.guest_id),
        ]
    number = thread.count + 1
    return [
        HeldPostApproved(occurred_at=now, actor=actor.name, held_id=held_id, thread_id=tid,
                         author_key=held.author_key, number=number),
        PostAdded(occurred_at=now, actor=author, thread_id=tid, forum=thread.forum,
                  post_id=held_id, number=number, author=author, guest=held.guest,
                  op=held.op, first_reply=number == 2, body=held.body, quotes=held.quotes,
                  guest_id=held.guest_id),
        *_quoted_events(tid, held_id, held.quotes, Actor(author, "guest" if held.guest
                                                          else "member"), now),
        ThreadBumped(occurred_at=now, actor=author, thread_id=tid, forum=thread.forum,
                     reason="reply"),
    ]


def reject(thread: Thread | None, *, held_id: int, actor: Actor, now: datetime
           ) -> list[ForumEvent]:
    thread, held = _pending(thread, held_id, actor)
    return [HeldPostRejected(occurred_at=now, actor=actor.name, held_id=held_id,
                             thread_id=thread.thread_id, author_key=held.author_key)]
