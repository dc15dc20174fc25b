"""Helpers for tests: unique names and ids, actors, and builders of events and streams.

Names are random so that tests sharing PostgreSQL and Redis never collide, and valid by the
rules of ``service.domain.text`` (letters and digits, at most 32 characters).
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from events.catalog import ForumEvent
from events.held import HeldPostApproved, HeldPostRejected, PostHeld, ThreadHeld
from events.members import (
    MemberErased,
    MemberRegistered,
    MemberRoleChanged,
    MemberSuspended,
    MemberSuspensionLifted,
    StreamRedacted,
)
from events.sections import ForumCreated
from events.threads import (
    PostAdded,
    PostDeleted,
    PostEdited,
    PostLiked,
    PostQuoted,
    PostUnliked,
    QuoteInfo,
    ThreadBumped,
    ThreadLocked,
    ThreadMoved,
    ThreadStarted,
    ThreadUnlocked,
)
from service.domain import threads
from service.domain.actors import OPERATOR, Actor

# A fixed domain time: decisions take the clock as an argument.
NOW = datetime(2011, 6, 8, 12, 0, tzinfo=UTC)

_ids = itertools.count(random.randrange(1_000, 1_000_000))


def unique_name(prefix: str = "user") -> str:
    """A valid member or guest name nobody else uses (at most 32 characters)."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def unique_slug(prefix: str = "sec") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def unique_key() -> str:
    """An Idempotency-Key."""
    return f"key-{uuid.uuid4()}"


def new_id() -> int:
    """A fresh thread or post id, unique within the test run."""
    return next(_ids)


# -- actors ---------------------------------------------------------------------------

def member(name: str | None = None) -> Actor:
    return Actor(name or unique_name("member"), "member")


def guest(name: str | None = None) -> Actor:
    return Actor(name or unique_name("guest"), "guest")


def moderator(name: str | None = None) -> Actor:
    return Actor(name or unique_name("mod"), "moderator")


operator = OPERATOR


# -- BBCode ---------------------------------------------------------------------------

def quote(post_id: int, name: str = "someone", text: str = "quoted words") -> str:
    return f"[quote={name} post={post_id}]{text}[/quote]"


# -- event builders -------------------------------------------------------------------

def forum_created(slug: str | None = None, title: str = "History", *,
                  at: datetime = NOW) -> ForumCreated:
    return ForumCreated(occurred_at=at, actor="operator", slug=slug or unique_slug(),
                        title=title)


def member_registered(name: str | None = None, *, role: str = "member",
                      at: datetime = NOW) -> MemberRegistered:
    name = name or unique_name()
    return MemberRegistered(occurred_at=at, actor=name, name=name, role=role)


def thread_started(thread_id: int | None = None, *, forum: str = "history",
                   title: str = "Rome", author: Actor | None = None,
                   at: datetime = NOW) -> ThreadStarted:
    author = author or member()
    return ThreadStarted(occurred_at=at, actor=author.name, thread_id=thread_id or new_id(),
                         forum=forum, title=title, author=author.name, guest=author.guest)


def post_added(thread_id: int, number: int, *, post_id: int | None = None,
               forum: str = "history", author: Actor | None = None, op: bool = False,
               body: str = "a post", quotes: Sequence[QuoteInfo] = (),
               at: datetime = NOW) -> PostAdded:
    author = author or member()
    return PostAdded(occurred_at=at, actor=author.name, thread_id=thread_id, forum=forum,
                     post_id=post_id or new_id(), number=number, author=author.name,
                     guest=author.guest, op=op, first_reply=number == 2, body=body,
                     quotes=list(quotes))


def one_of_each(at: datetime = NOW) -> list[ForumEvent]:
    """One event of every type, every field set (optional ones to non-defaults)."""
    thread_id, post_id = new_id(), new_id()
    quote_info = QuoteInfo(post_id=post_id, number=1, author="ann")
    common = {"occurred_at": at, "actor": "ann"}
    return [
        ForumCreated(**common, slug="history", title="History"),
        ThreadStarted(**common, thread_id=thread_id, forum="history", title="Rome",
                      author="ann", guest=True),
        PostAdded(**common, thread_id=thread_id, forum="history", post_id=post_id + 1,
                  number=2, author="ann", guest=False, op=True, first_reply=True,
                  body="[b]hi[/b] <script>alert(1)</script> ünïcödé",
                  quotes=[quote_info]),
        PostQuoted(**common, thread_id=thread_id, post_id=post_id + 1,
                   quoted_post_id=post_id, quoted_number=1, quoted_author="ann"),
        ThreadBumped(**common, thread_id=thread_id, forum="history", reason="starter"),
        PostEdited(**common, thread_id=thread_id, post_id=post_id, number=1, author="ann",
                   guest=False, op=True, created_at=at - timedelta(days=1), body="edited",
                   quotes=[quote_info]),
        PostDeleted(**common, thread_id=thread_id, forum="history", post_id=post_id,
                    number=1, author="ann", guest=False, op=True,
                    created_at=at - timedelta(days=1), edited_at=at - timedelta(hours=1)),
        PostLiked(**common, thread_id=thread_id, post_id=post_id, number=1, author="bob",
                  guest=False, likes=3),
        PostUnliked(**common, thread_id=thread_id, post_id=post_id, number=1, author="bob",
                    guest=False, likes=2),
        ThreadLocked(**common, thread_id=thread_id),
        ThreadUnlocked(**common, thread_id=thread_id),
        ThreadMoved(**common, thread_id=thread_id, from_forum="history", to_forum="misc",
                    posts=7, created_at=at - timedelta(days=400), bumped_at=at,
                    unanswered=False),
        MemberRegistered(**common, name="ann", role="moderator"),
        MemberRoleChanged(**common, name="ann", role="member"),
        MemberSuspended(**common, name="ann", reason="spam", until=NOW + timedelta(days=1)),
        MemberSuspensionLifted(**common, name="ann"),
        MemberErased(**common, name="anon-1", content="erase", guest=True),
        StreamRedacted(**common),
        PostHeld(**common, held_id=post_id + 2, thread_id=thread_id, forum="history",
                 author="ann", guest=True, author_key="guest:abc", op=False,
                 body="see https://spam.example", quotes=[quote_info], guest_id="abc",
                 reason="a guest's post with a link"),
        ThreadHeld(**common, held_id=post_id + 3, thread_id=thread_id + 1, forum="history",
                   title="Cheap", author="ann", guest=True, author_key="guest:abc",
                   body="[url]https://spam.example[/url]", guest_id="abc", reason="links"),
        HeldPostApproved(**common, held_id=post_id + 2, thread_id=thread_id,
                         author_key="guest:abc", number=3),
        HeldPostRejected(**common, held_id=post_id + 3, thread_id=thread_id + 1,
                         author_key="guest:abc"),
    ]


# -- streams built through the real decisions ----------------------------------------

class ThreadHistory:
    """A thread's stream grown through ``service.domain.threads``'s own decisions, so the
    events are exactly what the write side would have appended."""

    def __init__(self, starter: Actor | None = None, *, forum: str = "history",
                 title: str = "Rome", body: str = "first post", at: datetime = NOW) -> None:
        self.starter = starter or member()
        self.thread_id = new_id()
        self.first_post_id = new_id()
        self.events: list[ForumEvent] = threads.start_thread(
            thread_id=self.thread_id, post_id=self.first_post_id, forum=forum, title=title,
            body=body, actor=self.starter, now=at,
        )

    @property
    def state(self) -> threads.Thread:
        folded = threads.fold(self.events)
        assert folded is not None
        return folded

    def apply(self, new: Sequence[ForumEvent]) -> list[ForumEvent]:
        self.events.extend(new)
        return list(new)

    def reply(self, actor: Actor | None = None, body: str = "a reply", *,
              at: datetime = NOW) -> int:
        """Append a reply; returns its post id."""
        post_id = new_id()
        self.apply(threads.post_reply(self.state, post_id=post_id, body=body,
                                      actor=actor or member(), now=at))
        return post_id

    def lock(self, at: datetime = NOW) -> None:
        self.apply(threads.set_locked(self.state, actor=OPERATOR, now=at, locked=True))

    def delete(self, post_id: int, at: datetime = NOW) -> None:
        self.apply(threads.delete_post(self.state, post_id=post_id, actor=OPERATOR, now=at))

    def bump(self, actor: Actor, at: datetime = NOW) -> None:
        self.apply(threads.bump(self.state, actor=actor, now=at))


def of_type(events: Sequence[ForumEvent], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]
